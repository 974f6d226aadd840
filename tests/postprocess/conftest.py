"""Fixtures for post-processing tests: the PaddleOCR 2.5.0.3 reference DBPostProcess."""
from __future__ import annotations

import importlib.util
import types
from pathlib import Path

import numpy as np
import pytest


@pytest.fixture(scope="session")
def ppocr25_db():
    """``DBPostProcess`` class of the PyPI ``paddleocr==2.5.0.3`` wheel (installed --no-deps).

    Loaded from the wheel's own file so no other part of that package is imported; the module
    uses ``np.int`` (gone since numpy 1.24), so it gets a private numpy namespace with that
    alias: numpy itself is left untouched.
    """
    spec = importlib.util.find_spec("paddleocr")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("paddleocr==2.5.0.3 is not installed (init.sh installs it with --no-deps)")
    path = Path(list(spec.submodule_search_locations)[0]) / "ppocr" / "postprocess" / "db_postprocess.py"
    if not path.exists():
        pytest.skip(f"{path} missing: not the paddleocr 2.5.0.3 wheel layout")
    mod_spec = importlib.util.spec_from_file_location("ppocr25_db_postprocess_for_tests", path)
    module = importlib.util.module_from_spec(mod_spec)
    mod_spec.loader.exec_module(module)
    np_compat = types.ModuleType("numpy_compat")
    np_compat.__dict__.update(np.__dict__)
    np_compat.int = int
    np_compat.float = float
    np_compat.bool = bool
    module.np = np_compat
    return module.DBPostProcess
