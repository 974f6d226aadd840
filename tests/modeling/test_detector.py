"""build_model / DetModel: wiring, YAML configs, error messages."""
from __future__ import annotations

import paddle
import pytest

from dbnetpp.config import load_config
from dbnetpp.errors import ConfigError
from dbnetpp.modeling import DetModel, build_model

SMALL = {"model_type": "det", "algorithm": "DB", "Transform": None,
         "Backbone": {"name": "MobileNetV3", "scale": 0.35, "model_name": "small", "disable_se": True},
         "Neck": {"name": "DBFPN", "out_channels": 64},
         "Head": {"name": "DBHead", "k": 50}}


def test_build_and_forward_modes():
    model = build_model(SMALL)
    assert isinstance(model, DetModel)
    assert model.backbone.out_channels == [8, 8, 16, 200] and model.neck.out_channels == 64
    x = paddle.rand([2, 3, 64, 96])
    model.eval()
    with paddle.no_grad():
        assert list(model(x)["maps"].shape) == [2, 1, 64, 96]
    model.train()
    assert list(model(x)["maps"].shape) == [2, 3, 64, 96]
    assert SMALL["Backbone"] == {"name": "MobileNetV3", "scale": 0.35, "model_name": "small", "disable_se": True}


def test_fixture_configs_build(root_dir):
    for name, channels in [("det_mv3_db", [16, 24, 56, 480]), ("det_r50_vd_db", [256, 512, 1024, 2048])]:
        cfg = load_config(str(root_dir / "tests" / "fixtures" / "configs" / f"{name}.yml"))
        assert build_model(cfg["Architecture"]).backbone.out_channels == channels
    cfg = load_config(str(root_dir / "tests" / "fixtures" / "configs" / "det_mv3_db.yml"),
                      ["Architecture.Neck.use_asf=true"])
    assert [k for k in build_model(cfg["Architecture"]).state_dict() if k.startswith("neck.asf.")]


@pytest.mark.parametrize("change,key,message", [
    ({"Backbone": {"name": "MobileNetV4"}}, "Architecture.Backbone.name", "Did you mean 'MobileNetV3'"),
    ({"Backbone": {"name": "MobileNetV3", "scal": 0.5}}, "Architecture.Backbone.scal", "Did you mean 'scale'"),
    ({"Backbone": None}, "Architecture.Backbone", "missing"),
    ({"Head": None}, "Architecture.Head", "missing"),
    ({"Neck": {"name": "DBFPN", "out_channel": 96}}, "Architecture.Neck.out_channel", "out_channels"),
    ({"Transform": {"name": "TPS"}}, "Architecture.Transform", "not supported"),
    ({"model_type": "rec"}, "Architecture.model_type", "only model_type 'det'"),
    ({"Backbon": {}}, "Architecture.Backbon", "Did you mean 'Backbone'"),
])
def test_config_errors_name_the_key(change, key, message):
    with pytest.raises(ConfigError, match=message) as info:
        build_model({**SMALL, **change})
    assert info.value.key == key


def test_head_without_neck_is_a_config_error():
    with pytest.raises(ConfigError, match="needs a neck") as info:
        build_model({**SMALL, "Neck": None})
    assert info.value.key == "Architecture.Head"
