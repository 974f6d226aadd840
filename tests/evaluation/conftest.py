"""Fixtures of the evaluation tests: the synthetic evaluation case of ``eval_case.py``."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

_HERE = Path(__file__).resolve().parent


def load_eval_case_module():
    name = "dbnetpp_tests_eval_case"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, _HERE / "eval_case.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up while the file executes
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture(scope="session")
def eval_case_module():
    return load_eval_case_module()


@pytest.fixture(scope="session")
def eval_case(tmp_path_factory, eval_case_module):
    return eval_case_module.build_case(tmp_path_factory.mktemp("eval_case"))
