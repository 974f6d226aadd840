"""tools/benchmark_infer.py end to end on two small synthetic images (our MV3 DB only: the
PP-OCRv4 model would need a download)."""
from __future__ import annotations

import cv2
import paddle
import pytest


@pytest.mark.slow
def test_benchmark_infer_quick_run(helpers, tmp_path):
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    for i in range(2):
        assert cv2.imwrite(str(imgs / f"img_{i + 1}.jpg"), helpers.synthetic_image(180, 320, seed=i))
    proc = helpers.run_tool("benchmark_infer.py", "--images", "2", "--image_dir", str(imgs), "--models", "det_mv3_db",
                            "--sizes", "128x256", "--threads", "2", "--tune-images", "1", "--no-unfused", "--work", str(tmp_path / "w"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = helpers.last_json(proc.stdout)
    assert out["images"] == 2 and out["weights"].startswith("random-init")
    entry = out["results"]["det_mv3_db"]["128x256"]
    assert entry["gflops_paddle_rules"] > 0
    # Paddle 3.3 programs do not convert to ONNX (see dbnetpp/deploy/onnx_export.py): Paddle only
    backends = ("paddle", "onnxruntime") if paddle.__version__.startswith("2.") else ("paddle",)
    for backend in backends:
        r = entry[backend]
        assert r["total_ms"] == pytest.approx(r["pre_ms"] + r["infer_ms"] + r["post_ms"], abs=0.05)
        assert r["infer_ms"] > 0 and r["gflop_per_s"] > 0
        if "gmacs" in entry:
            assert r["gflop_per_s"] == pytest.approx(2 * entry["gmacs"] / r["infer_ms"] * 1000, rel=0.02)
    assert "mkldnn" in entry["paddle"]["settings"]
    if "onnxruntime" in backends:
        assert entry["gmacs"] > 0 and "opt_level" in entry["onnxruntime"]["settings"]
    assert "tuning" in proc.stderr  # candidates were tried
