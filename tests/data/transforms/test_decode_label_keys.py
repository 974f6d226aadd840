"""DecodeImage, DetLabelEncode, KeepKeys, create_transforms / Compose, numeric config values."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from dbnetpp.errors import ConfigError, DataError
from dbnetpp.data.transforms import (Compose, DecodeImage, DetLabelEncode, KeepKeys, MakeBorderMap,
                                     MakeShrinkMap, create_transforms)
from dbnetpp.values import parse_number
from dbnetpp.registry import TRANSFORMS

PADDLE_NAMES = ["DecodeImage", "DetLabelEncode", "IaaAugment", "EastRandomCropData", "MakeBorderMap",
                "MakeShrinkMap", "NormalizeImage", "ToCHWImage", "KeepKeys", "DetResizeForTest", "Resize"]


def _jpeg(h=40, w=60) -> bytes:
    img = np.zeros((h, w, 3), np.uint8)
    img[..., 0], img[..., 2] = 200, 30  # blue-ish in BGR
    ok, buf = cv2.imencode(".png", img)
    assert ok
    return buf.tobytes()


@pytest.mark.smoke
def test_registered_under_paddleocr_names():
    for name in PADDLE_NAMES:
        assert name in TRANSFORMS, name


def test_decode_image_modes():
    raw = _jpeg()
    bgr = DecodeImage(img_mode="BGR")({"image": raw})["image"]
    assert bgr.shape == (40, 60, 3) and bgr.dtype == np.uint8 and bgr[0, 0, 0] == 200
    rgb = DecodeImage(img_mode="RGB")({"image": raw})["image"]
    assert rgb[0, 0, 2] == 200 and rgb.flags.c_contiguous
    gray = DecodeImage(img_mode="GRAY")({"image": raw})["image"]
    assert gray.shape == (40, 60, 3) and (gray[..., 0] == gray[..., 1]).all()
    chw = DecodeImage(img_mode="BGR", channel_first=True)({"image": raw})["image"]
    assert chw.shape == (3, 40, 60)
    assert DecodeImage(img_mode="BGR", ignore_orientation=True)({"image": raw})["image"].shape == (40, 60, 3)


def test_decode_image_errors():
    with pytest.raises(DataError, match="cannot decode"):
        DecodeImage()({"image": b"not an image at all"})
    with pytest.raises(DataError, match="empty"):
        DecodeImage()({"image": b""})
    with pytest.raises(DataError, match="bytes"):
        DecodeImage()({"image": "img_1.jpg"})
    with pytest.raises(ConfigError, match="img_mode"):
        create_transforms([{"DecodeImage": {"img_mode": "HSV"}}])


def _label(boxes):
    return json.dumps(boxes)


@pytest.mark.shared
def test_label_encode_matches_paddleocr(ref, icdar_samples):
    ours, theirs = DetLabelEncode(), ref.label_ops.DetLabelEncode()
    for name, _, label in icdar_samples:
        a, b = ours({"label": label}), theirs({"label": label})
        assert a["polys"].dtype == np.float32
        np.testing.assert_array_equal(a["polys"], b["polys"], err_msg=name)
        assert a["texts"] == b["texts"] and a["ignore_tags"].tolist() == b["ignore_tags"].tolist()


def test_label_encode_semantics():
    d = DetLabelEncode()({"label": _label([
        {"transcription": "abc", "points": [[0, 0], [10, 0], [10, 5], [0, 5]]},
        {"transcription": "###", "points": [[1, 1], [4, 1], [4, 4], [3, 5], [1, 4]]},
        {"transcription": "*", "points": [0, 0, 3, 0, 3, 3]},  # flat list
    ])})
    assert d["polys"].shape == (3, 5, 2) and d["polys"].dtype == np.float32
    np.testing.assert_array_equal(d["polys"][0, 4], [0, 5])  # padded with its last point
    np.testing.assert_array_equal(d["polys"][2, 3:], [[3, 3], [3, 3]])
    assert d["ignore_tags"].dtype == bool and d["ignore_tags"].tolist() == [False, True, True]
    assert d["texts"] == ["abc", "###", "*"]
    empty = DetLabelEncode()({"label": "[]"})  # zero boxes: a valid all-negative image
    assert empty["polys"].shape == (0, 4, 2) and empty["ignore_tags"].shape == (0,) and empty["texts"] == []


@pytest.mark.parametrize("label, message", [
    ("{not json", "not valid JSON"),
    ('{"points": []}', "JSON list"),
    ('[{"transcription": "a"}]', "no 'points'"),
    ('[{"points": [[0,0],[1,0],[1,1]]}]', "no 'transcription'"),
    ('[{"transcription": "a", "points": [0, 0, 1, 0, 1]}]', "odd number of coordinates"),
    ('[{"transcription": "a", "points": [[0, 0], [1, 0], [1]]}]', "ragged"),
    ('[{"transcription": "a", "points": [[0, 0, 0], [1, 0, 0], [1, 1, 1]]}]', "2 coordinates"),
    ('[{"transcription": "a", "points": [[0, 0], [1, NaN], [1, 1]]}]', "NaN or infinity"),
    ('[{"transcription": "a", "points": [[0, 0], [1, Infinity], [1, 1]]}]', "NaN or infinity"),
    ('[{"transcription": "a", "points": [[0, 0], [1, "2"], [1, 1]]}]', "only numbers"),
    ('[{"transcription": "a", "points": [[0, 0], [1, 1]]}]', "at least 3 points"),
    ('[{"transcription": "a", "points": []}]', "empty"),
    ('[{"transcription": 5, "points": [[0, 0], [1, 0], [1, 1]]}]', "must be a string"),
    ('[[0, 0, 1, 1]]', "must be an object"),
    ('[{"transcription": "a", "points": [[10, 10], [1e39, 10], [60, 40], [10, 40]]}]', "beyond float32's range"),
    ('[{"transcription": "a", "points": [[10, true], [20, 10], [60, 40]]}]', "contains true/false"),
])
def test_label_encode_errors(label, message):
    with pytest.raises(DataError, match=message):
        DetLabelEncode()({"label": label})


def test_label_far_outside_the_image_is_an_error():
    """1e29 is a float32, but no position in a 100x200 image; a label a little over the border is fine."""
    image = np.zeros((100, 200, 3), np.uint8)
    far = '[{"transcription": "a", "points": [[10, 10], [1e29, 10], [60, 40], [10, 40]]}]'
    with pytest.raises(DataError, match=r"point \(1e\+29, 10\) lies far outside the 200x100 image"):
        DetLabelEncode()({"label": far, "image": image})
    near = '[{"transcription": "a", "points": [[-30, -5], [250, 10], [260, 140], [10, 120]]}]'
    assert DetLabelEncode()({"label": near, "image": image})["polys"].shape == (1, 4, 2)
    chw = np.zeros((3, 100, 200), np.float32)  # channel-first decode: the same image size is read
    with pytest.raises(DataError, match="200x100 image"):
        DetLabelEncode()({"label": far, "image": chw})


def test_keep_keys_returns_dict_in_order():
    out = KeepKeys(keep_keys=["shrink_map", "image"])({"image": 1, "shrink_map": 2, "other": 3})
    assert isinstance(out, dict) and list(out) == ["shrink_map", "image"] and out["image"] == 1
    with pytest.raises(DataError, match="'threshold_map'"):
        KeepKeys(keep_keys=["threshold_map"])({"image": 1})


def test_create_transforms_errors_name_the_entry():
    with pytest.raises(ConfigError, match=r"Train.dataset.transforms\[1\]") as exc:
        create_transforms([{"DecodeImage": None}, {"MakeShrinkMapp": {"min_text_size": 8}}])
    assert "MakeShrinkMap" in str(exc.value)  # suggestion
    with pytest.raises(ConfigError, match="shrink_ration"):
        create_transforms([{"MakeBorderMap": {"shrink_ration": 0.4}}])
    with pytest.raises(ConfigError, match="single"):
        create_transforms([{"DecodeImage": None, "DetLabelEncode": None}])
    with pytest.raises(ConfigError, match="not supported"):
        create_transforms([{"IaaAugment": {"augmenter_args": [{"type": "GaussianBlur", "args": {}}]}}])
    with pytest.raises(ConfigError, match="no argument 'rotation'"):
        create_transforms([{"IaaAugment": {"augmenter_args": [{"type": "Affine", "args": {"rotation": 5}}]}}])


@pytest.mark.smoke
def test_compose_runs_in_order_and_fuses():
    t = create_transforms([{"MakeShrinkMap": None}, {"MakeBorderMap": None},
                           {"NormalizeImage": {"order": "hwc"}}, {"ToCHWImage": None}])
    assert isinstance(t, Compose)
    assert [n for n, _ in t.steps] == ["MakeShrinkMap", "MakeBorderMap", "NormalizeImage+ToCHWImage"]
    assert [type(x).__name__ for x in t.transforms] == ["MakeShrinkMap", "MakeBorderMap", "NormalizeImage",
                                                        "ToCHWImage"]
    img = np.random.RandomState(0).randint(0, 256, (32, 48, 3)).astype(np.uint8)
    polys = np.array([[[4, 4], [40, 4], [40, 20], [4, 20]]], np.float32)
    fused = t({"image": img, "polys": polys, "ignore_tags": np.array([False])})
    plain = Compose(t.transforms, fuse=False)({"image": img, "polys": polys, "ignore_tags": np.array([False])})
    for k in ("image", "shrink_map", "threshold_map"):
        np.testing.assert_array_equal(fused[k], plain[k])
    assert fused["image"].shape == (3, 32, 48) and fused["image"].flags.c_contiguous


def test_parse_number_is_safe():
    assert parse_number("1./255.") == pytest.approx(1 / 255)
    assert parse_number(" -(2 + 3) * 0.5 ") == -2.5
    assert parse_number(2) == 2.0
    for bad in ["__import__('os')", "x", "1/0", "1e999", "", "2**1000", "[1]", "True"]:
        with pytest.raises(ValueError):
            parse_number(bad)
    with pytest.raises(ConfigError, match="scale"):
        create_transforms([{"NormalizeImage": {"scale": "open('f')"}}])


def test_label_maps_on_empty_image():
    img = np.zeros((64, 80, 3), np.uint8)
    d = {"image": img, "polys": np.zeros((0, 4, 2), np.float32), "ignore_tags": np.zeros(0, bool)}
    d = MakeShrinkMap()(MakeBorderMap()(d))
    assert d["shrink_map"].shape == (64, 80) and d["shrink_map"].max() == 0 and d["shrink_mask"].min() == 1
    assert d["threshold_mask"].max() == 0 and np.allclose(d["threshold_map"], 0.3)


def test_compose_retains_freed_memory_once_per_process():
    import os
    import platform

    from dbnetpp.data.transforms import retain_freed_memory

    if platform.system() == "Linux" and platform.libc_ver()[0] == "glibc":
        assert retain_freed_memory() is True
    t = create_transforms([{"ToCHWImage": None}])
    assert t._configured_pid is None
    t({"image": np.zeros((2, 3, 3), np.uint8)})
    assert t._configured_pid == os.getpid()
    off = create_transforms([{"ToCHWImage": None}], retain_memory=False)
    off({"image": np.zeros((2, 3, 3), np.uint8)})
    assert off._configured_pid is None
