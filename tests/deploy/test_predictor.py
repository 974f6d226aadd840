"""Detector API, batching with padding, settings parsing and the final box step."""
from __future__ import annotations

import numpy as np
import pytest
import yaml

from dbnetpp.deploy import Detector, InferenceSettings, pad_batch, parse_resize
from dbnetpp.deploy.predictor import finish_quads, order_points_clockwise
from dbnetpp.errors import ConfigError, DataError


@pytest.fixture(scope="module")
def detector(tiny_export):
    return Detector(str(tiny_export), threads=2)


@pytest.mark.smoke
def test_detect_returns_boxes_in_image_and_same_map_as_batch(detector, helpers):
    """Same-size images: a batch gives the single-image maps; low thresholds make boxes appear,
    all inside the image, corners clockwise from the top-left."""
    imgs = [helpers.synthetic_image(200, 300, seed=s) for s in (0, 1)]
    maps_b, shapes = detector.predict_maps(imgs)
    for img, m in zip(imgs, maps_b):
        single, shape1 = detector.predict_maps([img])
        np.testing.assert_allclose(single[0], m, atol=1e-5, rtol=0)
        np.testing.assert_allclose(shape1[0], [200, 300, 192 / 200, 288 / 300], rtol=1e-6)
    assert maps_b[0].shape == (192, 288)  # long side <= 960: no scaling, rounded to multiples of 32
    thresh = float(np.median(maps_b[0]))  # random weights: a noisy map around 0.5
    det = Detector(detector.model_dir, postprocess={"thresh": thresh, "box_thresh": thresh})
    boxes, scores = det.detect(imgs[0])
    assert boxes.ndim == 3 and boxes.shape[1:] == (4, 2) and boxes.dtype == np.int32
    assert len(boxes) == len(scores) and len(boxes) > 0
    assert boxes[..., 0].min() >= 0 and boxes[..., 0].max() <= 299
    assert boxes[..., 1].min() >= 0 and boxes[..., 1].max() <= 199
    assert all(s >= thresh for s in scores)


def test_batch_of_different_sizes_is_padded_and_cropped_per_image(detector, helpers):
    small, big = helpers.synthetic_image(100, 140, seed=2), helpers.synthetic_image(230, 330, seed=3)
    batch, shapes, sizes = detector.prepare([small, big])
    assert batch.shape == (2, 3, 224, 320) and sizes == [(96, 128), (224, 320)]
    assert np.all(batch[0, :, 96:, :] == 0) and np.all(batch[0, :, :, 128:] == 0)
    maps, shapes = detector.predict_maps([small, big])
    assert [m.shape for m in maps] == [(96, 128), (224, 320)]
    # the unpadded image of the batch sees exactly its own input
    alone, _ = detector.predict_maps([big])
    np.testing.assert_allclose(maps[1], alone[0], atol=1e-5, rtol=0)
    results = detector.detect_batch([small, big])
    assert len(results) == 2
    np.testing.assert_array_equal(shapes[:, :2], [[100, 140], [230, 330]])


def test_resize_override_and_errors(tiny_export):
    det = Detector(str(tiny_export), resize=parse_resize("64x96"))
    maps, shapes = det.predict_maps([np.full((50, 70, 3), 128, np.uint8)])
    assert maps[0].shape == (64, 96)
    with pytest.raises(DataError, match="BGR uint8"):
        det.detect(np.zeros((10, 10), np.uint8))
    with pytest.raises(ConfigError, match="multiples of 32"):
        Detector(str(tiny_export), resize={"image_shape": [100, 100]})
    with pytest.raises(ConfigError, match="backend"):
        Detector(str(tiny_export), backend="tvm")
    with pytest.raises(ConfigError, match="missing.onnx.*export_onnx"):
        Detector(str(tiny_export), backend="onnx", onnx_file=str(tiny_export / "missing.onnx"))


def test_parse_resize():
    assert parse_resize("736x1280") == {"image_shape": [736, 1280]}
    assert parse_resize("max:960") == {"limit_side_len": 960, "limit_type": "max"}
    assert parse_resize("min:736") == {"limit_side_len": 736, "limit_type": "min"}
    assert parse_resize("long:960") == {"resize_long": 960}
    for bad in ("736x1000", "960", "avg:3"):
        with pytest.raises(ValueError):
            parse_resize(bad)


def test_pad_batch():
    a, b = np.ones((3, 32, 64), np.float32), np.full((3, 64, 32), 2, np.float32)
    out = pad_batch([a, b], pad_value=-1)
    assert out.shape == (2, 3, 64, 64)
    assert np.all(out[0, :, :32, :] == 1) and np.all(out[0, :, 32:, :] == -1)
    assert np.all(out[1, :, :, :32] == 2) and np.all(out[1, :, :, 32:] == -1)


def test_finish_quads_orders_clips_and_drops():
    boxes = np.array([[[110, 50], [10, 50], [10, 10], [110, 10]],     # counter-clockwise from bottom-right
                      [[-5, 0], [40, 0], [40, 30], [-5, 30]],         # sticks out on the left
                      [[0, 0], [3, 0], [3, 20], [0, 20]]], np.int32)  # 3 px wide: dropped
    out, scores = finish_quads(boxes, [0.9, 0.8, 0.7], src_h=40, src_w=100)
    np.testing.assert_array_equal(out[0], [[10, 10], [99, 10], [99, 39], [10, 39]])
    np.testing.assert_array_equal(out[1], [[0, 0], [40, 0], [40, 30], [0, 30]])
    assert scores == [0.9, 0.8] and out.dtype == np.int32
    np.testing.assert_array_equal(order_points_clockwise(np.array([[5, 9], [1, 1], [5, 1], [1, 9]])),
                                  [[1, 1], [5, 1], [5, 9], [1, 9]])
    empty, s = finish_quads(np.zeros((0, 4, 2), np.int32), [], 10, 10)
    assert empty.shape == (0, 4, 2) and s == []


def test_settings_file_errors_and_paddleocr_layout(tiny_export, tmp_path):
    raw = yaml.safe_load((tiny_export / "inference.yml").read_text(encoding="utf-8"))
    # PaddleOCR's exporter writes the whole Eval pipeline, including label ops
    raw["PreProcess"]["transform_ops"].insert(1, {"DetLabelEncode": None})
    raw["PreProcess"]["transform_ops"][-1] = {"KeepKeys": {"keep_keys": ["image", "shape", "polys", "ignore_tags"]}}
    del raw["Deploy"]
    for f in tiny_export.iterdir():
        if f.name != "inference.yml":
            (tmp_path / f.name).write_bytes(f.read_bytes())
    (tmp_path / "inference.yml").write_text(yaml.safe_dump(raw), encoding="utf-8")
    s = InferenceSettings.load(str(tmp_path))
    assert s.deploy["model_file"] in ("inference.pdmodel", "inference.json")
    Detector(str(tmp_path)).detect(np.full((64, 64, 3), 200, np.uint8))

    raw["PreProcess"]["transform_ops"].append({"IaaAugment": {}})
    (tmp_path / "inference.yml").write_text(yaml.safe_dump(raw), encoding="utf-8")
    with pytest.raises(ConfigError, match="IaaAugment") as err:
        InferenceSettings.load(str(tmp_path))
    assert "inference.yml" in str(err.value)
    raw["PreProcess"]["transform_ops"][-1] = {"NormalizeImage": {"std": [1, 0, 1]}}
    (tmp_path / "inference.yml").write_text(yaml.safe_dump(raw), encoding="utf-8")
    with pytest.raises(ConfigError, match="NormalizeImage"):
        InferenceSettings.load(str(tmp_path))
