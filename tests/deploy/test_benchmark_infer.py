"""benchmarks/infer.py end to end: timing on synthetic images; accuracy against latency on real
ICDAR2015 test images with the released PP-OCRv3 detector of the installed reference wheel and a
trained-model export (no download)."""
from __future__ import annotations

import shutil

import cv2
import pytest


@pytest.mark.slow
def test_benchmark_infer_quick_run(helpers, tmp_path):
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    for i in range(2):
        assert cv2.imwrite(str(imgs / f"img_{i + 1}.jpg"), helpers.synthetic_image(180, 320, seed=i))
    proc = helpers.run_benchmark("infer.py", "--images", "2", "--image_dir", str(imgs), "--models", "det_mv3_db",
                                 "--sizes", "128x256", "--threads", "2", "--tune-images", "1", "--no-unfused",
                                 "--work", str(tmp_path / "w"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = helpers.last_json(proc.stdout)
    assert out["images"] == 2 and out["weights"] == {"det_mv3_db": "random-init"}
    entry = out["results"]["det_mv3_db"]["128x256"]
    assert entry["gflops_paddle_rules"] > 0
    backends = ("paddle", "onnxruntime")  # paddle2onnx converts our exports on Paddle 2.6 and 3.3
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


@pytest.mark.slow
def test_hmean_against_latency_on_real_images(helpers, icdar_dir, tiny_export, tmp_path):
    imgs, gt = tmp_path / "imgs", tmp_path / "gt"
    imgs.mkdir()
    gt.mkdir()
    for i in (1, 2, 3):
        shutil.copy(icdar_dir / "ch4_test_images" / f"img_{i}.jpg", imgs)
        shutil.copy(icdar_dir / "Challenge4_Test_Task1_GT" / f"gt_img_{i}.txt", gt)
    work, png = tmp_path / "w", tmp_path / "plot" / "hmean.png"
    proc = helpers.run_benchmark("infer.py", "--images", "2", "--image_dir", str(imgs), "--models",
                                 "PP-OCRv3_mobile_det", "--trained", f"tiny={tiny_export}", "--sizes", "736x1280",
                                 "--threads", "2", "--tune-images", "1", "--hmean", "--gt", str(gt), "--plot", str(png),
                                 "--work", str(work), "--cache", str(tmp_path / "cache"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = helpers.last_json(proc.stdout)
    assert out["weights"]["PP-OCRv3_mobile_det"].startswith("rapidocr-onnxruntime==1.2.13")
    assert set(out["results"]) == {"PP-OCRv3_mobile_det", "tiny"}
    v3 = out["results"]["PP-OCRv3_mobile_det"]["736x1280"]
    assert set(v3) >= {"onnxruntime", "gmacs", "hmean"} and "paddle" not in v3
    assert v3["hmean"]["images_scored"] == 3 and v3["hmean"]["images_with_results"] == 3
    assert 0 < v3["hmean"]["hmean"] <= 1  # PP-OCRv3 finds text on these images
    assert "hmean" in out["results"]["tiny"]["736x1280"] and "paddle" in out["results"]["tiny"]["736x1280"]
    # the scores are those of the official-protocol scorer on the submission the tool kept
    sub = work / "hmean" / "736x1280" / "PP-OCRv3_mobile_det"
    assert sorted(f.name for f in sub.iterdir()) == ["res_img_1.txt", "res_img_2.txt", "res_img_3.txt"]
    score = helpers.run_tool("eval_icdar2015.py", "--gt", str(gt), "--det", str(sub))
    assert score.returncode == 0, score.stderr
    ref = helpers.last_json(score.stdout)
    for key in ("precision", "recall", "hmean"):
        assert v3["hmean"][key] == pytest.approx(ref[key], abs=5e-5)
    assert png.is_file() and cv2.imread(str(png)).shape[1] > 500


def test_bad_arguments_exit_2_with_the_reason(helpers, tmp_path):
    cases = [(["--models", "PP-OCRv9_det"], "unknown model(s) ['PP-OCRv9_det']"),
             (["--models", "det_mv3_db", "--plot", str(tmp_path / "p.png")], "--plot draws hmean: add --hmean"),
             (["--models", "det_mv3_db", "--trained", "x"], "--trained 'x': expected NAME=PATH"),
             (["--models", "det_mv3_db", "--trained", f"x={tmp_path / 'nope'}"], "not a folder")]
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    cv2.imwrite(str(imgs / "img_1.jpg"), helpers.synthetic_image(64, 64))
    for argv, message in cases:
        proc = helpers.run_benchmark("infer.py", "--image_dir", str(imgs), "--work", str(tmp_path / "w"), *argv)
        assert proc.returncode == 2 and message in proc.stderr, (argv, proc.stderr[-2000:])
