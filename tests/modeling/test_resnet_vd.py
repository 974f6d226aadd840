"""ResNet_vd backbone: depths, output channels/strides, vd shortcut, argument validation."""
from __future__ import annotations

import paddle
import pytest

from dbnetpp.errors import ConfigError
from dbnetpp.modeling.backbones.resnet_vd import ResNet_vd
from dbnetpp.registry import BACKBONES


@pytest.mark.parametrize("layers,channels,blocks", [
    (18, [64, 128, 256, 512], 8),
    (34, [64, 128, 256, 512], 16),
    (50, [256, 512, 1024, 2048], 16),
])
def test_channels_strides_and_block_names(layers, channels, blocks):
    net = ResNet_vd(layers=layers)
    assert net.out_channels == channels
    assert len({k.split(".")[0] for k in net.state_dict() if k.startswith("bb_")}) == blocks
    if layers < 50:
        net.eval()
        with paddle.no_grad():
            outs = net(paddle.zeros([1, 3, 64, 64]))
        assert [list(o.shape) for o in outs] == [[1, c, 64 // s, 64 // s] for c, s in zip(channels, (4, 8, 16, 32))]


def test_vd_shortcut_has_avg_pool_except_first_block():
    net = ResNet_vd(layers=18)
    assert not net.bb_0_0.short.is_vd_mode  # the first block keeps the plain 1x1 projection
    assert net.bb_1_0.short.is_vd_mode and net.bb_3_0.short.is_vd_mode
    assert not hasattr(net.bb_1_1, "short")


def test_out_indices():
    net = ResNet_vd(layers=18, out_indices=[1, 3])
    assert net.out_channels == [128, 512]
    net.eval()
    with paddle.no_grad():
        outs = net(paddle.zeros([1, 3, 64, 64]))
    assert [o.shape[1] for o in outs] == [128, 512]


def test_yaml_validation_errors():
    with pytest.raises(ConfigError, match="deformable"):
        BACKBONES.build({"name": "ResNet_vd", "layers": 50, "dcn_stage": [False, True, True, True]},
                        where="Architecture.Backbone", in_channels=3)
    with pytest.raises(ConfigError, match="layers must be one of"):
        BACKBONES.build({"name": "ResNet_vd", "layers": 42}, where="Architecture.Backbone", in_channels=3)
    with pytest.raises(ConfigError, match="ResNet_vd"):  # PaddleOCR 2.5 called it 'ResNet'
        BACKBONES.build({"name": "ResNet_v", "layers": 50}, where="Architecture.Backbone", in_channels=3)
    net = BACKBONES.build({"name": "ResNet_vd", "layers": 18, "dcn_stage": [False] * 4},
                          where="Architecture.Backbone", in_channels=3)
    assert net.layers == 18


def test_paddleclas_names():
    net = ResNet_vd(layers=50)
    assert net.from_paddleclas_name("stem.1.bn.weight") == "conv1_2._batch_norm.weight"
    assert net.from_paddleclas_name("blocks.3.short.conv.weight") == "bb_1_0.short._conv.weight"
    assert net.from_paddleclas_name("blocks.15.conv2.bn._variance") == "bb_3_2.conv2._batch_norm._variance"
    assert net.from_paddleclas_name("fc.weight") is None
    assert net.from_paddleclas_name("blocks.16.conv0.conv.weight") is None
    state = net.state_dict()
    assert {"conv1_2._batch_norm.weight", "bb_1_0.short._conv.weight", "bb_3_2.conv2._batch_norm._variance"} <= set(state)
