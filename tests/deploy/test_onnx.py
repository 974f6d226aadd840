"""ONNX export (paddle2onnx) of MV3 DB and DBNet++ MV3: ONNX Runtime matches Paddle Inference."""
from __future__ import annotations

import importlib.util

import numpy as np
import paddle
import pytest

from dbnetpp.config import load_config
from dbnetpp.deploy import Detector
from dbnetpp.deploy.export import export_model
from dbnetpp.deploy.onnx_export import export_onnx
from dbnetpp.modeling import build_model


def _need_paddle2onnx():
    if importlib.util.find_spec("paddle2onnx") is None:
        pytest.skip("paddle2onnx is not installed (requirements-dev.txt)")
    import paddle2onnx

    if int(paddle.__version__.split(".")[0]) >= 3 and paddle2onnx.__version__.split(".")[0] in ("0", "1"):
        pytest.skip(f"paddle2onnx {paddle2onnx.__version__} cannot read Paddle {paddle.__version__}'s PIR "
                    f"programs (paddle2onnx >= 2.0 can)")


@pytest.fixture(scope="module")
def recipe_exports(helpers, tmp_path_factory):
    """det_mv3_db and det_mv3_db++ recipes, seeded random init, exported with BN folding."""
    _need_paddle2onnx()
    out = {}
    for name, recipe in helpers.ref_models.items():
        cfg = load_config(str(recipe))
        paddle.seed(11)
        model = build_model(cfg["Architecture"])
        out[name] = tmp_path_factory.mktemp(name)
        export_model(model, cfg, str(out[name]))
    return out


@pytest.mark.smoke
def test_onnx_matches_paddle_inference(recipe_exports, helpers):
    img = helpers.synthetic_image(720, 1280, seed=5)
    for i, (name, model_dir) in enumerate(recipe_exports.items()):
        if i == 0:  # the user-facing tool for one model, the API for the other
            proc = helpers.run_tool("export_onnx.py", "--model_dir", str(model_dir))
            assert proc.returncode == 0, proc.stderr
            summary = helpers.last_json(proc.stdout)
            assert summary["max_abs_diff"] <= 1e-4 and summary["onnx_file"].endswith("inference.onnx")
        else:
            res = export_onnx(str(model_dir))
            assert res.max_abs_diff <= 1e-4
        assert (model_dir / "inference.onnx").is_file()
        pd_det = Detector(str(model_dir), backend="paddle", threads=2)
        ort_det = Detector(str(model_dir), backend="onnx", threads=2)
        pd_maps, _ = pd_det.predict_maps([img])
        ort_maps, _ = ort_det.predict_maps([img])
        assert pd_maps[0].shape == ort_maps[0].shape == (736, 1280)  # Eval DetResizeForTest of the recipe
        diff = float(np.abs(pd_maps[0] - ort_maps[0]).max())
        assert diff <= 1e-4, f"{name}: ONNX Runtime differs from Paddle Inference by {diff}"


def test_onnx_graph_has_dynamic_input(recipe_exports):
    import onnx

    model_dir = recipe_exports["det_mv3_db"]
    if not (model_dir / "inference.onnx").is_file():
        export_onnx(str(model_dir), check_shape=None)
    graph = onnx.load(str(model_dir / "inference.onnx")).graph
    dims = graph.input[0].type.tensor_type.shape.dim
    assert graph.input[0].name == "x" and len(dims) == 4 and dims[1].dim_value == 3
    assert not dims[2].dim_value and not dims[3].dim_value  # symbolic H and W
    ops = {n.op_type for n in graph.node}
    assert "BatchNormalization" not in ops  # folded at export
    assert {"Conv", "ConvTranspose", "Sigmoid"} <= ops
    assert not ops & {"Resize", "Upsample"}  # the FPN's nearest upsampling is a pixel repeat (no interp op)
