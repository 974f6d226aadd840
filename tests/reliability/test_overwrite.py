"""A new run never replaces the checkpoints of an earlier one: ``tools/train.py`` and ``scripts/train.sh``
refuse to start, naming the folder and the ways out; resuming in place and ``Global.overwrite`` work."""
from __future__ import annotations

import hashlib
import subprocess

import pytest


def _digest(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.fixture(scope="module")
def finished_run(rel, clean_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("finished") / "out"
    r = rel.run(rel.train_cmd(rel.overrides(clean_data, out, "Global.max_steps=1", "Global.eval_at_end=false")),
                timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert (out / "latest.pdparams").exists()
    return out


@pytest.mark.slow
def test_new_run_into_a_finished_run_is_refused(rel, clean_data, finished_run):
    before = _digest(finished_run)
    r = rel.run(rel.train_cmd(rel.overrides(clean_data, finished_run, "Global.max_steps=1")), timeout=120)
    assert r.returncode == 2, r.stderr[-3000:]
    assert f"{finished_run} holds the checkpoints of an earlier run (latest.pdparams)" in r.stderr, r.stderr[-2000:]
    for way_out in (f"Global.checkpoints={finished_run / 'latest'}", "Global.save_model_dir=DIR",
                    "Global.overwrite=true"):
        assert way_out in r.stderr, r.stderr[-2000:]
    assert "Traceback" not in r.stderr
    assert _digest(finished_run) == before  # nothing touched, config.yml and metrics.jsonl included


@pytest.mark.slow
def test_train_sh_refuses_before_starting(rel, clean_data, finished_run):
    before = _digest(finished_run)
    r = subprocess.run(["bash", "scripts/train.sh", str(rel.CONFIG), "cpu", "--cpu-procs", "1", "-o",
                        *rel.overrides(clean_data, finished_run, "Global.max_steps=1")],
                       cwd=str(rel.ROOT), env=rel.env(), capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, r.stdout[-2000:] + r.stderr[-2000:]
    assert "train.sh: error:" in r.stderr and "holds the checkpoints of an earlier run" in r.stderr, r.stderr
    assert "Global.overwrite=true" in r.stderr
    assert _digest(finished_run) == before


@pytest.mark.slow
def test_resume_in_place_and_explicit_overwrite_are_allowed(rel, clean_data, finished_run, tmp_path):
    import shutil

    out = tmp_path / "run"
    shutil.copytree(finished_run, out)
    r = rel.run(rel.train_cmd(rel.overrides(clean_data, out, "Global.max_steps=2", "Global.eval_at_end=false",
                                            f"Global.checkpoints={out / 'latest'}")), timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert rel.check_checkpoint(out / "latest")["global_step"] == 2
    r = rel.run(rel.train_cmd(rel.overrides(clean_data, out, "Global.max_steps=1", "Global.eval_at_end=false",
                                            "Global.overwrite=true")), timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert rel.check_checkpoint(out / "latest")["global_step"] == 1
