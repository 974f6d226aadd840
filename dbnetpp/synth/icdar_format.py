"""Writing ICDAR2015 task 4.1 GT files exactly as the official dataset ships them.

The official training GT (``ch4_training_localization_transcription_gt``) is UTF-8 with
a BOM and LF line ends; the official test GT (``Challenge4_Test_Task1_GT``) has no BOM
and CRLF line ends.  Every line, including the last, is terminated.
"""
from __future__ import annotations

from typing import Iterable, Tuple

import numpy as np


def format_gt_line(quad: np.ndarray, transcription: str) -> str:
    """``x1,y1,x2,y2,x3,y3,x4,y4,transcription`` with integer coordinates.

    The transcription may contain commas (readers split on the first 8 only) but no line
    break.
    """
    q = np.asarray(quad)
    if q.shape != (4, 2):
        raise ValueError(f"a quad must be 4 (x, y) points, got shape {q.shape}")
    if not np.all(q == np.round(q)):
        raise ValueError(f"quad coordinates must be integers, got {q.tolist()}")
    if "\n" in transcription or "\r" in transcription or not transcription:
        raise ValueError(f"transcription must be one non-empty line, got {transcription!r}")
    return ",".join(str(int(v)) for v in q.reshape(-1)) + "," + transcription


def gt_file_bytes(items: Iterable[Tuple[np.ndarray, str]], *, bom: bool, crlf: bool) -> bytes:
    """File content for ``(quad, transcription)`` pairs."""
    eol = "\r\n" if crlf else "\n"
    text = "".join(format_gt_line(q, t) + eol for q, t in items)
    return (b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8")
