"""tools/benchmark_train.py, tools/benchmark_dist_equivalence.py and tools/benchmark_learning.py: they run
end to end on tiny inputs and print the promised JSON last line."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest
import yaml

TINY = "configs/det/cpu/det_mv3_db++_tiny.yml"


def _last_json(text: str) -> dict:
    return json.loads(text.strip().splitlines()[-1])


def test_benchmark_train_reports_throughput(root_dir, tiny_data, tiny_overrides, tmp_path):
    opts = [o for o in tiny_overrides(TINY, tiny_data, tmp_path / "unused") if o.startswith(("Train.", "Eval."))]
    proc = subprocess.run([sys.executable, "tools/benchmark_train.py", "-c", TINY, "--steps", "2", "--warmup", "1",
                           "-o", *opts], cwd=root_dir, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    res = _last_json(proc.stdout)
    assert res["steps"] == 2 and res["warmup_steps"] == 1 and res["batch_size_per_card"] == 2
    assert res["samples_per_s"] > 0 and 0 <= res["data_wait_fraction"] <= 1
    assert res["peak_rss_mb"] > 100


@pytest.mark.slow
def test_dist_equivalence_two_processes_match_one(root_dir):
    proc = subprocess.run([sys.executable, "tools/benchmark_dist_equivalence.py", "--steps", "2", "--size", "64"],
                          cwd=root_dir, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    res = _last_json(proc.stdout)
    assert res["passed"] and len(res["dist"]) == 2 and res["max_rel_diff"] <= 1e-4
    # the one-batch run differs (per-rank BatchNorm and loss normalisation): the check is sensitive enough
    assert res["max_rel_diff_vs_full"] > 1e-4


@pytest.mark.slow
@pytest.mark.parametrize("crop", [0, 96])
def test_benchmark_learning_runs(root_dir, icdar_dir, tmp_path, crop):
    proc = subprocess.run([sys.executable, "tools/benchmark_learning.py", "--data", str(icdar_dir), "--images", "1",
                           "--batch", "1", "--size", "128x224", "--minutes", "0.25", "--eval-every", "2",
                           "--crop", str(crop), "--keep", str(tmp_path / "work")],
                          cwd=root_dir, capture_output=True, text=True, timeout=240)
    assert proc.returncode in (0, 1), proc.stdout[-2000:] + proc.stderr[-2000:]
    res = _last_json(proc.stdout)
    assert res["images"] == 1 and res["care_boxes"] == 4 and res["steps"] >= 2 and res["crop"] == crop
    train_tf = [next(iter(t)) for t in yaml.safe_load((tmp_path / "work" / "config.yml").read_text())
                ["Train"]["dataset"]["transforms"]]
    assert ("EastRandomCropData" in train_tf) == bool(crop) and ("Resize" in train_tf) == (not crop)
    assert 0 <= res["hmean"] <= 1 and res["reached_target"] == (res["hmean"] >= 0.9)


@pytest.mark.slow
def test_benchmark_learning_reports_when_interrupted(root_dir, icdar_dir, tmp_path):
    """SIGTERM (or Ctrl-C) stops the trainer and still prints the evaluations so far; exit code 130."""
    work = tmp_path / "work"
    proc = subprocess.Popen([sys.executable, "tools/benchmark_learning.py", "--data", str(icdar_dir), "--images", "1",
                             "--batch", "1", "--size", "128x224", "--minutes", "10", "--eval-every", "2",
                             "--target", "1.01", "--keep", str(work)],
                            cwd=root_dir, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    metrics = work / "out" / "metrics.jsonl"
    deadline = time.time() + 180
    while time.time() < deadline and proc.poll() is None:
        if metrics.is_file() and '"event": "eval"' in metrics.read_text():
            break
        time.sleep(0.5)
    assert proc.poll() is None, "the benchmark ended before it was interrupted"
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, out[-2000:] + err[-2000:]
    res = _last_json(out)
    assert res["reached_target"] is False and res["steps"] >= 2 and 0 <= res["hmean"] <= 1
    assert "interrupted: best hmean" in out
    log = (work / "train.log").read_text()
    assert "training stopped by SIGTERM" in log  # the trainer was stopped, not left running
