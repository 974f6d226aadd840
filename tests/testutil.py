"""Test-only helper importable from every test folder (``tests/`` is on pytest's ``pythonpath``)."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Union


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
