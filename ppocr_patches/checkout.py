"""Where the PaddleOCR checkout is, which commit it is, and the overlay's stamp inside it."""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Optional

from . import OVERLAY_VERSION
from .shims.base import PatchError

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DIR = REPO_ROOT / "third_party" / "PaddleOCR"
STAMP_NAME = ".ppocr_patches.json"
ENTRY_POINTS = {"train": "tools/train.py", "eval": "tools/eval.py", "export": "tools/export_model.py"}


def resolve_dir(path: Optional[str] = None) -> Path:
    """``path``, else ``$PADDLEOCR_DIR``, else ``third_party/PaddleOCR``; must hold ppocr/ and tools/."""
    raw = path or os.environ.get("PADDLEOCR_DIR") or str(DEFAULT_DIR)
    root = Path(raw).expanduser().resolve()
    if not root.is_dir():
        hint = ("set PADDLEOCR_DIR to a PaddleOCR release/2.5 checkout, or run: bash init.sh --with-paddleocr [SRC]"
                if not path and not os.environ.get("PADDLEOCR_DIR") else "check the path")
        raise PatchError(f"{root}: no PaddleOCR checkout there ({hint})")
    for sub in ("ppocr", *ENTRY_POINTS.values()):
        if not (root / sub).exists():
            raise PatchError(f"{root / sub}: missing; {root} is not a PaddleOCR checkout")
    return root


def commit_of(root: Path) -> str:
    """The recorded commit: ``<dir>.commit`` (written by scripts/setup_paddleocr.sh), else git, else the stamp."""
    side = root.parent / f"{root.name}.commit"
    if side.is_file():
        return side.read_text(encoding="utf-8").strip()
    if (root / ".git").exists():
        try:
            out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                                 check=True, timeout=30)
            return out.stdout.strip()
        except (OSError, subprocess.SubprocessError):
            pass
    stamp = read_stamp(root)
    return stamp.get("commit", "unknown") if stamp else "unknown"


def read_stamp(root: Path) -> Optional[dict]:
    file = root / STAMP_NAME
    if not file.is_file():
        return None
    try:
        return json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise PatchError(f"{file}: unreadable overlay stamp ({exc}); re-apply with python -m ppocr_patches.apply") from None


def write_stamp(root: Path, info: dict) -> Path:
    file = root / STAMP_NAME
    tmp = file.with_suffix(".tmp")
    tmp.write_text(json.dumps({"overlay_version": OVERLAY_VERSION, **info}, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, file)
    return file


def remove_stamp(root: Path) -> bool:
    file = root / STAMP_NAME
    if file.is_file():
        file.unlink()
        return True
    return False
