"""Data transforms for text detection, registered in ``TRANSFORMS`` under PaddleOCR's names.

Each transform is a callable on a sample ``dict`` returning the dict (see ``docs`` / the
contracts: ``image``, ``label``, ``polys`` float32 ``[N, P, 2]``, ``texts``, ``ignore_tags`` bool
``[N]``, ``shape``, ``threshold_map``/``threshold_mask``/``shrink_map``/``shrink_mask`` float32
``[H, W]``).  Invalid input raises :class:`~dbnetpp.errors.DataError`, never returns ``None``.
"""
from .compose import AugmentAndCrop, Compose, NormalizeToCHW, create_transforms
from .decode_image import DecodeImage
from .det_label_encode import DetLabelEncode
from .det_resize_for_test import DetResizeForTest
from .east_random_crop import EastRandomCropData
from .iaa_augment import IaaAugment
from .keep_keys import KeepKeys
from .make_border_map import MakeBorderMap
from .make_shrink_map import MakeShrinkMap
from .memory import retain_freed_memory
from .normalize_image import NormalizeImage
from .resize import Resize
from .to_chw_image import ToCHWImage

__all__ = [
    "Compose", "create_transforms", "AugmentAndCrop", "NormalizeToCHW",
    "DecodeImage", "DetLabelEncode", "DetResizeForTest", "EastRandomCropData", "IaaAugment",
    "KeepKeys", "MakeBorderMap", "MakeShrinkMap", "NormalizeImage", "Resize", "ToCHWImage",
    "retain_freed_memory",
]
