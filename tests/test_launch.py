"""dbnetpp.launch: the planning behind scripts/train.sh and scripts/eval.sh (command line, numbers read as
data, batch split), and running the plan (signals passed on, worker logs shown when a launch fails)."""
from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from dbnetpp.launch import LaunchError, _rate, parse_args, show_cmd, split_batch


def test_positional_config_and_gpus_and_repeated_overrides():
    o = parse_args("train", ["a.yml", "0,1", "-o", "A.b=1", "C.d=2", "--dry-run", "-o", "E.f=3"])
    assert (o.config, o.gpus, o.dry_run, o.overrides) == ("a.yml", "0,1", True, ["A.b=1", "C.d=2", "E.f=3"])
    o = parse_args("train", ["cpu"])  # no config: the device only
    assert (o.config, o.gpus) == ("", "cpu")
    o = parse_args("eval", ["cpu", "x.yaml", "--json", "r.json", "--no-progress"])
    assert (o.config, o.gpus, o.passthrough) == ("x.yaml", "cpu", ["--json", "r.json", "--no-progress"])


@pytest.mark.parametrize("argv, message", [
    (["-o"], "-o needs at least one Key=value"),
    (["-o", "Global.x"], "must look like Section.key=value"),
    (["--gpus"], "option --gpus needs a value"),
    (["--cpu-procs", ""], "option --cpu-procs needs a value"),
    (["a.yml", "cpu", "extra"], "unexpected argument 'extra'"),
    (["--json", "r.json"], "unknown option '--json'"),  # an eval.sh option
])
def test_bad_command_lines(argv, message):
    with pytest.raises(LaunchError, match=message):
        parse_args("train", argv)


def test_rates_are_finite_positive_numbers_never_code():
    assert _rate(0.001, "k", "f") == 0.001 and _rate("1e-3", "k", "f") == 0.001 and _rate(2, "k", "f") == 2.0
    assert _rate(None, "k", "f") is None
    for bad in (math.nan, math.inf, "inf", "nan", 0, -1e-3, True, "1e-3 * 2", "__import__('os')", [0.1]):
        with pytest.raises(LaunchError, match="must be a finite positive number"):
            _rate(bad, "Optimizer.lr.learning_rate", "cfg.yml")


def test_split_batch():
    assert split_batch(8, 2) == 4 and split_batch(8, 1) == 8
    with pytest.raises(LaunchError, match="cannot be split evenly over 3 processes"):
        split_batch(8, 3)


def test_show_cmd_quotes_only_what_needs_it():
    line = show_cmd(["python", "tools/train.py", "-o", "A.b=[1, 2]", "C.d=$(x)"], {"CUDA_VISIBLE_DEVICES": "0"})
    assert line == "  env CUDA_VISIBLE_DEVICES=0 python tools/train.py -o 'A.b=[1, 2]' 'C.d=$(x)'"


RUNNER = textwrap.dedent("""
    import sys
    from dbnetpp.launch import Plan, run
    sys.exit(run(Plan([sys.executable, "-c", sys.argv[1]], log_dir=sys.argv[2]), print))
""")


def test_a_signal_to_the_launcher_reaches_the_run(tmp_path):
    ready = tmp_path / "ready"
    child = textwrap.dedent(f"""
        import signal, sys, time
        signal.signal(signal.SIGTERM, lambda *a: sys.exit(7))
        open({str(ready)!r}, "w").close()
        time.sleep(60)
    """)
    p = subprocess.Popen([sys.executable, "-c", RUNNER, child, ""], stdout=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while not ready.exists() and time.time() < deadline:
        time.sleep(0.1)
    assert ready.exists()
    p.send_signal(signal.SIGTERM)  # to the launcher only
    out, _ = p.communicate(timeout=30)
    assert p.returncode == 7 and "running:" in out  # the run got the signal and its exit code came back


def test_a_failed_launch_shows_the_worker_logs(tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "workerlog.0").write_text("".join(f"line {i}\n" for i in range(40)) + "ValueError: boom\n")
    p = subprocess.run([sys.executable, "-c", RUNNER, "import sys; sys.exit(3)", str(logs)], capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 3
    assert f"----- last lines of {logs / 'workerlog.0'} -----" in p.stderr and "ValueError: boom" in p.stderr
    assert "line 10\n" not in p.stderr  # only the last lines


def test_no_ccache_notice_from_paddle(tmp_path):
    """Paddle's import-time "No ccache found" warning shows neither in our processes nor in planned runs."""
    p = subprocess.run([sys.executable, "-c", "import dbnetpp.config"], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0 and "ccache" not in p.stderr, p.stderr
    child = "import paddle"  # a run started by the planner, importing paddle first
    r = subprocess.run([sys.executable, "-c", RUNNER, child, ""], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "ccache" not in r.stderr, r.stderr
