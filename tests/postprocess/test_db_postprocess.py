"""DBPostProcess: parity with PaddleOCR (reference values and the 2.5.0.3 wheel), API, edge cases."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from dbnetpp.errors import ConfigError
from dbnetpp.postprocess import DBPostProcess
from dbnetpp.postprocess import box_ops
from dbnetpp.registry import POSTPROCESSES

QUAD_VARIANTS = {
    "quad_fast": dict(score_mode="fast"),
    "quad_slow": dict(score_mode="slow"),
    "quad_fast_dilation": dict(score_mode="fast", use_dilation=True),
}
BASE = dict(thresh=0.3, box_thresh=0.6, max_candidates=1000, unclip_ratio=1.5)


def _load_reference(ref_dir):
    folder = ref_dir / "db_postprocess"
    values = json.loads((folder / "values.json").read_text())
    maps = {name.split(".")[0]: np.load(folder / name).astype(np.float32) / np.float32(255.0)
            for name in values["maps"]["files"]}
    return values, maps


@pytest.mark.smoke
def test_identical_to_reference_values(ref_dir):
    """All 5 reference maps x 5 variants: same boxes (exactly) and scores as upstream PaddleOCR."""
    values, maps = _load_reference(ref_dir)
    shape_list = np.array(values["shape_list"])
    checked = 0
    for map_name, prob in maps.items():
        for variant, settings in values["settings"].items():
            expected = values["results"][map_name][variant]
            out = DBPostProcess(**settings)({"maps": prob}, shape_list)[0]
            got = [np.asarray(p).tolist() for p in out["points"]]
            assert got == expected["points"], f"{map_name}/{variant}: boxes differ"
            np.testing.assert_allclose(out["scores"], expected["scores"], rtol=0, atol=1e-6,
                                       err_msg=f"{map_name}/{variant}: scores differ")
            assert len(got) == expected["num_boxes"]
            checked += 1
    assert checked == 25


def _reference_run(ref_cls, settings, prob, shape):
    """Boxes from the reference ``__call__`` and scores from its ``boxes_from_bitmap``."""
    ref = ref_cls(**settings)
    points = ref({"maps": prob}, shape)[0]["points"]
    seg = prob[0, 0] > settings["thresh"]
    mask = cv2.dilate(seg.astype(np.uint8), np.ones((2, 2), np.uint8)) if settings.get("use_dilation") else seg
    boxes, scores = ref.boxes_from_bitmap(prob[0, 0], mask, shape[0][1], shape[0][0])
    assert np.array_equal(np.asarray(boxes).reshape(-1, 4, 2), np.asarray(points).reshape(-1, 4, 2))
    return np.asarray(points).astype(np.int64).reshape(-1, 4, 2), np.asarray(scores, np.float64)


def _assert_same(ours, ref_points, ref_scores, what):
    assert ours["points"].dtype == np.int32 and ours["points"].ndim == 3, what
    assert ours["points"].shape == ref_points.shape, f"{what}: {len(ours['points'])} vs {len(ref_points)} boxes"
    assert np.abs(ours["points"].astype(np.int64) - ref_points).max(initial=0) <= 1, what
    np.testing.assert_allclose(ours["scores"], ref_scores, rtol=0, atol=1e-4, err_msg=what)


def test_matches_paddleocr25_on_reference_maps(ref_dir, ppocr25_db):
    values, maps = _load_reference(ref_dir)
    shape = np.array(values["shape_list"])
    for map_name, prob in maps.items():
        for variant, extra in QUAD_VARIANTS.items():
            settings = dict(BASE, **extra)
            ref_points, ref_scores = _reference_run(ppocr25_db, settings, prob, shape)
            ours = DBPostProcess(**settings)({"maps": prob}, shape)[0]
            _assert_same(ours, ref_points, ref_scores, f"{map_name}/{variant}")
            assert np.array_equal(ours["points"], ref_points), f"{map_name}/{variant}: not bit-identical"


def random_map(seed: int, h: int = 256, w: int = 384) -> np.ndarray:
    """Soft rotated rectangles, ellipses, thin lines, specks and noise: [1, 1, h, w] float32."""
    rng = np.random.default_rng(seed)
    canvas = np.zeros((h, w), np.float32)
    for _ in range(rng.integers(4, 12)):
        center = (float(rng.uniform(-10, w + 10)), float(rng.uniform(-10, h + 10)))
        size = (float(rng.uniform(2, 120)), float(rng.uniform(2, 30)))
        box = cv2.boxPoints((center, size, float(rng.uniform(-90, 90))))
        cv2.fillPoly(canvas, [np.round(box).astype(np.int32)], float(rng.uniform(0.4, 1.0)))
    for _ in range(3):
        cv2.ellipse(canvas, (int(rng.integers(0, w)), int(rng.integers(0, h))),
                    (int(rng.integers(3, 40)), int(rng.integers(3, 15))), float(rng.uniform(0, 180)),
                    0, 360, float(rng.uniform(0.5, 1.0)), -1)
    canvas = cv2.GaussianBlur(canvas, (0, 0), float(rng.uniform(0.8, 2.5)))
    canvas += rng.normal(0, 0.04, canvas.shape).astype(np.float32)
    canvas[rng.integers(0, h, 80), rng.integers(0, w, 80)] = rng.uniform(0.3, 1, 80).astype(np.float32)
    return np.clip(canvas, 0, 1)[None, None]


@pytest.mark.parametrize("seed", range(6))
def test_matches_paddleocr25_on_random_maps(seed, ppocr25_db):
    prob = random_map(seed)
    shape = np.array([[300.0 + 37 * seed, 500.0 - 11 * seed, 0.0, 0.0]])  # only src_h, src_w are used
    for variant, extra in QUAD_VARIANTS.items():
        for box_thresh in (0.3, 0.6):
            settings = dict(BASE, **extra, box_thresh=box_thresh)
            ref_points, ref_scores = _reference_run(ppocr25_db, settings, prob, shape)
            ours = DBPostProcess(**settings)({"maps": prob}, shape)[0]
            _assert_same(ours, ref_points, ref_scores, f"seed {seed} {variant} box_thresh {box_thresh}")


def test_max_candidates_truncates_like_reference(ppocr25_db):
    prob = random_map(11)
    shape = np.array([[256.0, 384.0, 1.0, 1.0]])
    settings = dict(BASE, box_thresh=0.3, max_candidates=5)
    ref_points, ref_scores = _reference_run(ppocr25_db, settings, prob, shape)
    ours = DBPostProcess(**settings)({"maps": prob}, shape)[0]
    _assert_same(ours, ref_points, ref_scores, "max_candidates=5")
    full = DBPostProcess(**dict(settings, max_candidates=1000))({"maps": prob}, shape)[0]
    assert len(ours["points"]) < len(full["points"])


def test_batch_tensor_input_and_scaling():
    paddle = pytest.importorskip("paddle")
    maps = np.concatenate([random_map(1), random_map(2), random_map(1)], axis=0)
    shapes = np.array([[256.0, 384.0, 1.0, 1.0], [256.0, 384.0, 1.0, 1.0], [512.0, 768.0, 0.5, 0.5]], np.float32)
    post = DBPostProcess(**dict(BASE, box_thresh=0.4))
    batch = post({"maps": paddle.to_tensor(maps)}, shapes)
    assert len(batch) == 3
    for i in range(3):
        single = post({"maps": maps[i:i + 1]}, shapes[i:i + 1])[0]
        assert np.array_equal(batch[i]["points"], single["points"])
        assert batch[i]["scores"] == single["scores"]
    # the third image is the first one at twice the source size: about twice the coordinates
    assert len(batch[0]["points"]) > 0
    assert batch[2]["points"].shape == batch[0]["points"].shape
    np.testing.assert_allclose(batch[2]["points"], 2 * batch[0]["points"], atol=1)
    assert batch[2]["scores"] == batch[0]["scores"]
    for pts in batch[2]["points"]:
        assert pts[:, 0].min() >= 0 and pts[:, 0].max() <= 768 and pts[:, 1].max() <= 512


def test_empty_map_and_poly_mode_types():
    blank = np.zeros((1, 1, 64, 96), np.float32)
    shape = np.array([[64, 96, 1, 1]])
    out = DBPostProcess()({"maps": blank}, shape)[0]
    assert out["points"].shape == (0, 4, 2) and out["points"].dtype == np.int32 and out["scores"] == []
    out = DBPostProcess(box_type="poly")({"maps": blank}, shape)[0]
    assert out["points"] == [] and out["scores"] == []
    prob = random_map(3)
    out = DBPostProcess(box_type="poly", box_thresh=0.3)({"maps": prob}, np.array([[256, 384, 1, 1]]))[0]
    assert len(out["points"]) == len(out["scores"]) > 0
    for poly in out["points"]:
        assert poly.dtype == np.int32 and poly.ndim == 2 and poly.shape[1] == 2 and len(poly) >= 4


def test_unclip_splitting_into_several_paths_is_dropped():
    """A C-shaped polygon whose dilation closes its gap yields an outer path plus a hole:
    such candidates are dropped (no ragged-array error as in older PaddleOCR releases)."""
    c_shape = np.array([[0, 0], [100, 0], [100, 100], [0, 100], [0, 60], [80, 60], [80, 90], [90, 90],
                        [90, 10], [10, 10], [10, 50], [0, 50]], np.int32)
    assert box_ops.unclip_one(c_shape, 1.0) is not None
    assert box_ops.unclip_one(c_shape, 8.0) is None
    # the post-processor survives such shapes on a map
    prob = np.zeros((1, 1, 160, 160), np.float32)
    cv2.fillPoly(prob[0, 0], [c_shape + 20], 1.0)
    for box_type in ("poly", "quad"):
        out = DBPostProcess(box_type=box_type, unclip_ratio=4.0, box_thresh=0.5)(
            {"maps": prob}, np.array([[160, 160, 1, 1]]))[0]
        assert len(out["points"]) == len(out["scores"])


def test_order_corners_is_clockwise_from_top_left():
    rect = cv2.boxPoints(((50.0, 40.0), (60.0, 20.0), 30.0))[None]
    box = box_ops.order_corners(rect)[0]
    # clockwise in image coordinates (y down): shoelace sum of (x2-x1)(y2+y1) <= 0
    q = np.roll(box, -1, axis=0)
    assert np.sum((q[:, 0] - box[:, 0]) * (q[:, 1] + box[:, 1])) < 0
    assert box[0, 0] <= box[1, 0] and box[0, 1] <= box[3, 1]


def test_registry_build_and_validation():
    post = POSTPROCESSES.build({"name": "DBPostProcess", "thresh": 0.3, "box_thresh": 0.6, "max_candidates": 1000,
                                "unclip_ratio": 1.5, "score_mode": "slow", "box_type": "poly"},
                               where="PostProcess")
    assert isinstance(post, DBPostProcess) and post.score_mode == "slow" and post.box_type == "poly"
    with pytest.raises(ConfigError, match="unclip_ration"):
        POSTPROCESSES.build({"name": "DBPostProcess", "unclip_ration": 1.5}, where="PostProcess")
    with pytest.raises(ConfigError, match="score_mode"):
        POSTPROCESSES.build({"name": "DBPostProcess", "score_mode": "medium"}, where="PostProcess")
    with pytest.raises(ConfigError, match="box_type"):
        POSTPROCESSES.build({"name": "DBPostProcess", "box_type": "rect"}, where="PostProcess")
    with pytest.raises(ValueError, match="shape_list"):
        DBPostProcess()({"maps": np.zeros((2, 1, 8, 8), np.float32)}, np.zeros((1, 4)))
