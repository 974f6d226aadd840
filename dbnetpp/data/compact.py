"""Lossless batch compaction between loader workers and the main process.

A DB training sample is ~11.5 MB of float32 (image ``[3, 640, 640]``, ``threshold_map``,
``threshold_mask``, ``shrink_map``, ``shrink_mask`` ``[640, 640]``); moving it from a worker to
the main process costs more than computing it.  Two exact encodings cut it to ~4 MB:

* **binary maps**: a float32 key whose values are all exactly ``+0.0`` or ``1.0`` (bit patterns
  ``0x00000000`` / ``0x3F800000``; ``-0.0`` and anything else keep the key as float32) travels as
  uint8 and is cast back to float32 in the main process;
* **deferred normalisation**: when a pipeline ends with the fused ``NormalizeImage(order: hwc)``
  + ``ToCHWImage`` step followed only by ``KeepKeys``, the workers stop before it and send the
  uint8 HWC image; the main process applies the same per-channel table look-up
  (:meth:`NormalizeImage.to_chw`), so every value is bit-identical to the worker-side result.

:func:`defer_normalisation` rewrites a :class:`Compose` for the workers,
:func:`compact_key` encodes one key of a batch (worker side) and :func:`restore_batch` decodes
the batch tensors (main process).
"""
from __future__ import annotations

import copy
from typing import Any, Dict, Optional, Sequence, Tuple

import numpy as np
import paddle

from .transforms.compose import Compose, NormalizeToCHW
from .transforms.keep_keys import KeepKeys
from .transforms.normalize_image import NormalizeImage

COMPACT_KEY = "_compact"
BINARY = "binary"
NORMALIZE = "normalize"
_ONE_BITS = np.uint32(0x3F800000)  # float32 1.0


class DeferredImage:
    """A uint8 HWC image whose ``NormalizeImage`` + ``ToCHWImage`` step has not run yet (worker side)."""

    __slots__ = ("array", "normalize")

    def __init__(self, array: np.ndarray, normalize: NormalizeImage):
        self.array, self.normalize = array, normalize

    def materialize(self) -> np.ndarray:
        """The float32 CHW image the skipped step would have produced."""
        return self.normalize.to_chw({"image": self.array})["image"]


class DeferNormalizeToCHW:
    """Stands in for the fused ``NormalizeImage`` + ``ToCHWImage`` step inside the workers.

    A uint8 ``[H, W, C]`` image (C = number of means, at most 4) becomes a :class:`DeferredImage`;
    anything else runs the real step (which also raises its usual errors).
    """

    def __init__(self, normalize: NormalizeImage):
        self.normalize = normalize

    def __call__(self, data: Dict[str, Any]) -> Dict[str, Any]:
        img = data.get("image")
        if isinstance(img, np.ndarray) and img.dtype == np.uint8 and img.ndim == 3 \
                and img.shape[2] == len(self.normalize.mean) and img.shape[2] <= 4:
            data["image"] = DeferredImage(img, self.normalize)
            return data
        return self.normalize.to_chw(data)


def defer_normalisation(transforms: Any) -> Optional[Tuple[Compose, NormalizeImage]]:
    """A copy of ``transforms`` whose final image normalisation is deferred, or None.

    Applies only to a :class:`Compose` with one fused ``NormalizeImage+ToCHWImage`` step that is
    followed by ``KeepKeys`` steps only (which keep ``image``); ``transforms`` itself is unchanged.
    """
    if not isinstance(transforms, Compose):
        return None
    positions = [i for i, (_, step) in enumerate(transforms.steps) if isinstance(step, NormalizeToCHW)]
    if len(positions) != 1:
        return None
    pos = positions[0]
    after = [step for _, step in transforms.steps[pos + 1:]]
    if not all(isinstance(step, KeepKeys) and "image" in step.keep_keys for step in after):
        return None
    normalize = transforms.steps[pos][1].normalize
    deferred = copy.copy(transforms)
    deferred.steps = list(transforms.steps)
    deferred.steps[pos] = ("NormalizeImage+ToCHWImage(deferred)", DeferNormalizeToCHW(normalize))
    return deferred, normalize


def binary_as_uint8(values: Sequence[np.ndarray]) -> Optional[np.ndarray]:
    """Stack float32 arrays of one shape as uint8 if every value is exactly +0.0 or 1.0, else None."""
    first = values[0]
    if not all(isinstance(v, np.ndarray) and v.dtype == np.float32 and v.shape == first.shape for v in values):
        return None
    out = np.empty((len(values),) + first.shape, dtype=np.uint8)
    flags = out.view(np.bool_)
    for i, v in enumerate(values):
        bits = np.ascontiguousarray(v).view(np.uint32)
        np.equal(bits, _ONE_BITS, out=flags[i])
        if np.count_nonzero(bits) != np.count_nonzero(flags[i]):  # some value is neither +0.0 nor 1.0
            return None
    return out


def compact_key(values: Sequence[Any], stack: bool = True) -> Tuple[Optional[str], Any]:
    """Worker side: ``(encoding, stacked array)`` for one key's per-sample values.

    ``encoding`` is :data:`NORMALIZE` (uint8 ``[N, H, W, C]`` images), :data:`BINARY` (uint8 maps)
    or None; for None (always with ``stack=False``), ``values`` is returned as a list with any
    :class:`DeferredImage` materialised.
    """
    if stack and values and all(isinstance(v, DeferredImage) for v in values):
        shapes = {v.array.shape for v in values}
        if len(shapes) == 1:
            return NORMALIZE, np.stack([v.array for v in values])
    if any(isinstance(v, DeferredImage) for v in values):
        return None, [v.materialize() if isinstance(v, DeferredImage) else v for v in values]
    if stack and values and isinstance(values[0], np.ndarray) and values[0].ndim > 0:
        packed = binary_as_uint8(values)
        if packed is not None:
            return BINARY, packed
    return None, values


def normalize_tensor(images: paddle.Tensor, normalize: NormalizeImage) -> paddle.Tensor:
    """uint8 ``[N, H, W, C]`` -> float32 ``[N, C, H, W]``, exactly :meth:`NormalizeImage.to_chw` per image.

    On the CPU the NumPy step itself runs; elsewhere (e.g. a GPU) the step's own 256-entry
    per-channel tables are gathered on the device, which copies the same float32 values.
    """
    if images.place.is_cpu_place():
        arrays = images.numpy()
        out = np.empty((arrays.shape[0], arrays.shape[3]) + arrays.shape[1:3], dtype=np.float32)
        for i in range(arrays.shape[0]):
            out[i] = normalize.to_chw({"image": arrays[i]})["image"]
        return paddle.to_tensor(out, place=paddle.CPUPlace())
    return _gather_normalize(images, normalize)


def _gather_normalize(images: paddle.Tensor, normalize: NormalizeImage) -> paddle.Tensor:
    channels = int(images.shape[3])
    levels = np.repeat(np.arange(256, dtype=np.uint8).reshape(1, 256, 1), channels, axis=2)
    table = normalize.to_chw({"image": levels})["image"].reshape(-1)  # [C * 256], row c = channel c
    offsets = paddle.to_tensor((np.arange(channels, dtype=np.int32) * 256).reshape(1, channels, 1, 1))
    index = images.transpose([0, 3, 1, 2]).astype("int32") + offsets
    out = paddle.gather(paddle.to_tensor(table), index.flatten())
    return out.reshape(index.shape)


def restore_batch(batch: Dict[str, Any], encodings: Dict[str, str], normalize: Optional[NormalizeImage]) -> None:
    """Main process: decode the keys listed in ``encodings`` in place (float32, as before compaction)."""
    for key, encoding in encodings.items():
        value = batch[key]
        if encoding == BINARY:
            batch[key] = value.astype("float32") if isinstance(value, paddle.Tensor) else value.astype(np.float32)
        elif encoding == NORMALIZE:
            if normalize is None:
                raise RuntimeError(f"batch key '{key}' holds unnormalised images but the loader has no normaliser")
            if not isinstance(value, paddle.Tensor):
                value = paddle.to_tensor(value, place=paddle.CPUPlace())
            batch[key] = normalize_tensor(value, normalize)
        else:
            raise ValueError(f"unknown batch encoding {encoding!r} for key '{key}'")
