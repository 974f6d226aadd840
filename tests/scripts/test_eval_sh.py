"""scripts/eval.sh: command construction, weights selection, and a real evaluation of a checkpoint."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from testutil import last_line_json

TINY = "configs/det/cpu/det_mv3_db++_tiny.yml"


def _sh(root_dir: Path, script: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", f"scripts/{script}", *args], cwd=root_dir, capture_output=True, text=True,
                          timeout=240, env={**os.environ, "PYTHON": sys.executable})


def test_dry_run_commands(root_dir, tmp_path):
    p = _sh(root_dir, "eval.sh", "configs/det/det_mv3_db.yml", "0,1", "--ckpt", "out/m", "--json", "r.json",
            "--dry-run")
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines()[-1].strip().endswith(
        "-m paddle.distributed.launch --log_level WARNING --log_dir ./output/db_mv3/eval_logs --gpus 0,1 tools/eval.py "
        "-c configs/det/det_mv3_db.yml --json r.json -o Global.checkpoints=out/m")
    p = _sh(root_dir, "eval.sh", "configs/det/det_mv3_db.yml", "cpu", "--cpu-procs", "2", "--dry-run",
            "-o", f"Global.save_model_dir={tmp_path}")
    assert p.returncode == 0, p.stderr
    assert f"weights: {tmp_path}/best_accuracy" in p.stdout
    assert "--nproc_per_node 2" in p.stdout and "Global.use_gpu=False" in p.stdout


def test_errors(root_dir, tmp_path):
    p = _sh(root_dir, "eval.sh", "configs/det/det_mv3_db.yml", "cpu", "-o", f"Global.save_model_dir={tmp_path}")
    assert p.returncode == 2 and "no weights to evaluate" in p.stderr
    p = _sh(root_dir, "eval.sh", "--dry-run")
    assert p.returncode == 2 and "no CONFIG given" in p.stderr
    p = _sh(root_dir, "eval.sh", "configs/det/det_mv3_db.yml", "--frobnicate")
    assert p.returncode == 2 and "unknown option '--frobnicate'" in p.stderr


def test_evaluates_a_trained_checkpoint(root_dir, tiny_data, tiny_overrides, tmp_path):
    out = tmp_path / "out"
    opts = tiny_overrides(TINY, tiny_data, out)
    p = _sh(root_dir, "train.sh", TINY, "cpu", "-o", *opts, "Global.eval_at_end=False")
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    eval_opts = [o for o in opts if o.startswith("Eval.")]
    p = _sh(root_dir, "eval.sh", TINY, "cpu", "--ckpt", str(out / "latest"), "--no-progress", "-o", *eval_opts)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    res = last_line_json(p.stdout)
    assert res["images"] == 1 and 0 <= res["hmean"] <= 1 and res["gt_care"] > 0
