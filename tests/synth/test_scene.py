"""Synthetic scene generator: determinism, GT geometry, ink coverage, orientation, ### share."""
from __future__ import annotations

import itertools

import cv2
import numpy as np
import pytest
from shapely.geometry import Polygon

from dbnetpp.data.icdar_gt import read_gt_file
from dbnetpp.synth import DONT_CARE, SceneGenerator, SynthConfig, gt_file_bytes

N_SAMPLES = 40


@pytest.fixture(scope="module")
def gen():
    return SceneGenerator(SynthConfig(width=320, height=320))


@pytest.fixture(scope="module")
def samples(gen):
    return [gen.generate((123, 0, k)) for k in range(N_SAMPLES)]


def _is_clockwise_convex(q: np.ndarray) -> bool:
    q = q.astype(np.float64)
    for i in range(4):
        a, b, c = q[i], q[(i + 1) % 4], q[(i + 2) % 4]
        if (b[0] - a[0]) * (c[1] - b[1]) - (b[1] - a[1]) * (c[0] - b[0]) <= 0:  # y down: > 0 is clockwise
            return False
    return True


@pytest.mark.smoke
def test_same_seed_gives_identical_sample(gen):
    a, b = gen.generate((7, 0, 3)), gen.generate((7, 0, 3))
    assert a.image.tobytes() == b.image.tobytes()
    assert a.ink.tobytes() == b.ink.tobytes()
    assert [(w.quad.tolist(), w.text, w.ignore) for w in a.words] == [(w.quad.tolist(), w.text, w.ignore)
                                                                       for w in b.words]
    assert a.jpeg_quality == b.jpeg_quality
    # a fresh generator gives the same, another seed something else
    assert SceneGenerator(SynthConfig()).generate((7, 0, 3)).image.tobytes() == a.image.tobytes()
    assert gen.generate((7, 0, 4)).image.tobytes() != a.image.tobytes()


def test_image_shape_and_dtype():
    s = SceneGenerator(SynthConfig(width=256, height=192)).generate(5)
    assert s.image.shape == (192, 256, 3) and s.image.dtype == np.uint8
    assert s.ink.shape == (192, 256) and s.ink.dtype == bool
    assert 0 < len(s.words) and 60 <= s.jpeg_quality <= 95
    for w in s.words:
        assert w.quad.shape == (4, 2) and w.quad.dtype == np.int32
        assert (w.quad[:, 0] >= 0).all() and (w.quad[:, 0] <= 255).all()
        assert (w.quad[:, 1] >= 0).all() and (w.quad[:, 1] <= 191).all()


def test_gt_quads_are_valid(samples):
    aspect = []
    for s in samples:
        h, w = s.image.shape[:2]
        polys = []
        for word in s.words:
            q = word.quad
            assert _is_clockwise_convex(q), f"not a clockwise convex quad: {q.tolist()}"
            assert (q[:, 0] >= 0).all() and (q[:, 0] <= w - 1).all() and (q[:, 1] >= 0).all() and (
                q[:, 1] <= h - 1).all(), f"quad outside the image: {q.tolist()}"
            poly = Polygon(q)
            assert poly.is_valid and poly.area >= 12
            # reading direction: the first edge (top-left -> top-right) points right
            assert q[1, 0] > q[0, 0] and q[2, 0] > q[3, 0]
            if not word.ignore:
                top = np.linalg.norm(q[1] - q[0]) + np.linalg.norm(q[2] - q[3])
                side = np.linalg.norm(q[3] - q[0]) + np.linalg.norm(q[2] - q[1])
                aspect.append(top / side)
            polys.append(poly)
        for a, b in itertools.combinations(polys, 2):
            inter = a.intersection(b).area
            assert inter / (a.area + b.area - inter) <= 0.02
    aspect = np.array(aspect)
    assert np.median(aspect) > 1.8 and (aspect >= 1.0).mean() >= 0.9, "word boxes should be wider than tall"


def test_text_ink_lies_inside_gt_quads(samples):
    total_ink = total_inside = 0
    for s in samples:
        region = np.zeros(s.ink.shape, np.uint8)
        cv2.fillPoly(region, [w.quad.reshape(-1, 1, 2) for w in s.words], 1)
        ink = s.ink
        inside = int((ink & region.astype(bool)).sum())
        assert ink.sum() > 0
        assert inside / ink.sum() >= 0.9
        total_ink += int(ink.sum())
        total_inside += inside
    assert total_inside / total_ink >= 0.97


def test_ink_mask_matches_visible_care_text(samples):
    """Inside a care word's quad, ink pixels stand out from the other pixels (contrast)."""
    contrast = []
    for s in samples:
        luma = cv2.cvtColor(s.image, cv2.COLOR_BGR2GRAY).astype(np.float32)
        for w in s.words:
            if w.ignore:
                continue
            box = np.zeros(s.ink.shape, np.uint8)
            cv2.fillPoly(box, [w.quad.reshape(-1, 1, 2)], 1)
            text, rest = box.astype(bool) & s.ink, box.astype(bool) & ~s.ink
            assert text.sum() >= 10 and rest.sum() >= 10
            contrast.append(abs(luma[text].mean() - luma[rest].mean()))
    contrast = np.array(contrast)
    assert np.median(contrast) >= 50 and (contrast >= 20).mean() >= 0.9, np.percentile(contrast, [5, 50])


def _ncc(a: np.ndarray, b: np.ndarray) -> float:
    a = cv2.GaussianBlur(a.astype(np.float32), (0, 0), 1.0)
    b = cv2.GaussianBlur(b.astype(np.float32), (0, 0), 1.0)
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).sum() / (np.sqrt((a * a).sum() * (b * b).sum()) + 1e-6))


def _crop_ink(mask: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(mask > 127)
    return mask[ys.min():ys.max() + 1, xs.min():xs.max() + 1]


def _rectify(ink: np.ndarray, quad: np.ndarray) -> np.ndarray:
    """Warp the quad's content to an upright rectangle: quad point 1 -> top-left, etc."""
    q = quad.astype(np.float32)
    width = (np.linalg.norm(q[1] - q[0]) + np.linalg.norm(q[2] - q[3])) / 2
    height = (np.linalg.norm(q[3] - q[0]) + np.linalg.norm(q[2] - q[1])) / 2
    out_h = 32
    out_w = max(8, int(round(out_h * width / height)))
    dst = np.float32([[0, 0], [out_w, 0], [out_w, out_h], [0, out_h]])
    m = cv2.getPerspectiveTransform(q, dst)
    return cv2.warpPerspective(ink.astype(np.uint8) * 255, m, (out_w, out_h), flags=cv2.INTER_LINEAR)


def _reference(text: str, face: int) -> np.ndarray:
    (tw, th), base = cv2.getTextSize(text, face, 2.0, 4)
    canvas = np.zeros((th + base + 40, tw + th + 40), np.uint8)
    cv2.putText(canvas, text, (20, 20 + th), face, 2.0, 255, 4, cv2.LINE_AA)
    return canvas


def test_quad_orientation_matches_rendered_word(samples):
    """Unwarping each care word by its GT quad (first point = top-left) must give upright
    text: it matches an independent upright rendering better than a 180-degree one."""
    wins, scores = [], []
    for s in samples[:20]:
        for w in s.words:
            if w.ignore:
                continue
            patch = _crop_ink(_rectify(s.ink, w.quad))
            ref = _crop_ink(_reference(w.text, w.face))
            ref = cv2.resize(ref, (patch.shape[1], patch.shape[0]), interpolation=cv2.INTER_AREA)
            up, flipped = _ncc(patch, ref), _ncc(patch, ref[::-1, ::-1])
            wins.append(up > flipped)
            scores.append(up)
    assert len(wins) >= 40
    assert np.mean(wins) >= 0.9, f"upright matched better for only {np.mean(wins):.0%} of words"
    assert np.median(scores) >= 0.5


def test_dontcare_fraction_within_configured_range(samples):
    lo, hi = SynthConfig().dontcare_range
    n_words = sum(len(s.words) for s in samples)
    n_dc = sum(w.ignore for s in samples for w in s.words)
    assert lo <= n_dc / n_words <= hi, f"### fraction {n_dc / n_words:.3f} outside [{lo}, {hi}]"
    assert all(any(not w.ignore for w in s.words) for s in samples), "every image needs a care word"
    none = SceneGenerator(SynthConfig(dontcare_range=(0.0, 0.0)))
    assert not any(w.ignore for k in range(5) for w in none.generate(k).words)
    many = SceneGenerator(SynthConfig(dontcare_range=(0.6, 0.7)))
    words = [w for k in range(10) for w in many.generate(k).words]
    assert sum(w.ignore for w in words) / len(words) >= 0.45


def test_transcriptions_and_gt_round_trip(samples, tmp_path):
    texts = [w.transcription for s in samples for w in s.words]
    assert DONT_CARE in texts
    care = [w.text for s in samples for w in s.words if not w.ignore]
    assert all(t not in (DONT_CARE, "*") and t.strip() == t and t for t in care)
    assert all(all(32 < ord(c) < 127 for c in t) for t in care)
    assert any("," in t for t in care), "some transcriptions should contain commas"
    for i, s in enumerate(samples[:10]):
        for bom, crlf in ((True, False), (False, True)):
            path = tmp_path / f"gt_img_{i}_{int(bom)}.txt"
            path.write_bytes(gt_file_bytes(((w.quad, w.transcription) for w in s.words), bom=bom, crlf=crlf))
            boxes = read_gt_file(str(path))
            assert [b.transcription for b in boxes] == [w.transcription for w in s.words]
            assert [b.points for b in boxes] == [w.quad.tolist() for w in s.words]
            assert [b.ignore for b in boxes] == [w.ignore for w in s.words]


def test_config_is_validated():
    with pytest.raises(ValueError, match="dontcare_range"):
        SynthConfig(dontcare_range=(0.5, 0.2))
    with pytest.raises(ValueError, match="at least 64"):
        SynthConfig(width=32)
    with pytest.raises(ValueError, match="below 1"):
        SynthConfig(dontcare_range=(0.2, 1.0))
