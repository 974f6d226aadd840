"""EastRandomCropData: random crop that avoids cutting text, rescaled into a fixed-size canvas.

Crop rule (PaddleOCR's ``crop_area``, from DBNet.pytorch / EAST): mark every row and column
covered by a care (non-ignored) polygon's rounded bounding box; the crop borders are drawn from
the free rows/columns, either from two randomly chosen free runs ("regions") when there are
several, or uniformly from all free positions otherwise; a try is accepted when both sides are at
least ``min_crop_side_ratio`` of the image and at least one care polygon is not wholly outside
it.  After ``max_tries`` failed tries (or with no care polygon) the whole image is used.
The random draws are the same calls, in the same order, as PaddleOCR's (NumPy's global
generator), so a seeded run chooses the same crops.  Two PaddleOCR slips are fixed:

* a bounding box reaching past the left/top image border (negative coordinates, e.g. after a
  rotation) was marked with a negative slice start, i.e. not at all (or at the wrong end);
  it is clamped to the image here, so such text is protected like any other;
* with ``keep_ratio: false`` PaddleOCR stretched the image to ``size`` but scaled the polygons by
  the aspect-preserving factor; here polygons follow the image.

PaddleOCR's quirk that the last free run never counts as a region is kept (it shapes the crop
distribution the published recipes were trained with).

The crop is rendered with one ``cv2.warpAffine`` from the *source* image, which lets
``IaaAugment`` hand over its geometric map instead of a warped full-size image (see ``compose``).
"""
from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import cv2
import numpy as np

from ...errors import DataError
from ...registry import TRANSFORMS
from .geometry import pixel_inverse_map, polys_outside_rect
from .resize import check_model_input_size


def _free_positions(lo: np.ndarray, hi: np.ndarray, size: int) -> np.ndarray:
    """Indices in ``[0, size)`` not covered by any ``[lo_i, hi_i)`` (bounds clamped to the image)."""
    lo = np.clip(lo, 0, size)
    hi = np.clip(hi, 0, size)
    ok = lo < hi
    cover = np.zeros(size + 1, dtype=np.int64)
    np.add.at(cover, lo[ok], 1)
    np.add.at(cover, hi[ok], -1)
    return np.flatnonzero(np.cumsum(cover[:size]) == 0)


def _regions(axis: np.ndarray) -> List[np.ndarray]:
    """Runs of consecutive free positions, except the last one (PaddleOCR ``split_regions``)."""
    if len(axis) < 2:
        return []
    breaks = np.flatnonzero(np.diff(axis) != 1) + 1
    return np.split(axis, breaks)[:-1]


def _random_select(axis: np.ndarray, size: int, rng) -> Tuple[int, int]:
    xx = axis[rng.randint(0, len(axis), size=2)]
    lo, hi = int(xx.min()), int(xx.max())
    return min(max(lo, 0), size - 1), min(max(hi, 0), size - 1)


def _region_wise_select(regions: List[np.ndarray], rng) -> Tuple[int, int]:
    picked = rng.randint(0, len(regions), size=2)
    values = []
    for idx in picked:
        axis = regions[idx]
        values.append(int(axis[rng.randint(0, len(axis), size=1)[0]]))
    return min(values), max(values)


def choose_crop(care_polys: np.ndarray, h: int, w: int, min_crop_side_ratio: float, max_tries: int,
                rng=None) -> Tuple[int, int, int, int]:
    """``(x, y, crop_w, crop_h)`` in an ``h x w`` frame for care polygons ``[N, P, 2]``."""
    rng = np.random if rng is None else rng
    if len(care_polys) == 0:
        return 0, 0, w, h
    care = np.asarray(care_polys, dtype=np.float64)
    rounded = np.round(np.clip(care, -1.0, float(max(h, w)) + 1.0)).astype(np.int64)
    w_axis = _free_positions(rounded[..., 0].min(1), rounded[..., 0].max(1), w)
    h_axis = _free_positions(rounded[..., 1].min(1), rounded[..., 1].max(1), h)
    if len(h_axis) == 0 or len(w_axis) == 0:
        return 0, 0, w, h
    h_regions, w_regions = _regions(h_axis), _regions(w_axis)
    bx0, bx1 = care[..., 0].min(1), care[..., 0].max(1)
    by0, by1 = care[..., 1].min(1), care[..., 1].max(1)
    for _ in range(max_tries):
        xmin, xmax = _region_wise_select(w_regions, rng) if len(w_regions) > 1 else _random_select(w_axis, w, rng)
        ymin, ymax = _region_wise_select(h_regions, rng) if len(h_regions) > 1 else _random_select(h_axis, h, rng)
        if xmax - xmin < max(min_crop_side_ratio * w, 1) or ymax - ymin < max(min_crop_side_ratio * h, 1):
            continue
        inside = ~((bx1 < xmin) | (bx0 > xmax) | (by1 < ymin) | (by0 > ymax))
        if inside.any():
            return xmin, ymin, xmax - xmin, ymax - ymin
    return 0, 0, w, h


@TRANSFORMS.register()
class EastRandomCropData:
    """Random text-preserving crop, resized into ``size`` = ``[width, height]``.

    Args:
        size: output ``[width, height]``.
        max_tries: crop attempts before falling back to the whole image.
        min_crop_side_ratio: smallest crop side as a fraction of the image side.
        keep_ratio: keep the aspect ratio (scale by ``min(W/cw, H/ch)``, pad right/bottom with 0)
            instead of stretching to ``size``.
    """

    def __init__(self, size: Sequence[int] = (640, 640), max_tries: int = 10,
                 min_crop_side_ratio: float = 0.1, keep_ratio: bool = True):
        if not isinstance(size, (list, tuple)) or len(size) != 2 or not all(
                isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in size):
            raise ValueError(f"size must be [width, height] positive integers, got {size!r}")
        if not isinstance(max_tries, int) or max_tries < 0:
            raise ValueError(f"max_tries must be a non-negative integer, got {max_tries!r}")
        if not 0 <= float(min_crop_side_ratio) <= 1:
            raise ValueError(f"min_crop_side_ratio must be in [0, 1], got {min_crop_side_ratio!r}")
        self.size = (int(size[0]), int(size[1]))
        self.max_tries = max_tries
        self.min_crop_side_ratio = float(min_crop_side_ratio)
        self.keep_ratio = bool(keep_ratio)

    @staticmethod
    def check_config(args: Mapping[str, Any], mode: str) -> None:
        """Config check (see ``validate_config``): the canvas ``size`` is the model's input."""
        check_model_input_size(args.get("size", (640, 640)), "size", mode, order="[width, height]")

    def apply(self, data: Dict[str, Any], src_to_frame: Optional[np.ndarray] = None,
              frame_hw: Optional[Tuple[int, int]] = None) -> Dict[str, Any]:
        """Crop ``data`` whose ``polys`` are in a frame ``frame_hw`` = ``src_to_frame(image)``.

        Without ``src_to_frame`` the frame is the image itself.
        """
        img = data["image"]
        if not isinstance(img, np.ndarray) or img.ndim not in (2, 3):
            raise DataError("EastRandomCropData expects a decoded HWC image (put DecodeImage first)")
        h, w = frame_hw if frame_hw is not None else img.shape[:2]
        missing = [k for k in ("polys", "ignore_tags", "texts") if k not in data]
        if missing:
            raise DataError(f"EastRandomCropData needs {', '.join(missing)} (put DetLabelEncode before it)")
        polys = np.asarray(data["polys"], dtype=np.float32)
        ignore = np.asarray(data["ignore_tags"], dtype=bool)
        texts = list(data["texts"])
        if not (len(polys) == len(ignore) == len(texts)):
            raise DataError(f"polys/ignore_tags/texts lengths differ: {len(polys)}/{len(ignore)}/{len(texts)}")
        x, y, cw, ch = choose_crop(polys[~ignore], h, w, self.min_crop_side_ratio, self.max_tries)
        out_w, out_h = self.size
        if self.keep_ratio:
            sx = sy = min(out_w / cw, out_h / ch)
            out_w, out_h = int(cw * sx), int(ch * sy)
        else:
            sx, sy = out_w / cw, out_h / ch
        crop = np.array([[sx, 0.0, -x * sx], [0.0, sy, -y * sy], [0.0, 0.0, 1.0]])
        forward = crop if src_to_frame is None else crop @ src_to_frame
        canvas = np.zeros((self.size[1], self.size[0]) + img.shape[2:], dtype=img.dtype)
        if out_w > 0 and out_h > 0:
            view = canvas[:out_h, :out_w]
            res = cv2.warpAffine(img, pixel_inverse_map(forward), (out_w, out_h), dst=view,
                                 flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                 borderMode=cv2.BORDER_CONSTANT, borderValue=0)
            if res is not view:
                view[...] = res.reshape(view.shape)
        new_polys = ((polys.astype(np.float64) - (x, y)) * (sx, sy)).astype(np.float32)
        keep = ~polys_outside_rect(new_polys, 0, 0, out_w, out_h)
        data["image"] = canvas
        data["polys"] = new_polys[keep]
        data["ignore_tags"] = ignore[keep]
        data["texts"] = [t for t, k in zip(texts, keep) if k]
        return data

    def __call__(self, data: Dict[str, Any]) -> Dict[str, Any]:
        return self.apply(data)
