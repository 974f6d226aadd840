"""IaaAugment: PaddleOCR's imgaug-based geometric augmentation, implemented with OpenCV/NumPy.

PaddleOCR 2.5 builds an ``imgaug.augmenters.Sequential`` from ``augmenter_args`` (the DB configs
use ``Fliplr(p=0.5)``, ``Affine(rotate=(-10, 10))``, ``Resize(size=(0.5, 3))``) and applies it to
the image and, as keypoints, to the polygons.  imgaug is not used here because

* it is unmaintained and no longer imports on NumPy >= 1.24 (``np.bool``) nor on NumPy 2
  (``np.sctypes``) without patching NumPy;
* it is the slowest step of the DB pipeline: ``Resize`` scales the *whole* image by up to 3x
  (cubic) before ``EastRandomCropData`` throws most of it away.

This module reproduces imgaug 0.4.0's semantics for the augmenters the detection configs use:

* ``Fliplr(p)`` / ``Flipud(p)``: flip with probability ``p``; keypoint ``x -> W - x``.
* ``Affine(scale, translate_percent, translate_px, rotate)``: about the image centre, output of
  the same size, bilinear, constant 0 fill; keypoints map through the same matrix
  (``T(c) @ A @ T(-c)`` with ``c = (W/2, H/2)``; images use ``c - 0.5`` in pixel indices, which is
  the same map).  A ``[a, b]`` range is sampled uniformly once per image (same value for x and y
  unless a ``{"x": .., "y": ..}`` dict is given).
* ``Resize(size, interpolation="cubic")``: a float is a fraction, an int a pixel size, ``[a, b]``
  a uniform fraction (or a discrete-uniform pixel size when both are ints), the same sample for
  height and width; ``{"height": .., "width": ..}`` (with ``"keep"`` / ``"keep-aspect-ratio"``)
  sets them separately.  New size ``round(H * f)``; keypoints scale by ``W'/W``, ``H'/H``.

Called on its own, the transform applies the steps one after the other exactly like imgaug
(same OpenCV calls).  Every sampled chain is also one affine map (:class:`AugmentPlan.matrix`),
which lets :class:`~dbnetpp.data.transforms.compose.Compose` fuse ``IaaAugment`` with a following
``EastRandomCropData``: the crop is chosen on the transformed polygons and the source image is
warped once, straight into the crop window (same distribution of geometry and labels, a fraction
of the pixel work).  Random numbers come from NumPy's global generator (seeded per worker by the
data loader), like the rest of PaddleOCR's data pipeline.
"""
from __future__ import annotations

import math
from typing import Any, Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from ...errors import DataError
from ...registry import TRANSFORMS
from .geometry import pixel_forward_map, scaling, transform_points, translation
from ...values import parse_number, parse_range

_INTERPOLATIONS = {"nearest": cv2.INTER_NEAREST, "linear": cv2.INTER_LINEAR,
                   "area": cv2.INTER_AREA, "cubic": cv2.INTER_CUBIC}

DEFAULT_AUGMENTER_ARGS = [
    {"type": "Fliplr", "args": {"p": 0.5}},
    {"type": "Affine", "args": {"rotate": [-10, 10]}},
    {"type": "Resize", "args": {"size": [0.5, 3]}},
]


class _Step:
    """One sampled augmenter: continuous 3x3 map, output size and the pixel operation."""

    __slots__ = ("matrix", "out_hw", "kind", "arg")

    def __init__(self, matrix: np.ndarray, out_hw: Tuple[int, int], kind: str, arg: Any = None):
        self.matrix, self.out_hw, self.kind, self.arg = matrix, out_hw, kind, arg

    def apply_image(self, img: np.ndarray) -> np.ndarray:
        h, w = self.out_hw
        if self.kind == "fliplr":
            return cv2.flip(img, 1)
        if self.kind == "flipud":
            return cv2.flip(img, 0)
        if self.kind == "affine":
            out = cv2.warpAffine(img, pixel_forward_map(self.matrix), (w, h), flags=cv2.INTER_LINEAR,
                                 borderMode=cv2.BORDER_CONSTANT, borderValue=0)
            return out.reshape(out.shape[:2] + img.shape[2:])
        out = cv2.resize(img, (w, h), interpolation=self.arg)
        return out.reshape(out.shape[:2] + img.shape[2:])


class AugmentPlan:
    """A sampled augmentation chain for one image of size ``in_hw``."""

    def __init__(self, steps: List[_Step], in_hw: Tuple[int, int]):
        self.steps = steps
        self.in_hw = in_hw
        self.out_hw = steps[-1].out_hw if steps else in_hw
        m = np.eye(3)
        for s in steps:
            m = s.matrix @ m
        self.matrix = m  # source continuous coords -> augmented-frame continuous coords

    def apply_image(self, img: np.ndarray) -> np.ndarray:
        for s in self.steps:
            img = s.apply_image(img)
        return img

    def apply_polys(self, polys: np.ndarray) -> np.ndarray:
        """float32 ``[N, P, 2]`` in the augmented frame."""
        if len(polys) == 0:
            return np.asarray(polys, dtype=np.float32).reshape(0, *np.shape(polys)[1:])
        return transform_points(self.matrix, polys).astype(np.float32)


# --------------------------------------------------------------------------- augmenters
class _Fliplr:
    names = ("p",)
    axis = 1

    def __init__(self, p: Any = 1.0):
        self.p = parse_number(p, "p")
        if not 0.0 <= self.p <= 1.0:
            raise ValueError(f"p must be in [0, 1], got {self.p}")

    def sample(self, h: int, w: int, rng) -> Optional[_Step]:
        if not rng.random_sample() < self.p:
            return None
        if self.axis == 1:
            return _Step(np.array([[-1.0, 0, w], [0, 1, 0], [0, 0, 1]]), (h, w), "fliplr")
        return _Step(np.array([[1.0, 0, 0], [0, -1, h], [0, 0, 1]]), (h, w), "flipud")


class _Flipud(_Fliplr):
    axis = 0


def _xy_ranges(value: Any, name: str, default: float):
    """number | [a, b] -> shared sampler; {"x": .., "y": ..} -> one per axis."""
    if isinstance(value, dict):
        unknown = set(value) - {"x", "y"}
        if unknown:
            raise ValueError(f"{name} dict accepts keys x and y, got {sorted(unknown)}")
        return (parse_range(value.get("x", default), f"{name}.x"),
                parse_range(value.get("y", default), f"{name}.y"))
    return parse_range(value, name)


def _draw(lo_hi: Tuple[float, float], rng, integer: bool) -> float:
    if integer:
        return float(rng.randint(int(math.floor(lo_hi[0])), int(math.floor(lo_hi[1])) + 1))
    return float(rng.uniform(*lo_hi))


def _draw_xy(spec, rng, integer: bool = False) -> Tuple[float, float]:
    if isinstance(spec[0], tuple):
        return _draw(spec[0], rng, integer), _draw(spec[1], rng, integer)
    v = _draw(spec, rng, integer)
    return v, v


class _Affine:
    names = ("scale", "translate_percent", "translate_px", "rotate")

    def __init__(self, scale: Any = 1.0, translate_percent: Any = None, translate_px: Any = None,
                 rotate: Any = 0.0):
        if translate_percent is not None and translate_px is not None:
            raise ValueError("Affine takes translate_percent or translate_px, not both")
        self.scale = _xy_ranges(scale, "scale", 1.0)
        lows = [r[0] for r in self.scale] if isinstance(self.scale[0], tuple) else [self.scale[0]]
        if min(lows) <= 0:
            raise ValueError(f"scale must be > 0, got {scale!r}")
        self.translate_mode = "percent" if translate_percent is not None else "px"
        self.translate = _xy_ranges(translate_percent if translate_percent is not None
                                    else (translate_px or 0), "translate", 0)
        self.rotate = parse_range(rotate, "rotate")

    def sample(self, h: int, w: int, rng) -> _Step:
        sx, sy = _draw_xy(self.scale, rng)
        tx, ty = _draw_xy(self.translate, rng, integer=self.translate_mode == "px")
        if self.translate_mode == "percent":
            tx, ty = tx * w, ty * h
        r = math.radians(rng.uniform(*self.rotate))
        a = np.array([[sx * math.cos(r), -sy * math.sin(r), tx],
                      [sx * math.sin(r), sy * math.cos(r), ty],
                      [0.0, 0.0, 1.0]])
        m = translation(w / 2.0, h / 2.0) @ a @ translation(-w / 2.0, -h / 2.0)
        return _Step(m, (h, w), "affine")


class _SideSize:
    """Sampler of one side (or both): fraction / pixels / keep / keep-aspect-ratio."""

    def __init__(self, value: Any, name: str):
        if value in ("keep", "keep-aspect-ratio"):
            self.kind, self.lo, self.hi = value, 0.0, 0.0
            return
        if isinstance(value, (list, tuple)):
            if len(value) != 2:
                raise ValueError(f"{name} range must be [low, high], got {value!r}")
            ints = all(isinstance(v, int) and not isinstance(v, bool) for v in value)
            self.kind = "px" if ints else "fraction"
            self.lo, self.hi = parse_range(value, name)
        else:
            is_int = isinstance(value, int) and not isinstance(value, bool)
            self.kind = "px" if is_int else "fraction"
            self.lo = self.hi = parse_number(value, name)
        if self.lo <= 0:
            raise ValueError(f"{name} must be > 0, got {value!r}")

    def draw(self, rng):
        if self.kind in ("keep", "keep-aspect-ratio"):
            return self.kind
        if self.kind == "px":
            return int(rng.randint(int(self.lo), int(self.hi) + 1))
        return float(rng.uniform(self.lo, self.hi))


def _side(sample, size: int) -> Any:
    if isinstance(sample, float):
        return max(int(np.round(size * sample)), 1)
    if sample == "keep":
        return size
    return sample


class _Resize:
    names = ("size", "interpolation")

    def __init__(self, size: Any, interpolation: str = "cubic"):
        if interpolation not in _INTERPOLATIONS:
            raise ValueError(f"interpolation must be one of {', '.join(_INTERPOLATIONS)}, got {interpolation!r}")
        self.interpolation = _INTERPOLATIONS[interpolation]
        if isinstance(size, dict):
            unknown = set(size) - {"height", "width"}
            if unknown:
                raise ValueError(f"Resize size dict accepts keys height and width, got {sorted(unknown)}")
            self.height = _SideSize(size.get("height", "keep"), "size.height")
            self.width = _SideSize(size.get("width", "keep"), "size.width")
            if self.height.kind == self.width.kind == "keep-aspect-ratio":
                raise ValueError("at most one of height/width can be 'keep-aspect-ratio'")
            self.shared = False
        else:
            self.height = self.width = _SideSize(size, "size")
            if self.height.kind in ("keep", "keep-aspect-ratio"):
                raise ValueError("size 'keep'/'keep-aspect-ratio' needs the {height, width} form")
            self.shared = True

    def sample(self, h: int, w: int, rng) -> _Step:
        sh = self.height.draw(rng)
        sw = sh if self.shared else self.width.draw(rng)
        nh, nw = _side(sh, h), _side(sw, w)
        if nh == "keep-aspect-ratio":
            nh = int(np.round(nw * (h / w)))
        if nw == "keep-aspect-ratio":
            nw = int(np.round(nh * (w / h)))
        return _Step(scaling(nw / w, nh / h), (nh, nw), "resize", self.interpolation)


_AUGMENTERS = {"Fliplr": _Fliplr, "Flipud": _Flipud, "Affine": _Affine, "Resize": _Resize}


def _build_one(spec: Any, index: int):
    where = f"augmenter_args[{index}]"
    if isinstance(spec, dict):
        extra = set(spec) - {"type", "args"}
        if "type" not in spec or extra:
            raise ValueError(f"{where} must look like {{type: Name, args: {{...}}}}, got {spec!r}")
        name, args, pos = spec["type"], spec.get("args") or {}, []
        if not isinstance(args, dict):
            raise ValueError(f"{where}.args must be a mapping, got {args!r}")
    elif isinstance(spec, (list, tuple)) and spec and isinstance(spec[0], str):
        name, args, pos = spec[0], {}, list(spec[1:])
    else:
        raise ValueError(f"{where} must be {{type: Name, args: {{...}}}} or [Name, arg, ...], got {spec!r}")
    cls = _AUGMENTERS.get(name)
    if cls is None:
        raise ValueError(f"{where}: augmenter '{name}' is not supported (supported: {', '.join(_AUGMENTERS)})")
    if len(pos) > len(cls.names):
        raise ValueError(f"{where}: {name} takes at most {len(cls.names)} positional args")
    kwargs = dict(zip(cls.names, pos))
    for key, value in args.items():
        if key not in cls.names:
            raise ValueError(f"{where}: {name} has no argument '{key}' (supported: {', '.join(cls.names)})")
        kwargs[key] = value
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise ValueError(f"{where}: {name}: {exc}") from None
    except ValueError as exc:
        raise ValueError(f"{where}: {name}: {exc}") from None


@TRANSFORMS.register()
class IaaAugment:
    """Random flip / rotation / scaling of ``image`` and ``polys`` (imgaug 0.4.0 semantics).

    Args:
        augmenter_args: list of ``{type: Fliplr|Flipud|Affine|Resize, args: {...}}`` (or
            ``[Name, positional args...]``), applied in order.  ``None`` -> PaddleOCR's default
            (Fliplr 0.5, Affine rotate [-10, 10], Resize [0.5, 3]); ``[]`` -> identity.
    """

    def __init__(self, augmenter_args: Optional[Sequence[Any]] = None):
        if augmenter_args is None:
            augmenter_args = DEFAULT_AUGMENTER_ARGS
        if not isinstance(augmenter_args, (list, tuple)):
            raise ValueError(f"augmenter_args must be a list, got {type(augmenter_args).__name__}")
        self.augmenters = [_build_one(spec, i) for i, spec in enumerate(augmenter_args)]

    def sample(self, h: int, w: int, rng=None) -> AugmentPlan:
        """Draw one chain for an ``h x w`` image (``rng``: a ``RandomState``; default global)."""
        rng = np.random if rng is None else rng
        steps, cur_h, cur_w = [], h, w
        for aug in self.augmenters:
            step = aug.sample(cur_h, cur_w, rng)
            if step is not None:
                steps.append(step)
                cur_h, cur_w = step.out_hw
        return AugmentPlan(steps, (h, w))

    def __call__(self, data: Dict[str, Any]) -> Dict[str, Any]:
        img = data["image"]
        if not isinstance(img, np.ndarray) or img.ndim not in (2, 3):
            raise DataError("IaaAugment expects a decoded HWC image (put DecodeImage first)")
        plan = self.sample(*img.shape[:2])
        data["image"] = plan.apply_image(img)
        if "polys" in data:
            data["polys"] = plan.apply_polys(data["polys"])
        return data
