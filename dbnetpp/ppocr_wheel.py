"""The PyPI ``paddleocr==2.5.0.3`` wheel as the reference implementation to compare with.

``init.sh`` installs it ``--no-deps``; the side-by-side benchmarks (``benchmarks/eval.py``,
``benchmarks/pipeline.py``) and the parity tests load single files of it from here, so none of
its package ``__init__`` (which imports paddle, lmdb, ...) runs.  Training, evaluation and
deployment never import it.
"""
from __future__ import annotations

import importlib.util
import types
from pathlib import Path
from typing import Optional

import numpy as np

# numpy names removed in 1.24 that PaddleOCR 2.5 (and imgaug 0.4) still use
NP_ALIASES = {"bool": bool, "int": int, "float": float, "complex": complex, "object": object, "str": str}


class ReferenceMissing(ImportError):
    """The wheel is not installed (or not its layout)."""


def wheel_dir() -> Path:
    """The installed wheel's folder (holding ``ppocr/`` and ``tools/``)."""
    spec = importlib.util.find_spec("paddleocr")
    if spec is None or not spec.submodule_search_locations:
        raise ReferenceMissing("paddleocr==2.5.0.3 (the reference implementation) is not installed: "
                               "pip install --no-deps paddleocr==2.5.0.3 (init.sh does)")
    return Path(list(spec.submodule_search_locations)[0])


def numpy_with_aliases() -> types.ModuleType:
    """A private numpy namespace with :data:`NP_ALIASES` (numpy itself is left untouched)."""
    compat = types.ModuleType("numpy_compat")
    compat.__dict__.update(np.__dict__)
    compat.__dict__.update(NP_ALIASES)
    return compat


def load_file(relative: str, name: Optional[str] = None, private_numpy: bool = True) -> types.ModuleType:
    """Execute ``<wheel>/relative`` (e.g. ``ppocr/postprocess/db_postprocess.py``) as a module of its own.

    With ``private_numpy`` the module's ``np`` is :func:`numpy_with_aliases` once it has loaded, for
    functions that use ``np.int`` at call time; code that needs the aliases while loading (imgaug)
    needs them set on numpy by the caller.
    """
    path = wheel_dir() / relative
    if not path.is_file():
        raise ReferenceMissing(f"{path} missing: not the paddleocr 2.5.0.3 wheel layout")
    spec = importlib.util.spec_from_file_location(name or "ppocr25_" + path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if private_numpy:
        module.np = numpy_with_aliases()
    return module


__all__ = ["NP_ALIASES", "ReferenceMissing", "wheel_dir", "numpy_with_aliases", "load_file"]
