"""Module-level imports of packages that the det route never uses.

Importing release/2.5's ``tools/train.py`` pulls in the whole ``ppocr`` package, which imports
at module level: ``skimage`` (``ppocr/data/__init__.py``, where it is unused, and the PGNet
post-processor), ``scipy`` (PGNet metric), ``lmdb`` (LMDB datasets), ``Levenshtein``
(recognition metric) and ``visualdl`` (only used with ``Global.use_visualdl``).  Installing them
would add scikit-image, SciPy, a VisualDL web stack and a C extension to the venv for nothing.

For each such package that is *not installed*, placeholder modules are served for it and its
submodules (``ppocr.postprocess`` reaches ``from skimage.morphology._skeletonize import thin``):
importing them and ``from X import Y`` succeed, but using anything from them raises an
ImportError naming the package and what needs it.  An installed package is always used as is.
"""
from __future__ import annotations

import importlib.util
import types
from typing import List


# top-level module -> (pip package, what needs it)
PACKAGES = {
    "skimage": ("scikit-image", "PGNet end-to-end post-processing (imported by ppocr.postprocess)"),
    "scipy": ("scipy", "PGNet end-to-end metric (imported by ppocr.metrics)"),
    "lmdb": ("lmdb", "LMDBDataSet (recognition data)"),
    "Levenshtein": ("python-Levenshtein", "RecMetric (recognition)"),
    "visualdl": ("visualdl", "Global.use_visualdl: true"),
}

EXPECTS: tuple = ()  # nothing upstream-specific is relied on


class _Missing:
    def __init__(self, what: str, package: str, needed_by: str):
        self._msg = (f"{what} is unavailable: the package '{package}' is not installed (the det route "
                     f"does not need it; {needed_by} does: pip install {package})")

    def __call__(self, *args, **kwargs):
        raise ImportError(self._msg)

    def __getattr__(self, attr):
        if attr.startswith("__"):
            raise AttributeError(attr)
        raise ImportError(self._msg)


class Placeholder(types.ModuleType):
    def __init__(self, name: str, package: str, needed_by: str):
        super().__init__(name, f"placeholder for the uninstalled package {package}")
        self.__path__ = []  # a package, so that placeholder submodules can be imported
        self._package = package
        self._needed_by = needed_by

    def __getattr__(self, attr):
        if attr.startswith("__"):
            raise AttributeError(attr)
        return _Missing(f"{self.__name__}.{attr}", self._package, self._needed_by)


def install(finder) -> List[str]:
    served = []
    for name, (package, needed_by) in PACKAGES.items():
        if importlib.util.find_spec(name) is None:
            finder.replace_tree(name, lambda n, p=package, w=needed_by: Placeholder(n, p, w))
            served.append(name)
    return served
