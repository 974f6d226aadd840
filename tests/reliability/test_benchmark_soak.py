"""``benchmarks/soak.py``: RSS summary maths, and a very short run of the real command."""
from __future__ import annotations

import shutil
import sys

import pytest

from testutil import load_module


def _tool(rel):
    return load_module("reliability_soak_tool", rel.ROOT / "benchmarks" / "soak.py", fresh=True)


def test_slope_and_summary(rel):
    tool = _tool(rel)
    assert tool.slope_per_hour([(0, 100.0), (1800, 150.0), (3600, 200.0)]) == pytest.approx(100.0)
    assert tool.slope_per_hour([(0, 5.0)]) == 0.0
    # 10 minutes: warm-up 60 s, then flat except a first-evaluation step at 4 min
    samples = [{"t": float(t), "main": 500.0 + (50 if t >= 240 else 0), "total": 600.0 + (50 if t >= 240 else 0),
                "evals": 1 if t >= 240 else 0} for t in range(0, 601, 10)]
    res = tool.summarize(samples, 600.0)
    assert res["warmup_seconds"] == 240.0  # until the first evaluation finished
    assert res["rss_start_peak_mb"] == res["rss_end_peak_mb"] == 650.0
    assert res["rss_slope_mb_per_hour"] == 0.0 and res["rss_max_mb"] == 650.0


@pytest.mark.slow
def test_short_soak_run_reports_json(rel, clean_data, tmp_path):
    data = tmp_path / "text_localization"
    shutil.copytree(clean_data, data)
    (data / "train.txt").rename(data / "train_icdar2015_label.txt")
    (data / "test.txt").rename(data / "test_icdar2015_label.txt")
    r = rel.run([sys.executable, str(rel.ROOT / "benchmarks" / "soak.py"), "--minutes", "0.25",
                 "--interval", "0.5", "--config", str(rel.CONFIG), "--data", str(data), "--work", str(tmp_path / "w"),
                 "--eval-every", "4"], timeout=240)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    res = rel.last_json(r.stdout)
    assert res["exit_code"] == 143 and res["stopped_by_deadline"]
    assert res["steps"] > 0 and res["evaluations"] >= 1 and res["samples"] >= 5
    for key in ("rss_start_peak_mb", "rss_end_peak_mb", "rss_slope_mb_per_hour", "main_rss_end_peak_mb"):
        assert isinstance(res[key], float)
    assert 100 < res["rss_max_mb"] < 8000
    assert (tmp_path / "w" / "out" / "latest.pdparams").is_file()  # the SIGTERM stop saved 'latest'
