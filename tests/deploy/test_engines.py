"""PaddleEngine on Paddle 3 programs: full oneDNN placement for our exports (no nearest_interp), the
placement pass left out only for programs that hold nearest_interp (which oneDNN cannot run there)."""
from __future__ import annotations

import numpy as np
import paddle
import pytest

from dbnetpp.deploy import engines
from dbnetpp.deploy.engines import PaddleEngine
from dbnetpp.deploy.settings import InferenceSettings

paddle3 = pytest.mark.skipif(paddle.__version__.startswith("2."), reason="Paddle 3 PIR programs (inference.json)")


class _NearestUp(paddle.nn.Layer):
    """A conv and PaddleOCR's former FPN upsampling (nearest interpolation by a scale factor)."""

    def __init__(self):
        super().__init__()
        self.conv = paddle.nn.Conv2D(3, 1, 3, padding=1)

    def forward(self, x):
        return paddle.nn.functional.sigmoid(paddle.nn.functional.upsample(self.conv(x), scale_factor=2,
                                                                          mode="nearest"))


def _spy_deleted_passes(monkeypatch):
    deleted = []
    real = engines._has_op

    def has_op(program_file, op):
        found = real(program_file, op)
        deleted.append(found)
        return found

    monkeypatch.setattr(engines, "_has_op", has_op)
    return deleted


@paddle3
def test_our_export_keeps_full_onednn_placement(tiny_export, helpers, monkeypatch):
    dep = InferenceSettings.load(str(tiny_export)).deploy
    model_file = tiny_export / dep["model_file"]
    assert model_file.suffix == ".json" and "nearest_interp" not in model_file.read_text(encoding="utf-8")
    seen = _spy_deleted_passes(monkeypatch)
    engine = PaddleEngine(str(model_file), str(tiny_export / dep["params_file"]), threads=2, mkldnn=True)
    assert seen == [False]  # the placement pass stays
    x = np.random.default_rng(0).standard_normal((1, 3, 96, 160)).astype(np.float32)
    _, model = helpers.tiny_model()
    with paddle.no_grad():
        want = model(paddle.to_tensor(x))["maps"].numpy()
    np.testing.assert_allclose(engine(x), want, atol=1e-4, rtol=0)


@paddle3
def test_a_program_with_nearest_interp_still_runs_under_onednn(tmp_path, monkeypatch):
    paddle.seed(0)
    net = _NearestUp()
    net.eval()
    spec = [paddle.static.InputSpec([None, 3, None, None], "float32", "x")]
    paddle.jit.save(paddle.jit.to_static(net, input_spec=spec, full_graph=True), str(tmp_path / "inference"))
    program = tmp_path / "inference.json"
    assert "nearest_interp" in program.read_text(encoding="utf-8")
    seen = _spy_deleted_passes(monkeypatch)
    engine = PaddleEngine(str(program), str(tmp_path / "inference.pdiparams"), threads=2, mkldnn=True)
    assert seen == [True]
    x = np.random.default_rng(1).standard_normal((1, 3, 32, 48)).astype(np.float32)
    with paddle.no_grad():
        want = net(paddle.to_tensor(x)).numpy()
    np.testing.assert_allclose(engine(x), want, atol=1e-5, rtol=0)
