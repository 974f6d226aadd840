"""Seeded fuzz: label generation never crashes on degenerate polygons and keeps maps in range."""
from __future__ import annotations

import time

import numpy as np
import pytest

from dbnetpp.data.transforms import MakeBorderMap, MakeShrinkMap, create_transforms

H, W = 96, 128


def _ring(rng, n, cx, cy, r, jitter=0.0):
    t = np.sort(rng.uniform(0, 2 * np.pi, n))
    rr = r * (1 + jitter * rng.uniform(-1, 1, n))
    return np.stack([cx + rr * np.cos(t), cy + rr * np.sin(t)], axis=1)


def _polygon(rng, kind):
    c = rng.uniform(-20, [W + 20, H + 20])
    if kind == "quad":
        return c + rng.uniform(-30, 30, (4, 2))
    if kind == "point":  # zero area: every vertex the same
        return np.repeat(c[None], rng.integers(3, 6), axis=0)
    if kind == "collinear":
        t = rng.uniform(0, 40, rng.integers(3, 7))
        return c + t[:, None] * rng.uniform(-1, 1, 2)
    if kind == "bowtie":  # self-intersecting
        a = rng.uniform(5, 30)
        return c + np.array([[-a, -a], [a, a], [a, -a], [-a, a]]) * rng.uniform(0.3, 1.5, 2)
    if kind == "tiny":  # < 3 px
        return c + rng.uniform(-1.4, 1.4, (4, 2))
    if kind == "outside":  # wholly outside the image
        side = rng.integers(4)
        off = np.array([[-200, 0], [W + 200, 0], [0, -200], [0, H + 200]])[side]
        return off + rng.uniform(-30, 30, (4, 2)) + rng.uniform(0, [W, H])
    if kind == "many":  # 100+ vertices, jagged
        return _ring(rng, int(rng.integers(100, 180)), *c, rng.uniform(3, 70), jitter=0.4)
    if kind == "huge":
        return _ring(rng, int(rng.integers(4, 9)), *rng.uniform(-1e5, 1e5, 2), rng.uniform(1e3, 1e6))
    if kind == "huge_many":
        return _ring(rng, int(rng.integers(100, 140)), W / 2, H / 2, rng.uniform(40, 3e4), jitter=0.05)
    if kind == "duplicates":
        q = c + rng.uniform(-25, 25, (4, 2))
        return np.repeat(q, rng.integers(1, 3, 4), axis=0)
    if kind == "spike":  # very thin sliver
        return c + np.array([[0, 0], [rng.uniform(30, 90), rng.uniform(-0.3, 0.3)], [rng.uniform(30, 90), 0.8]])
    raise AssertionError(kind)


KINDS = ["quad", "point", "collinear", "bowtie", "tiny", "outside", "many", "huge", "huge_many", "duplicates",
         "spike"]


def _check(d):
    tm, tmask, sm, smask = d["threshold_map"], d["threshold_mask"], d["shrink_map"], d["shrink_mask"]
    for m in (tm, tmask, sm, smask):
        assert m.shape == (H, W) and m.dtype == np.float32 and np.isfinite(m).all()
    assert tm.min() >= 0.3 - 1e-6 and tm.max() <= 0.7 + 1e-6
    for m in (tmask, sm, smask):
        assert set(np.unique(m).tolist()) <= {0.0, 1.0}


def test_label_generation_fuzz():
    rng = np.random.default_rng(2024)
    border, shrink = MakeBorderMap(), MakeShrinkMap()
    img = np.zeros((H, W, 3), np.uint8)
    start, n_polys, n_text = time.perf_counter(), 0, 0
    for i in range(600):
        k = int(rng.integers(1, 8))
        polys = [_polygon(rng, KINDS[rng.integers(len(KINDS))]) for _ in range(k)]
        n_pts = max(len(p) for p in polys)
        arr = np.stack([np.vstack([p, np.repeat(p[-1:], n_pts - len(p), axis=0)]) for p in polys]).astype(np.float32)
        tags = rng.uniform(size=k) < 0.15
        first, second = (border, shrink) if i % 2 else (shrink, border)  # both config orders
        d = second(first({"image": img, "polys": arr.copy(), "ignore_tags": tags.copy()}))
        _check(d)
        assert d["ignore_tags"].shape == (k,)
        n_polys += k
        n_text += int(d["shrink_map"].any())
    assert n_polys > 2000 and n_text > 100
    assert time.perf_counter() - start < 30


@pytest.mark.parametrize("kind", KINDS)
def test_each_degenerate_kind_alone(kind):
    rng = np.random.default_rng(KINDS.index(kind))
    img = np.zeros((H, W, 3), np.uint8)
    ops = create_transforms([{"MakeBorderMap": None}, {"MakeShrinkMap": None}])
    for _ in range(20):
        poly = _polygon(rng, kind).astype(np.float32)[None]
        _check(ops({"image": img, "polys": poly, "ignore_tags": np.array([False])}))


def test_fuzz_through_augment_and_crop():
    rng = np.random.default_rng(7)
    np.random.seed(7)
    pipe = create_transforms([
        {"IaaAugment": None},
        {"EastRandomCropData": {"size": [W, H], "max_tries": 50, "keep_ratio": True}},
        {"MakeBorderMap": None}, {"MakeShrinkMap": None}])
    img = np.full((H, W, 3), 90, np.uint8)
    for _ in range(150):
        polys = [_polygon(rng, KINDS[rng.integers(len(KINDS))]) for _ in range(int(rng.integers(0, 6)))]
        if polys:
            n_pts = max(len(p) for p in polys)
            arr = np.stack([np.vstack([p, np.repeat(p[-1:], n_pts - len(p), axis=0)]) for p in polys]).astype(np.float32)
        else:
            arr = np.zeros((0, 4, 2), np.float32)
        d = pipe({"image": img, "polys": arr, "ignore_tags": rng.uniform(size=len(arr)) < 0.2,
                  "texts": ["t"] * len(arr)})
        assert d["image"].shape == (H, W, 3)
        assert len(d["polys"]) == len(d["ignore_tags"]) == len(d["texts"])
        _check(d)


def test_border_map_many_vertices_is_fast_and_bounded():
    """A 400-vertex polygon covering a 640x640 crop: PaddleOCR would allocate 400 x box floats."""
    poly = _ring(np.random.default_rng(0), 400, 320, 320, 300, jitter=0.02).astype(np.float32)
    img = np.zeros((640, 640, 3), np.uint8)
    start = time.perf_counter()
    d = MakeBorderMap()({"image": img, "polys": poly[None], "ignore_tags": np.array([False])})
    assert time.perf_counter() - start < 5.0
    assert d["threshold_mask"].sum() > 0.7 * np.pi * 300 ** 2
    assert d["threshold_map"].max() > 0.69 and d["threshold_map"][320, 320] == pytest.approx(0.3)
