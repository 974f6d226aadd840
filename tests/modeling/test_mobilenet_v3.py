"""MobileNetV3 backbone: variants, output strides/channels, SE, argument validation, PaddleClas names."""
from __future__ import annotations

import paddle
import pytest

from dbnetpp.errors import ConfigError
from dbnetpp.modeling.backbones.mobilenet_v3 import MobileNetV3, make_divisible
from dbnetpp.registry import BACKBONES


def test_make_divisible():
    assert [make_divisible(16 * s) for s in (0.35, 0.5, 0.75, 1.0)] == [8, 8, 16, 16]
    assert make_divisible(960 * 0.5) == 480 and make_divisible(576 * 0.35) == 200
    assert make_divisible(10) == 16  # never more than 10% below v: 8 < 0.9 * 10 -> 16


@pytest.mark.parametrize("model_name,scale,channels", [
    ("large", 0.5, [16, 24, 56, 480]),
    ("large", 1.0, [24, 40, 112, 960]),
    ("large", 0.35, [8, 16, 40, 336]),
    ("small", 0.35, [8, 8, 16, 200]),
    ("small", 1.0, [16, 24, 48, 576]),
])
def test_outputs_strides_and_channels(model_name, scale, channels):
    net = MobileNetV3(model_name=model_name, scale=scale)
    assert net.out_channels == channels
    net.eval()
    with paddle.no_grad():
        outs = net(paddle.zeros([1, 3, 64, 96]))
    assert [list(o.shape) for o in outs] == [[1, c, 64 // s, 96 // s] for c, s in zip(channels, (4, 8, 16, 32))]


def test_stage_split_names():
    assert [n.split(".")[0] for n in MobileNetV3(model_name="large").block_names()].count("stage0") == 3
    small = MobileNetV3(model_name="small")
    # small: the first stride-2 block stays in stage0, the second one opens stage1
    assert small.block_names()[:3] == ["stage0.0", "stage1.0", "stage1.1"]


def test_disable_se_removes_se_modules():
    with_se = MobileNetV3(model_name="large", scale=0.5)
    without = MobileNetV3(model_name="large", scale=0.5, disable_se=True)
    names_se = [k for k in with_se.state_dict() if ".mid_se." in k]
    assert len(names_se) == 8 * 4  # 8 SE blocks in large, conv1/conv2 weight+bias each
    assert not [k for k in without.state_dict() if ".mid_se." in k]
    assert set(without.state_dict()) == set(with_se.state_dict()) - set(names_se)


def test_se_is_hard_sigmoid_slope_0_2():
    se = MobileNetV3(model_name="large", scale=0.5).stage1[0].mid_se
    for p in se.parameters():  # conv2 output = its bias = 1.0 everywhere -> gate 0.2 * 1 + 0.5 = 0.7
        p.set_value(paddle.zeros_like(p))
    se.conv2.bias.set_value(paddle.ones_like(se.conv2.bias))
    x = paddle.ones([1, se.conv1.weight.shape[1], 4, 4])
    assert float(se(x).mean()) == pytest.approx(0.7)


def test_yaml_validation_errors():
    with pytest.raises(ConfigError, match="scale"):
        BACKBONES.build({"name": "MobileNetV3", "scale": 0.6}, where="Architecture.Backbone", in_channels=3)
    with pytest.raises(ConfigError, match="model_name"):
        BACKBONES.build({"name": "MobileNetV3", "model_name": "medium"}, where="Architecture.Backbone", in_channels=3)
    with pytest.raises(ConfigError, match="Did you mean 'disable_se'"):
        BACKBONES.build({"name": "MobileNetV3", "disable_SE": True}, where="Architecture.Backbone", in_channels=3)


def test_paddleclas_names_map_onto_blocks():
    net = MobileNetV3(model_name="large", scale=0.5)
    assert net.from_paddleclas_name("conv1.bn._mean") == "conv.bn._mean"
    assert net.from_paddleclas_name("conv2.expand_conv.conv.weight") == "stage0.0.expand_conv.conv.weight"
    assert net.from_paddleclas_name("conv5.mid_se.conv1.bias") == "stage1.0.mid_se.conv1.bias"
    assert net.from_paddleclas_name("conv16.linear_conv.bn.weight") == "stage3.2.linear_conv.bn.weight"
    assert net.from_paddleclas_name("last_second_conv.conv.weight") == "stage3.3.conv.weight"
    # newer PaddleClas names
    assert net.from_paddleclas_name("conv.conv.weight") == "conv.conv.weight"
    assert net.from_paddleclas_name("blocks.3.mid_se.conv2.weight") == "stage1.0.mid_se.conv2.weight"
    assert net.from_paddleclas_name("blocks.14.expand_conv.bn.bias") == "stage3.2.expand_conv.bn.bias"
    for classifier in ("last_conv.weight", "out.weight", "out.bias", "conv17.conv.weight", "fc.weight",
                       "blocks.15.conv.weight", "blocks.x.conv.weight"):
        assert net.from_paddleclas_name(classifier) is None
    state = net.state_dict()
    assert "stage1.0.mid_se.conv1.bias" in state and "stage3.3.conv.weight" in state
