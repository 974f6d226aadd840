"""Fixtures of the evaluation tests: the synthetic evaluation case of ``eval_case.py``."""
from __future__ import annotations

from pathlib import Path

import pytest

from testutil import load_module


_HERE = Path(__file__).resolve().parent


def load_eval_case_module():
    return load_module("dbnetpp_tests_eval_case", _HERE / "eval_case.py")


@pytest.fixture(scope="session")
def eval_case_module():
    return load_eval_case_module()


@pytest.fixture(scope="session")
def eval_case(tmp_path_factory, eval_case_module):
    return eval_case_module.build_case(tmp_path_factory.mktemp("eval_case"))
