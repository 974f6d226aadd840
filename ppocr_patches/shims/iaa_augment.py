"""``IaaAugment`` without imgaug.

release/2.5's ``ppocr/data/imaug/iaa_augment.py`` imports imgaug at module level, and
``ppocr/data/imaug/__init__.py`` imports it unconditionally, so without imgaug nothing in
``ppocr.data`` imports; with NumPy >= 1.24 imgaug 0.4.0 itself fails (``np.bool``), and it is
unmaintained.  The shim serves its own ``ppocr.data.imaug.iaa_augment`` module (the upstream file
is never executed) whose ``IaaAugment`` hands the work to dbnetpp's ``IaaAugment`` transform: the
same YAML ``augmenter_args`` (``Fliplr``, ``Affine`` rotate, ``Resize`` size) applied with OpenCV to
``data["image"]`` and ``data["polys"]``.  imgaug is neither needed nor used, even if installed.
"""
from __future__ import annotations

from typing import List

from ..importhooks import new_module
from .base import Expect

MODULE = "ppocr.data.imaug.iaa_augment"

EXPECTS = (
    Expect("ppocr/data/imaug/__init__.py", r"^from \.iaa_augment import IaaAugment$",
           "the only name the det path takes from iaa_augment"),
    Expect("ppocr/data/imaug/iaa_augment.py", r"^class IaaAugment\b", "the class the shim stands in for"),
)


class IaaAugment:
    """Upstream's constructor signature: ``augmenter_args`` plus the ``Global`` section, which
    upstream's ``create_operators`` passes to every transform as keyword arguments."""

    def __init__(self, augmenter_args=None, **global_config):
        from dbnetpp.data import transforms  # noqa: F401  (registers the transforms)
        from dbnetpp.registry import TRANSFORMS

        cfg = {"name": "IaaAugment"}
        if augmenter_args is not None:
            cfg["augmenter_args"] = augmenter_args
        self.impl = TRANSFORMS.build(cfg, where="Train.dataset.transforms.IaaAugment")

    def __call__(self, data):
        return self.impl(data)


def _module(name: str):
    return new_module(name, __doc__, IaaAugment=IaaAugment)


def install(finder) -> List[str]:
    finder.replace(MODULE, _module)
    return [f"{MODULE} (no imgaug)"]
