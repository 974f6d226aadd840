"""The runtime shims, in the order they are installed.  Each module documents what it changes
and why, declares ``EXPECTS`` (upstream text it relies on) and has ``install(finder) -> list``
returning what it actually changed on this interpreter (empty when nothing was needed)."""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List

from . import checkpoint_names, db_fpn_asf, iaa_augment, numpy_aliases, optional_imports, paddle_fluid
from .base import Expect, PatchError, check

SHIMS = [numpy_aliases, paddle_fluid, optional_imports, iaa_augment, db_fpn_asf, checkpoint_names]


def name_of(shim) -> str:
    return shim.__name__.rsplit(".", 1)[-1]


def expectations() -> List[Expect]:
    return [e for shim in SHIMS for e in shim.EXPECTS]


def verify(root: Path) -> None:
    """Raise :class:`PatchError` listing every file that does not look as a shim expects."""
    problems = check(Path(root), expectations())
    if problems:
        raise PatchError(
            f"{root} does not look like the PaddleOCR release/2.5 tree the overlay was written for:\n  "
            + "\n  ".join(problems))


def install_all(finder) -> Dict[str, List[str]]:
    return {name_of(shim): shim.install(finder) for shim in SHIMS}


__all__ = ["SHIMS", "Expect", "PatchError", "verify", "install_all", "expectations"]
