"""Reading ICDAR2015 task 4.1 text files (``gt_img_N.txt`` / ``res_img_N.txt``).

One line per quadrilateral, clockwise from the top-left corner::

    x1,y1,x2,y2,x3,y3,x4,y4[,transcription]

The transcription may itself contain commas (only the first 8 commas split), ``###``
marks a don't-care region.  Files may start with a UTF-8 BOM (the official training
GT does) and may use CRLF line ends (the official test GT does).  Every problem is a
:class:`~dbnetpp.errors.DataError` naming ``file:line``.

Callers that want to skip bad lines instead pass an ``errors`` list: each bad
line's error is appended there and the line is left out.
"""
from __future__ import annotations

import math
import re
from typing import List, NamedTuple, Optional

from ..errors import DataError, quote

DONT_CARE = "###"
_IMG_ID = re.compile(r"(?:gt_|res_)?img_(\d+)\.txt$")

COORD_LIMIT = 1e6
"""Largest absolute coordinate a GT or result file may hold: no image is a million pixels across, and
beyond float32's range (``1e39``) a value would turn into infinity later."""


def check_coordinate(value: float, what: str, file: str, lineno: int) -> None:
    """:class:`DataError` at ``file:lineno`` naming ``what`` when ``|value|`` exceeds :data:`COORD_LIMIT`."""
    if abs(value) > COORD_LIMIT:
        raise DataError(f"{what} is {value:g}: beyond +-{COORD_LIMIT:g} pixels, not a position in an image",
                        file, lineno)


class GTBox(NamedTuple):
    points: List[List[float]]  # 4 x [x, y]
    transcription: Optional[str]  # None when the file has no transcriptions

    @property
    def ignore(self) -> bool:
        return self.transcription == DONT_CARE


def decode_text(raw: bytes, file: str) -> str:
    """Bytes of a GT file -> text without BOM; non-UTF-8 content is an error."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise DataError(f"not valid UTF-8 ({exc.reason} at byte {exc.start})", file, line) from None
    return text.lstrip("\ufeff")


def parse_gt_line(line: str, file: str, lineno: int, with_transcription: bool = True) -> GTBox:
    """Parse one line; ``lineno`` is 1-based.  Coordinates must be finite numbers."""
    line = line.rstrip("\r\n").lstrip("\ufeff")
    parts = line.split(",", 8) if with_transcription else line.split(",")
    if with_transcription:
        if len(parts) < 9:
            raise DataError(f"expected 8 coordinates and a transcription, got {len(parts)} comma-separated field(s): {quote(line)!r}",
                            file, lineno)
        coords, text = parts[:8], parts[8]
    else:
        if len(parts) != 8:
            raise DataError(f"expected 8 coordinates, got {len(parts)} field(s): {quote(line)!r}", file, lineno)
        coords, text = parts, None
    values = []
    for i, c in enumerate(coords):
        try:
            v = float(c.strip())
        except ValueError:
            raise DataError(f"coordinate {i + 1} is not a number: {quote(c.strip())!r}", file, lineno) from None
        if not math.isfinite(v):
            raise DataError(f"coordinate {i + 1} is not finite: {quote(c.strip())!r}", file, lineno)
        check_coordinate(v, f"coordinate {i + 1}", file, lineno)
        values.append(int(v) if v.is_integer() else v)
    points = [[values[2 * k], values[2 * k + 1]] for k in range(4)]
    return GTBox(points, text)


def parse_gt_text(text: str, file: str, with_transcription: bool = True,
                  errors: Optional[List[DataError]] = None) -> List[GTBox]:
    """All boxes of a file's text; blank lines are skipped.

    With ``errors=None`` the first bad line raises; otherwise bad lines are
    appended to ``errors`` and skipped.
    """
    boxes = []
    for lineno, line in enumerate(text.split("\n"), start=1):
        if not line.strip("\r\n\ufeff \t"):
            continue
        try:
            boxes.append(parse_gt_line(line, file, lineno, with_transcription))
        except DataError as exc:
            if errors is None:
                raise
            errors.append(exc)
    return boxes


def parse_gt_bytes(raw: bytes, file: str, with_transcription: bool = True,
                   errors: Optional[List[DataError]] = None) -> List[GTBox]:
    """Boxes of a GT file given as bytes (e.g. a zip member); ``file`` names it in errors.

    Lines are decoded one by one, so a line that is not UTF-8 is reported (or, with
    ``errors``, skipped) on its own without losing the rest of the file.
    """
    if errors is None:
        return parse_gt_text(decode_text(raw, file), file, with_transcription)
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    boxes = []
    for lineno, line in enumerate(raw.split(b"\n"), start=1):
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as exc:
            errors.append(DataError(f"not valid UTF-8 ({exc.reason} at byte {exc.start} of the line)", file, lineno))
            continue
        if not text.strip("\r\n\ufeff \t"):
            continue
        try:
            boxes.append(parse_gt_line(text, file, lineno, with_transcription))
        except DataError as exc:
            errors.append(exc)
    return boxes


def read_gt_file(path: str, with_transcription: bool = True,
                 errors: Optional[List[DataError]] = None) -> List[GTBox]:
    with open(path, "rb") as f:
        raw = f.read()
    return parse_gt_bytes(raw, path, with_transcription, errors)


def image_id(filename: str) -> Optional[int]:
    """``gt_img_12.txt`` / ``res_img_12.txt`` / ``img_12.txt`` -> 12 (``None`` if not of that form)."""
    m = _IMG_ID.search(filename.replace("\\", "/").rsplit("/", 1)[-1])
    return int(m.group(1)) if m else None
