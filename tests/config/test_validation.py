"""``validate_config`` rules beyond key names: duplicate YAML keys, model input sizes (multiples of 32,
bounded), and transform pipelines that make what the trainer and the evaluator read."""
from pathlib import Path

import pytest

from dbnetpp.config import apply_overrides, load_config, load_yaml, validate_config, yaml_load
from dbnetpp.errors import ConfigError

TINY = Path(__file__).resolve().parents[1] / "fixtures" / "configs" / "tiny_det.yml"


def _errors(*overrides):
    """The ConfigError of the tiny config with ``overrides``."""
    cfg = apply_overrides(load_yaml(str(TINY)), list(overrides), file=str(TINY))
    with pytest.raises(ConfigError) as info:
        validate_config(cfg, str(TINY))
    return info.value


@pytest.mark.smoke
def test_duplicate_key_names_file_line_and_key(tmp_path):
    path = tmp_path / "dup.yml"
    path.write_text("Global:\n  seed: 1\n  epoch_num: 2\n  epoch_num: 50\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(str(path))
    msg = str(info.value)
    assert str(path) in msg and "line 4" in msg and "duplicate key 'epoch_num'" in msg and "line 3" in msg


def test_duplicate_keys_in_nested_and_flow_mappings():
    with pytest.raises(Exception, match="duplicate key 'size'"):
        yaml_load("T:\n  - Crop: {size: [64, 64], size: [32, 32]}\n")
    with pytest.raises(ConfigError, match="(?s)not valid YAML.*duplicate key 'a'"):
        apply_overrides({"G": {}}, ["G.x={a: 1, a: 2}"])


def test_merge_keys_may_be_overridden():
    cfg = yaml_load("base: &b {lr: 1, wd: 2}\nopt:\n  <<: *b\n  lr: 3\n")
    assert cfg["opt"] == {"lr": 3, "wd": 2}
    assert yaml_load("a: 1\nb: {a: 2}\n") == {"a": 1, "b": {"a": 2}}  # same key in different mappings


@pytest.mark.parametrize("override, key, needle", [
    ("Train.dataset.transforms.3.EastRandomCropData.size=[70,70]",
     "Train.dataset.transforms.3.EastRandomCropData.size", "multiple of 32"),
    ("Train.dataset.transforms.3.EastRandomCropData.size=[64,100]",
     "Train.dataset.transforms.3.EastRandomCropData.size", "e.g. [64, 96]"),
    ("Train.dataset.transforms.3.EastRandomCropData.size=[100000,100000]",
     "Train.dataset.transforms.3.EastRandomCropData.size", "at most 4096"),
    ("Train.dataset.transforms.3.EastRandomCropData.size=[64]",
     "Train.dataset.transforms.3.EastRandomCropData.size", "two positive integers"),
    ("Eval.dataset.transforms.2.DetResizeForTest.image_shape=[100,96]",
     "Eval.dataset.transforms.2.DetResizeForTest.image_shape", "multiple of 32"),
    ("Eval.dataset.transforms.2.DetResizeForTest.image_shape=[8224,64]",
     "Eval.dataset.transforms.2.DetResizeForTest.image_shape", "at most 8192"),
    ("Eval.dataset.transforms.2={Resize: {size: [50, 64]}}",
     "Eval.dataset.transforms.2.Resize.size", "multiple of 32"),
])
def test_model_input_sizes_are_checked(override, key, needle):
    err = _errors(override)
    assert err.key == key and needle in str(err) and str(TINY) in str(err)


def test_valid_sizes_pass():
    cfg = apply_overrides(load_yaml(str(TINY)), [
        "Train.dataset.transforms.3.EastRandomCropData.size=[4096,32]",
        "Eval.dataset.transforms.2.DetResizeForTest.image_shape=[8192,736]"])
    validate_config(cfg, str(TINY))
    # the limit modes round to multiples of 32 themselves: any limit is fine
    cfg = apply_overrides(load_yaml(str(TINY)), ["Eval.dataset.transforms.2.DetResizeForTest={limit_side_len: 950}",
                                                 "Eval.loader.batch_size_per_card=1"])  # a keep-ratio resize
    validate_config(cfg, str(TINY))


@pytest.mark.parametrize("override, key, needle", [
    ("Train.dataset.transforms=[]", "Train.dataset.transforms", "is empty"),
    ("Train.dataset.transforms=", "Train.dataset.transforms", "is empty"),
    ("Eval.dataset.transforms=[]", "Eval.dataset.transforms", "is empty"),
    ("Train.dataset.transforms.0={ToCHWImage: null}", "Train.dataset.transforms", "no DecodeImage"),
    ("Train.dataset.transforms.8={ToCHWImage: null}", "Train.dataset.transforms", "no KeepKeys"),
    ("Train.dataset.transforms.8.KeepKeys.keep_keys=[image,foo]",
     "Train.dataset.transforms.8.KeepKeys.keep_keys", "'foo', which no transform before it makes"),
    ("Train.dataset.transforms.8.KeepKeys.keep_keys=[image,shrink_map,shrink_mask]",
     "Train.dataset.transforms.8.KeepKeys.keep_keys", "'threshold_map', 'threshold_mask'"),
    ("Train.dataset.transforms.4={ToCHWImage: null}",  # MakeBorderMap removed: threshold_* never made
     "Train.dataset.transforms.8.KeepKeys.keep_keys", "'threshold_map', 'threshold_mask', which no transform"),
    ("Eval.dataset.transforms.5.KeepKeys.keep_keys=[image,polys,ignore_tags]",
     "Eval.dataset.transforms.5.KeepKeys.keep_keys", "must keep 'shape'"),
    ("Eval.dataset.transforms.5.KeepKeys.keep_keys=[]", "Eval.dataset.transforms.5.KeepKeys.keep_keys",
     "non-empty list"),
    ("Eval.dataset.transforms.5.KeepKeys.keep_keys=[image,image]", "Eval.dataset.transforms.5.KeepKeys.keep_keys",
     "duplicates"),
])
def test_pipelines_must_make_what_training_and_evaluation_read(override, key, needle):
    err = _errors(override)
    assert err.key == key and needle in str(err) and str(TINY) in str(err)


def test_extra_kept_keys_are_fine():
    cfg = apply_overrides(load_yaml(str(TINY)), [
        "Eval.dataset.transforms.5.KeepKeys.keep_keys=[image,shape,polys,ignore_tags,texts,img_path]"])
    validate_config(cfg, str(TINY))
