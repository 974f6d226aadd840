"""Interop with PaddleOCR 2.5's own inference code (PyPI ``paddleocr==2.5.0.3``).

PaddleOCR's ``tools/infer/predict_det.py`` ``TextDetector`` loads our exported MV3 DB and
DBNet++ models and must return the same probability maps and the same boxes as
``tools/infer_det.py`` on real ICDAR2015 test images.  The weights are PaddleOCR's reference
random init (no trained text detector is available offline); its maps are noisy around 0.5, so
the thresholds are lowered (``LOW_THRESHOLDS``) to give dozens of boxes per image.
"""
from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import paddle
import pytest

from dbnetpp.deploy import Detector

RUNNER = Path(__file__).resolve().parent / "ppocr25_det_runner.py"


@pytest.fixture(scope="module")
def ppocr_results(ref_exports, icdar_images, helpers, tmp_path_factory):
    if importlib.util.find_spec("paddleocr") is None:
        pytest.skip("paddleocr==2.5.0.3 is not installed (init.sh installs it with --no-deps)")
    if not all((Path(d) / "inference.pdmodel").is_file() for d in ref_exports.values()):
        pytest.skip(f"PaddleOCR 2.5's TextDetector reads inference.pdmodel; Paddle {paddle.__version__} exports "
                    f"inference.json (PaddleOCR 3.x loads those: tests/deploy/test_deploy_interop.py)")
    work = tmp_path_factory.mktemp("ppocr25")
    jobs = []
    for name, model_dir in ref_exports.items():
        post = helpers.low_thresholds[name]
        jobs.append({"model_dir": str(model_dir), "images": [str(p) for p in icdar_images],
                     "limit_side_len": 960, "limit_type": "max", "thresh": post["thresh"],
                     "box_thresh": post["box_thresh"], "unclip_ratio": 1.5, "threads": 2, "mkldnn": True,
                     "maps_out": str(work / f"{name}_maps.npz")})
    job_file = work / "jobs.json"
    job_file.write_text(json.dumps(jobs), encoding="utf-8")
    proc = subprocess.run([sys.executable, str(RUNNER), str(job_file)], capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(proc.stdout.strip().splitlines()[-1])
    return {name: (res["boxes"], np.load(job["maps_out"]))
            for name, res, job in zip(ref_exports, results, jobs)}


@pytest.mark.parametrize("name", ["det_mv3_db", "det_mv3_dbpp"])
def test_paddleocr_textdetector_matches_infer_det(name, ppocr_results, ref_exports, icdar_images, helpers,
                                                  tmp_path):
    ppocr_boxes, ppocr_maps = ppocr_results[name]
    model_dir = ref_exports[name]
    # probability maps: same program, same pre-processing -> same numbers
    det = Detector(str(model_dir), threads=2, mkldnn=True)
    for i, path in enumerate(icdar_images):
        maps, shapes = det.predict_maps([cv2.imread(str(path))])
        assert maps[0].shape == ppocr_maps[f"map_{i}"].shape == (544, 960)
        assert float(np.abs(maps[0] - ppocr_maps[f"map_{i}"]).max()) <= 1e-5
    # boxes: our CLI (the user-facing path) vs PaddleOCR's TextDetector
    folder = tmp_path / "images"
    folder.mkdir()
    for p in icdar_images:
        (folder / p.name).symlink_to(p)
    proc = helpers.run_tool("infer_det.py", "--model_dir", str(model_dir), "--image", str(folder),
                            "--out", str(tmp_path / "out"), "--threads", "2", "--mkldnn", "on", "--no-vis")
    assert proc.returncode == 0, proc.stderr
    ours = {Path(r["image"]).name: r["boxes"]
            for r in json.loads((tmp_path / "out" / "results.json").read_text())["images"]}
    for path, theirs in zip(icdar_images, ppocr_boxes):
        assert len(theirs) >= 3, "lowered thresholds should give several boxes"
        assert ours[path.name] == theirs
