"""dbnetpp.cli: the tools' shared -c / -o options."""
import pytest

from dbnetpp.cli import add_config_args, tool_parser

DOC = """First paragraph: what the tool does.

    python tools/x.py -c CONFIG

More detail after the options."""


def test_overrides_take_several_values_and_repeat():
    p = tool_parser(DOC)
    add_config_args(p)
    args = p.parse_args(["-c", "a.yml", "-o", "Global.a=1", "Global.b=2", "--opt", "Global.c=3"])
    assert args.config == "a.yml" and args.opt == ["Global.a=1", "Global.b=2", "Global.c=3"]
    assert p.parse_args(["--config", "b.yml"]).opt == []


def test_config_required_unless_defaulted(capsys):
    p = tool_parser(DOC)
    add_config_args(p)
    with pytest.raises(SystemExit):
        p.parse_args([])
    assert "-c/--config" in capsys.readouterr().err
    q = tool_parser(DOC)
    add_config_args(q, default="configs/x.yml")
    assert q.parse_args([]).config == "configs/x.yml"


def test_help_uses_the_docstring():
    p = tool_parser(DOC, epilog=True)
    text = p.format_help()
    assert "First paragraph" in text and "More detail after the options." in text
    assert "More detail" not in tool_parser(DOC).format_help()


def _raises(exc):
    def body():
        raise exc
    return body


def test_run_tool_maps_every_project_error_to_one_line_and_its_exit_code(capsys):
    """The table of dbnetpp/errors.py, through the runner every tool's main uses."""
    import signal

    from dbnetpp.cli import run_tool
    from dbnetpp.engine.guard import AbortRequested
    from dbnetpp.errors import (CheckpointError, ConfigError, DataError, LoaderError, NonFiniteLossError,
                                OutputInUseError, StepFailed, TrainingInterrupted, UsageError)

    cases = [(ConfigError("must be int", key="Global.epoch_num", file="c.yml"), 2,
              "tool: error: c.yml: key 'Global.epoch_num': must be int"),
             (OutputInUseError("out is in use by pid 1"), 2, "tool: error: out is in use by pid 1"),
             (UsageError("--out is the --image folder"), 2, "tool: error: --out is the --image folder"),
             (StepFailed("tools/eval.py printed no result"), 2, "tool: error: tools/eval.py printed no result"),
             (DataError("not a number", "labels.txt", 3), 1, "tool: error: labels.txt:3: not a number"),
             (CheckpointError("w.pdparams: file not found"), 1, "tool: error: w.pdparams: file not found"),
             (LoaderError("shapes differ"), 1, "tool: error: shapes differ"),
             (NonFiniteLossError("5 bad steps"), 1, "tool: error: 5 bad steps"),
             (PermissionError(13, "Permission denied", "/sys/x"), 1, "tool: error: /sys/x: Permission denied"),
             (OSError(28, "No space left on device"), 1, "tool: error: No space left on device"),
             (TrainingInterrupted(signal.SIGTERM), 143, "tool: training stopped by SIGTERM; 'latest' was saved"),
             (AbortRequested(signal.SIGINT, "evaluation stopped by SIGINT"), 130,
              "tool: evaluation stopped by SIGINT"),
             (KeyboardInterrupt(), 130, "tool: interrupted (SIGINT)")]
    for exc, code, line in cases:
        assert run_tool("tool", _raises(exc)) == code, exc
        err = capsys.readouterr().err
        assert err == line + "\n", (exc, err)
    assert run_tool("tool", lambda: 0) == 0
    with pytest.raises(ZeroDivisionError):  # a bug keeps its traceback
        run_tool("tool", lambda: 1 // 0)


def test_step_failed_names_the_step_and_the_end_of_its_log(tmp_path):
    from dbnetpp.errors import StepFailed, exit_code

    log = tmp_path / "train.log"
    log.write_text("".join(f"line {i}\n" for i in range(40)), encoding="utf-8")
    exc = StepFailed.from_log("tools/train.py", 1, log, lines=3)
    assert str(exc) == f"tools/train.py failed (exit 1); last lines of {log}:\nline 37\nline 38\nline 39"
    assert exit_code(exc) == 2
    ragged = tmp_path / "eval.log"  # Windows line ends, a byte that is not UTF-8, no final newline
    ragged.write_bytes(b"first\r\nsecond \xff\r\nlast")
    assert str(StepFailed.from_log("x", 1, ragged, lines=2)).splitlines()[1:] == ["second \ufffd", "last"]
    gone = StepFailed.from_log("tools/eval.py", 3, tmp_path / "missing.log")
    assert "tools/eval.py failed (exit 3)" in str(gone) and "No such file" in str(gone)


def test_every_tool_main_goes_through_run_tool():
    """No tool or benchmark maps exceptions to exit codes itself (the table lives in dbnetpp/errors.py)."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    tools = sorted(root.joinpath("tools").glob("*.py"))
    benchmarks = sorted(root.joinpath("benchmarks").glob("*.py"))
    assert len(tools) >= 12 and len(benchmarks) >= 10
    for path in tools + benchmarks:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        main = next((n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "main"), None)
        assert main is not None, path
        calls = {n.func.id for n in ast.walk(main) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
        assert "run_tool" in calls, f"{path.name}: main does not return run_tool(...)"
        handlers = [n for n in ast.walk(main) if isinstance(n, ast.ExceptHandler)]
        assert not handlers, f"{path.name}: main catches exceptions itself (line {handlers[0].lineno})"


@pytest.mark.parametrize("text,ok", [("0.5", True), ("0", True), ("1", True), ("nan", False), ("inf", False),
                                     ("1.5", False), ("-0.1", False), ("x", False)])
def test_unit_float(text, ok):
    import argparse

    from dbnetpp.cli import unit_float

    if ok:
        assert unit_float(text) == float(text)
    else:
        with pytest.raises(argparse.ArgumentTypeError, match="in \\[0, 1\\]"):
            unit_float(text)


def test_int_list():
    import argparse

    from dbnetpp.cli import int_list

    sides = int_list(32, "long sides", "960,1280")
    assert sides("960, 1280,") == [960, 1280]
    for bad in ("", "12", "a,b", "960,16"):
        with pytest.raises(argparse.ArgumentTypeError, match="long sides"):
            sides(bad)
