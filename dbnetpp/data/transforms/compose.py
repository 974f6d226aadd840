"""Building a transform pipeline from a PaddleOCR ``transforms:`` list, and running it.

``create_transforms([{Name: {args}}, ...])`` builds each entry through the ``TRANSFORMS`` registry
(unknown names or keys are :class:`ConfigError` naming ``where[i].Name``) and returns a
:class:`Compose`.  ``Compose`` fuses adjacent pairs that have a cheaper joint form, with the same
results in distribution and labels:

* ``IaaAugment`` + ``EastRandomCropData``: the augmentation is sampled as one affine map, the crop
  is chosen on the transformed polygons, and the source image is warped once straight into the
  crop window (no full-size 0.5x-3x intermediate image);
* ``NormalizeImage(order: hwc)`` + ``ToCHWImage``: per-channel table look-up written directly in
  CHW layout (bit-identical values).

``Compose.steps`` lists what actually runs (``(name, callable)``), e.g. for profiling.

By default the first call of a ``Compose`` in a process also calls
:func:`~dbnetpp.data.transforms.memory.retain_freed_memory` (glibc keeps freed buffers instead of
page-faulting ~12 MB back for every sample, which otherwise costs as much CPU as the transforms);
``retain_memory=False`` leaves the allocator alone.
"""
from __future__ import annotations

import os
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from ...errors import ConfigError, DataError
from ...registry import TRANSFORMS
from .east_random_crop import EastRandomCropData
from .iaa_augment import IaaAugment
from .memory import retain_freed_memory
from .normalize_image import NormalizeImage
from .to_chw_image import ToCHWImage


class AugmentAndCrop:
    """``IaaAugment`` then ``EastRandomCropData`` with a single warp (see module docstring)."""

    def __init__(self, augment: IaaAugment, crop: EastRandomCropData):
        self.augment, self.crop = augment, crop

    def __call__(self, data: Dict[str, Any]) -> Dict[str, Any]:
        img = data["image"]
        if not hasattr(img, "shape") or len(img.shape) not in (2, 3):
            raise DataError("IaaAugment expects a decoded HWC image (put DecodeImage first)")
        if "polys" not in data:
            raise DataError("IaaAugment+EastRandomCropData needs polys (put DetLabelEncode before them)")
        plan = self.augment.sample(*img.shape[:2])
        data["polys"] = plan.apply_polys(data["polys"])
        return self.crop.apply(data, src_to_frame=plan.matrix, frame_hw=plan.out_hw)


class NormalizeToCHW:
    """``NormalizeImage(order: hwc)`` then ``ToCHWImage`` in one pass."""

    def __init__(self, normalize: NormalizeImage):
        self.normalize = normalize

    def __call__(self, data: Dict[str, Any]) -> Dict[str, Any]:
        return self.normalize.to_chw(data)


def _fuse(transforms: Sequence[Callable]) -> List[Tuple[str, Callable]]:
    steps: List[Tuple[str, Callable]] = []
    i = 0
    while i < len(transforms):
        cur = transforms[i]
        nxt = transforms[i + 1] if i + 1 < len(transforms) else None
        if isinstance(cur, IaaAugment) and isinstance(nxt, EastRandomCropData):
            steps.append(("IaaAugment+EastRandomCropData", AugmentAndCrop(cur, nxt)))
            i += 2
        elif isinstance(cur, NormalizeImage) and cur.order == "hwc" and isinstance(nxt, ToCHWImage):
            steps.append(("NormalizeImage+ToCHWImage", NormalizeToCHW(cur)))
            i += 2
        else:
            steps.append((type(cur).__name__, cur))
            i += 1
    return steps


class Compose:
    """Runs transforms in order on a sample dict; ``fuse=False`` runs them one by one."""

    def __init__(self, transforms: Sequence[Callable], fuse: bool = True, retain_memory: bool = True):
        self.transforms = list(transforms)
        self.steps = _fuse(self.transforms) if fuse else [(type(t).__name__, t) for t in self.transforms]
        self.retain_memory = retain_memory
        self._configured_pid: Optional[int] = None

    def __call__(self, data: Dict[str, Any]) -> Dict[str, Any]:
        if self.retain_memory and self._configured_pid != os.getpid():  # once per (worker) process
            retain_freed_memory()
            self._configured_pid = os.getpid()
        for name, step in self.steps:
            data = step(data)
            if data is None:
                raise DataError(f"transform {name} returned no sample")
        return data

    def __repr__(self) -> str:
        return f"Compose([{', '.join(name for name, _ in self.steps)}])"


def create_transforms(items: Sequence[Mapping[str, Any]], where: str = "Train.dataset.transforms",
                      fuse: bool = True, retain_memory: bool = True) -> Compose:
    """``[{Name: {key: value}}, ...]`` (PaddleOCR ``transforms:`` list) -> :class:`Compose`."""
    if not isinstance(items, (list, tuple)):
        raise ConfigError(f"transforms must be a list of {{Name: {{args}}}} entries, got {type(items).__name__}",
                          key=where)
    built = []
    for i, item in enumerate(items):
        loc = f"{where}[{i}]"
        if not isinstance(item, Mapping) or len(item) != 1:
            raise ConfigError(f"each transform must be a single {{Name: {{args}}}} mapping, got {item!r}", key=loc)
        (name, args), = item.items()
        if args is None:
            args = {}
        if not isinstance(args, Mapping):
            raise ConfigError(f"arguments of {name} must be a mapping, got {args!r}", key=f"{loc}.{name}")
        if "name" in args:
            raise ConfigError(f"'name' is not an argument of {name}", key=f"{loc}.{name}.name")
        built.append(TRANSFORMS.build({"name": name, **args}, where=f"{loc}.{name}"))
    return Compose(built, fuse=fuse, retain_memory=retain_memory)
