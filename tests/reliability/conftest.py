"""Reliability-test plumbing: the case lists of ``cases.py`` become parameters, helpers a fixture.

Parameters (by argument name): ``corpus_case`` (the bulk :data:`cases.CORPUS_CASES` entries),
``config_case`` (:data:`cases.CONFIG_CASES`, strict ``xfail`` where ``bug`` is set) and
``config_file_case`` (the same, for the "names the config file" check, ``xfail`` on ``file_bug``).
"""
from __future__ import annotations

from pathlib import Path

import pytest

from testutil import load_module


HERE = Path(__file__).resolve().parent


cases = load_module("reliability_cases", HERE / "cases.py")
helpers = load_module("reliability_helpers", HERE / "helpers.py")


def _xfail(reason: str):
    return [pytest.mark.xfail(strict=True, reason=reason)] if reason else []


def pytest_generate_tests(metafunc):
    if "corpus_case" in metafunc.fixturenames:
        metafunc.parametrize("corpus_case", [pytest.param(c, id=c.id) for c in cases.CORPUS_CASES if c.bulk])
    if "config_case" in metafunc.fixturenames:
        metafunc.parametrize("config_case", [
            pytest.param(c, id=c.id, marks=_xfail(c.bug) + ([pytest.mark.slow] if c.in_subprocess else []))
            for c in cases.CONFIG_CASES])
    if "config_file_case" in metafunc.fixturenames:
        metafunc.parametrize("config_file_case", [pytest.param(c, id=c.id, marks=_xfail(c.file_bug))
                                                  for c in cases.CONFIG_CASES if c.names_file and not c.bug])


@pytest.fixture(scope="session")
def rel():
    """The helpers module (``helpers.py``)."""
    return helpers


@pytest.fixture(scope="session")
def corpus_mod():
    """``tests/fixtures/bad_inputs/make_corpus.py`` as a module."""
    return cases.corpus


@pytest.fixture(scope="session")
def rel_cases():
    return cases


@pytest.fixture(scope="session")
def clean_data(tmp_path_factory) -> Path:
    """A valid 8-train / 4-test dataset (read-only for the tests)."""
    return cases.corpus.write_clean_dataset(tmp_path_factory.mktemp("clean") / "data", n_train=8, n_test=4)
