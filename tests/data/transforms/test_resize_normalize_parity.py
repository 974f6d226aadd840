"""DetResizeForTest, Resize, NormalizeImage, ToCHWImage: identical to PaddleOCR 2.5."""
from __future__ import annotations

import numpy as np
import pytest

from dbnetpp.data.transforms import DetResizeForTest, NormalizeImage, Resize, ToCHWImage, create_transforms
from dbnetpp.errors import ConfigError, DataError

NORM = {"scale": "1./255.", "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225], "order": "hwc"}

RESIZE_CASES = [
    {"image_shape": [736, 1280]},
    {"limit_side_len": 960, "limit_type": "max"},
    {"limit_side_len": 736, "limit_type": "min"},
    {"limit_side_len": 640, "limit_type": "resize_long"},
    {"resize_long": 960},
    {},
]


@pytest.mark.shared
@pytest.mark.parametrize("kwargs", RESIZE_CASES, ids=lambda k: ",".join(k) or "default")
def test_det_resize_for_test_identical(ref, decoded_samples, kwargs):
    ours, theirs = DetResizeForTest(**kwargs), ref.operators.DetResizeForTest(**kwargs)
    images = [img for _, img, *_ in decoded_samples[:5]] + [
        np.random.RandomState(0).randint(0, 256, (h, w, 3)).astype(np.uint8) for h, w in [(37, 1000), (900, 45), (31, 33)]]
    for img in images:
        a, b = ours({"image": img}), theirs({"image": img})
        np.testing.assert_array_equal(a["image"], b["image"])
        assert a["shape"].dtype == np.float32
        np.testing.assert_allclose(a["shape"], b["shape"], rtol=1e-6)


def test_det_resize_keep_ratio():
    out = DetResizeForTest(image_shape=[736, 736], keep_ratio=True)({"image": np.zeros((720, 1280, 3), np.uint8)})
    assert out["image"].shape == (736, 1312, 3)  # ceil(1280 * 736 / 720 / 32) * 32
    np.testing.assert_allclose(out["shape"], [720, 1280, 736 / 720, 1312 / 1280], rtol=1e-6)
    with pytest.raises(ConfigError, match="limit_type"):
        create_transforms([{"DetResizeForTest": {"limit_side_len": 960, "limit_type": "longest"}}],
                          where="Eval.dataset.transforms")
    with pytest.raises(DataError):
        DetResizeForTest()({"image": np.zeros((0, 5, 3), np.uint8)})


def test_resize_identical(ref):
    img = np.random.RandomState(1).randint(0, 256, (300, 500, 3)).astype(np.uint8)
    polys = np.array([[[10, 20], [110, 20], [110, 60], [10, 60]]], np.float32)
    a = Resize(size=[640, 320])({"image": img, "polys": polys})
    b = ref.operators.Resize(size=[640, 320])({"image": img, "polys": polys})
    np.testing.assert_array_equal(a["image"], b["image"])
    np.testing.assert_allclose(a["polys"], b["polys"], rtol=1e-6)


@pytest.mark.shared
def test_normalize_identical(ref, decoded_samples):
    ours, theirs = NormalizeImage(**NORM), ref.operators.NormalizeImage(**{**NORM, "scale": 1.0 / 255.0})
    fused = create_transforms([{"NormalizeImage": NORM}, {"ToCHWImage": None}])
    for _, img, *_ in decoded_samples[:5]:
        expected = theirs({"image": img})["image"]
        np.testing.assert_array_equal(ours({"image": img})["image"], expected)
        chw = fused({"image": img})["image"]
        np.testing.assert_array_equal(chw, ref.operators.ToCHWImage()({"image": expected})["image"])
        assert chw.flags.c_contiguous and chw.dtype == np.float32
    # float input and CHW order take the direct formula
    img = decoded_samples[0][1][:50, :60]
    chw_in = np.ascontiguousarray(img.transpose(2, 0, 1))
    chw_ref = ref.operators.NormalizeImage(**{**NORM, "scale": 1.0 / 255.0, "order": "chw"})({"image": chw_in})["image"]
    np.testing.assert_array_equal(NormalizeImage(**{**NORM, "order": "chw"})({"image": chw_in})["image"], chw_ref)
    f = img.astype(np.float32)
    np.testing.assert_array_equal(ours({"image": f})["image"], theirs({"image": f})["image"])


def test_normalize_errors():
    with pytest.raises(DataError, match="channels"):
        NormalizeImage(**NORM)({"image": np.zeros((4, 5, 1), np.uint8)})
    with pytest.raises(ConfigError, match="std"):
        create_transforms([{"NormalizeImage": {**NORM, "std": [0.2, 0, 0.2]}}])
    with pytest.raises(DataError, match="HWC"):
        ToCHWImage()({"image": np.zeros((4, 5), np.uint8)})
