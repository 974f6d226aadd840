"""The recipe-test fixtures (tests/config/conftest.py), shared with the launcher tests."""
from __future__ import annotations

import importlib.util
from pathlib import Path

_spec = importlib.util.spec_from_file_location("_recipe_fixtures", Path(__file__).resolve().parents[1] / "config"
                                               / "conftest.py")
_fixtures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_fixtures)

tiny_data = _fixtures.tiny_data
tiny_overrides = _fixtures.tiny_overrides
