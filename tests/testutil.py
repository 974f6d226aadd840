"""Test-only helpers importable from every test folder (``tests/`` is on pytest's ``pythonpath``)."""
from __future__ import annotations

import importlib.util
import sys
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import Union

from dbnetpp.jsonline import last_json_line, last_line_json

__all__ = ["RAPIDOCR_V3_DET", "last_json_line", "last_line_json", "load_module", "rapidocr_v3_det_onnx"]

RAPIDOCR_V3_DET = "rapidocr_onnxruntime/models/ch_PP-OCRv3_det_infer.onnx"
"""PP-OCRv3's mobile detector inside the test-only reference wheel rapidocr-onnxruntime==1.2.13."""


def load_module(name: str, path: Union[str, Path], fresh: bool = False) -> ModuleType:
    """The Python file ``path`` as module ``name`` (a tool script, or a test helper file, which the
    importlib import mode does not make importable).  Registered in ``sys.modules`` while it executes
    (dataclasses look their module up); reused on later calls unless ``fresh``."""
    if fresh or name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def rapidocr_v3_det_onnx() -> Path:
    """The installed :data:`RAPIDOCR_V3_DET`; skips the test when the reference wheel is not installed."""
    import pytest

    try:
        path = Path(metadata.distribution("rapidocr-onnxruntime").locate_file(RAPIDOCR_V3_DET))
    except metadata.PackageNotFoundError:
        pytest.skip("rapidocr-onnxruntime==1.2.13 (test reference, requirements-ref.txt) is not installed")
    assert path.is_file(), path
    return path
