"""Fixtures for post-processing tests: the PaddleOCR 2.5.0.3 reference DBPostProcess."""
from __future__ import annotations

import pytest

from dbnetpp.ppocr_wheel import ReferenceMissing, load_file


@pytest.fixture(scope="session")
def ppocr25_db():
    """``DBPostProcess`` class of the PyPI ``paddleocr==2.5.0.3`` wheel (installed --no-deps), loaded from
    the wheel's own file with a private numpy namespace carrying ``np.int`` (:mod:`dbnetpp.ppocr_wheel`)."""
    try:
        return load_file("ppocr/postprocess/db_postprocess.py", "ppocr25_db_postprocess_for_tests").DBPostProcess
    except ReferenceMissing as exc:
        pytest.skip(str(exc))
