"""Shared fixtures: locations of ../shared data (skipping cleanly when absent) and tiny datasets."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("DBNETPP_SHARED", ROOT.parent / "shared"))


def _need(path: Path, what: str) -> Path:
    if not path.exists():
        pytest.skip(f"{what} not available: {path} is missing (set DBNETPP_SHARED to the folder holding "
                    f"datasets/ and reference/)")
    return path


@pytest.fixture(scope="session")
def root_dir() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def ref_dir() -> Path:
    """``../shared/reference/ppocr``: upstream PaddleOCR reference outputs."""
    return _need(SHARED / "reference" / "ppocr", "PaddleOCR reference data")


@pytest.fixture(scope="session")
def icdar_dir() -> Path:
    """``../shared/datasets/icdar2015``: the official ICDAR2015 layout."""
    return _need(SHARED / "datasets" / "icdar2015", "ICDAR2015 dataset")


@pytest.fixture(scope="session")
def refdet_dir() -> Path:
    """``../shared/datasets/icdar2015_reference_detections``."""
    return _need(SHARED / "datasets" / "icdar2015_reference_detections", "ICDAR2015 reference detections")
