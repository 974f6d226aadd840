"""Parameter / FLOP counting: same numbers as paddle.flops and the PaddleOCR reference figures."""
from __future__ import annotations

import contextlib
import io

import paddle
import pytest

from dbnetpp.modeling import build_model
from dbnetpp.modeling.complexity import count_flops, count_params

# figures of the PaddleOCR reference data (README: "det_mv3_db_small", 1x3x640x640)
SMALL = {"Backbone": {"name": "MobileNetV3", "scale": 0.35, "model_name": "small", "disable_se": True},
         "Neck": {"name": "DBFPN", "out_channels": 256}, "Head": {"name": "DBHead", "k": 50}}


def test_reference_figures_small_model():
    model = build_model(SMALL)
    assert model.backbone.out_channels == [8, 8, 16, 200]
    assert count_params(model) == {"trainable": 1_050_346, "non_trainable": 4_784}
    model.train()
    assert count_flops(model, [1, 3, 640, 640]) == 10_791_728_000
    assert model.training  # mode restored


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # raised inside paddle.flops
@pytest.mark.parametrize("arch", [
    {**SMALL, "Backbone": {"name": "MobileNetV3", "scale": 0.5, "model_name": "large"}, "Neck":
     {"name": "DBFPN", "out_channels": 96, "use_asf": True}},
    {**SMALL, "Backbone": {"name": "ResNet_vd", "layers": 18}},
])
def test_equals_paddle_flops(arch):
    model = build_model(arch)
    with contextlib.redirect_stdout(io.StringIO()):
        expected = paddle.flops(model, [1, 3, 128, 160])
    assert count_flops(model, [1, 3, 128, 160]) == expected > 0
    assert not any(k in model.state_dict() for k in ("total_ops", "total_params"))
