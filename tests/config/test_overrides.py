"""`-o Section.key=value` overrides: YAML typing, PaddleOCR merge semantics, clear errors."""
import pytest

from dbnetpp.config import apply_overrides, load_yaml, parse_overrides
from dbnetpp.errors import ConfigError


def _cfg():
    return {
        "Global": {"epoch_num": 1200, "use_gpu": True, "pretrained_model": None},
        "Train": {"dataset": {"transforms": [{"DecodeImage": {"img_mode": "BGR"}},
                                             {"EastRandomCropData": {"size": [640, 640]}},
                                             {"ToCHWImage": None}]},
                  "loader": {"batch_size_per_card": 16}},
    }


@pytest.mark.smoke
def test_values_are_yaml_typed():
    parsed = dict(parse_overrides(["A.i=8", "A.f=1e-3", "A.b=false", "A.l=[320, 320]", "A.s=./out/x",
                                   "A.n=", "A.d={a: 1}", "A.e=a=b"]))
    assert parsed["A.i"] == 8 and isinstance(parsed["A.i"], int)
    assert parsed["A.f"] == pytest.approx(1e-3) and isinstance(parsed["A.f"], float)
    assert parsed["A.b"] is False
    assert parsed["A.l"] == [320, 320]
    assert parsed["A.s"] == "./out/x"
    assert parsed["A.n"] is None
    assert parsed["A.d"] == {"a": 1}
    assert parsed["A.e"] == "a=b"  # only the first '=' splits


def test_nested_override_and_new_leaf():
    cfg = apply_overrides(_cfg(), ["Global.epoch_num=3", "Train.loader.batch_size_per_card=2",
                                   "Global.checkpoints=./output/latest"])
    assert cfg["Global"]["epoch_num"] == 3
    assert cfg["Train"]["loader"]["batch_size_per_card"] == 2
    assert cfg["Global"]["checkpoints"] == "./output/latest"


def test_list_index_into_transforms():
    cfg = apply_overrides(_cfg(), ["Train.dataset.transforms.1.EastRandomCropData.size=[320,320]",
                                   "Train.dataset.transforms.2.ToCHWImage.x=1"])
    assert cfg["Train"]["dataset"]["transforms"][1]["EastRandomCropData"]["size"] == [320, 320]
    assert cfg["Train"]["dataset"]["transforms"][2]["ToCHWImage"] == {"x": 1}


def test_top_level_dict_merges_like_paddleocr():
    cfg = apply_overrides(_cfg(), ["Global={epoch_num: 5}"])
    assert cfg["Global"]["epoch_num"] == 5 and cfg["Global"]["use_gpu"] is True


@pytest.mark.parametrize("opt,needle", [
    ("Globl.epoch_num=3", "Did you mean 'Global'"),
    ("Train.loder.batch_size_per_card=2", "'Train.loder' does not exist"),
    ("Train.dataset.transforms.7.X.y=1", "index 7 out of range"),
    ("Train.dataset.transforms.x.X.y=1", "must be a list index"),
    ("Global.epoch_num.x=1", "is a value, not a section"),
    ("epoch_num", "must look like Section.key=value"),
    ("Global.epoch_num=[1,", "not valid YAML"),
])
def test_bad_overrides_name_the_key(opt, needle):
    with pytest.raises(ConfigError) as e:
        apply_overrides(_cfg(), [opt], file="cfg.yml")
    assert needle in str(e.value)


def test_yaml_errors_name_file_and_line(tmp_path):
    p = tmp_path / "bad.yml"
    p.write_text("Global:\n  epoch_num: 3\n  x: [1, 2\n")
    with pytest.raises(ConfigError) as e:
        load_yaml(str(p))
    assert str(p) in str(e.value) and "line" in str(e.value)
    with pytest.raises(ConfigError, match="not found"):
        load_yaml(str(tmp_path / "missing.yml"))
    txt = tmp_path / "c.txt"
    txt.write_text("a: 1\n")
    with pytest.raises(ConfigError, match=".yml or .yaml"):
        load_yaml(str(txt))
