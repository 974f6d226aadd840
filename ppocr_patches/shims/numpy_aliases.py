"""NumPy >= 1.24 removed the aliases ``np.bool``, ``np.int``, ``np.float``, ``np.complex``,
``np.object``, ``np.str`` (deprecated in 1.20).  release/2.5 uses ``np.bool`` in
``DetLabelEncode`` and ``np.int`` in ``DBPostProcess.box_score_fast`` (plus FCE and PGNet code), so
the det path dies on the first label or the first evaluated image.

The shim restores exactly what the aliases meant (the Python builtins), and only for names the
installed NumPy lacks; NumPy 2 has its own ``np.bool`` again, which is left alone.
"""
from __future__ import annotations

import builtins
from typing import List

import numpy as np


ALIASES = ("bool", "int", "float", "complex", "object", "str")

# The det path's uses; if a newer branch dropped them the shim is harmless, so nothing is required.
EXPECTS: tuple = ()


def install(finder) -> List[str]:
    added = []
    for name in ALIASES:
        if name not in vars(np):  # (getattr would only print NumPy's FutureWarning)
            setattr(np, name, getattr(builtins, name))
            added.append(f"np.{name}")
    return added
