"""Malformed configs, unknown overrides, wrong types and impossible values: ``tools/train.py`` exits
non-zero within seconds, before any training step, naming the key (and the config file).

Table: ``CONFIG_CASES`` in ``cases.py`` (also rendered in ``docs/reliability.md``)."""
from __future__ import annotations

import shutil
import subprocess
import sys
import time

import pytest

from testutil import load_module


MAX_SECONDS = 20.0  # on a loaded 2-core machine; typically < 1 s in-process
SUBPROCESS_TIMEOUT = 15.0  # a failing start-up takes ~3 s; longer means it hangs


def _train_tool(rel):
    return load_module("reliability_train_tool", rel.TRAIN, fresh=True)


def _config_path(case, rel, tmp_path):
    if case.config == "missing":
        return tmp_path / "missing.yml"
    if case.config == "folder":
        folder = tmp_path / "configs"
        folder.mkdir()
        shutil.copy(rel.CONFIG, folder / "tiny_det.yml")
        return folder
    if case.config == "txt":
        path = tmp_path / "tiny_det.txt"
        shutil.copy(rel.CONFIG, path)
        return path
    if case.edit is None:
        return rel.CONFIG
    old, new = case.edit
    text = rel.CONFIG.read_text(encoding="utf-8")
    if old == "*":
        text = new
    elif old == "":
        text += new
    else:
        assert old in text, f"edit target {old!r} not in {rel.CONFIG}"
        text = text.replace(old, new, 1)
    path = tmp_path / "tiny_det.yml"
    path.write_text(text, encoding="utf-8")
    return path


def _run(case, rel, data, tmp_path, capsys):
    out = tmp_path / "out"
    config = _config_path(case, rel, tmp_path)
    extra = [o.replace("{data}", str(data)).replace("{out}", str(out)) for o in case.overrides]
    args = ["-c", str(config), "-o", *rel.overrides(data, out), *extra]
    start = time.monotonic()
    if case.in_subprocess:
        try:
            r = subprocess.run([sys.executable, str(rel.TRAIN), *args], cwd=str(rel.ROOT), env=rel.env(),
                               capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT)
        except subprocess.TimeoutExpired:
            pytest.fail(f"tools/train.py still running after {SUBPROCESS_TIMEOUT:.0f} s (hang)")
        rc, err, stdout = r.returncode, r.stderr, r.stdout
    else:
        capsys.readouterr()
        rc = _train_tool(rel).main(args)
        captured = capsys.readouterr()
        err, stdout = captured.err, captured.out
    return rc, err, stdout, out, config, time.monotonic() - start


def _no_training_happened(out, stdout):
    assert not (out / "latest.pdparams").exists()
    metrics = out / "metrics.jsonl"
    if metrics.exists():
        assert '"event": "train"' not in metrics.read_text()
    assert "global_step: 1," not in stdout


def test_invalid_config_fails_before_training(config_case, rel, clean_data, tmp_path, capsys):
    rc, err, stdout, out, _, seconds = _run(config_case, rel, clean_data, tmp_path, capsys)
    assert rc == config_case.exit_code, err[-2000:]
    for needle in config_case.needles:
        assert needle in err, f"{needle!r} not in stderr: {err[-2000:]}"
    assert "Traceback" not in err, err[-2000:]
    assert seconds < MAX_SECONDS
    _no_training_happened(out, stdout)


def test_config_error_names_the_config_file(config_file_case, rel, clean_data, tmp_path, capsys):
    rc, err, _, _, config, _ = _run(config_file_case, rel, clean_data, tmp_path, capsys)
    assert rc != 0
    assert str(config) in err, err[-2000:]


@pytest.mark.smoke
def test_override_typo_through_the_real_cli(rel, clean_data, tmp_path):
    """The same check as a user runs it: a separate process, exit code 2 within seconds."""
    out = tmp_path / "out"
    start = time.monotonic()
    r = rel.run(rel.train_cmd(rel.overrides(clean_data, out, "Train.loader.batch_size_per_card=-1")), timeout=120)
    assert r.returncode == 2, r.stderr[-2000:]
    assert "Train.loader.batch_size_per_card" in r.stderr and str(rel.CONFIG) in r.stderr
    assert time.monotonic() - start < 60
    assert not out.exists()
