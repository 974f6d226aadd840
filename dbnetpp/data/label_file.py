"""PaddleOCR label files: one sample per line, ``image_path<delimiter>label``.

For detection the label is a JSON list of ``{"transcription": str, "points": [[x, y], ...]}``;
this module only splits lines and checks the image path, the JSON is read by the
``DetLabelEncode`` transform.  Rules (each violation is a
:class:`~dbnetpp.errors.DataError` naming ``file:line``):

* a UTF-8 BOM at the start of the file and CRLF line ends are accepted;
* blank lines are ignored (they are not samples);
* a line that is not UTF-8, has no delimiter, an empty image path or an empty label
  is an error;
* the image path is relative to ``data_dir`` (an absolute path must lie inside it);
  a path that leaves ``data_dir`` (``..``) is an error.

Only the first delimiter splits, so a label may contain the delimiter itself.
"""
from __future__ import annotations

import json
import os
from typing import List, NamedTuple, Tuple, Union

from ..errors import DataError, cwd_hint

BOM = b"\xef\xbb\xbf"


class LabelLine(NamedTuple):
    """One parsed sample line."""

    file: str  # label file it came from
    line: int  # 1-based line number in that file
    image_path: str  # as written in the label file
    path: str  # image_path joined to data_dir and normalised
    label: str  # everything after the first delimiter


def split_lines(raw: bytes) -> List[Tuple[int, bytes]]:
    """``(line number, line bytes without line end)`` of every non-blank line; drops a BOM."""
    if raw.startswith(BOM):
        raw = raw[len(BOM):]
    out = []
    for lineno, line in enumerate(raw.split(b"\n"), start=1):
        line = line.rstrip(b"\r")
        if line.strip():
            out.append((lineno, line))
    return out


def read_raw_lines(path: str) -> List[Tuple[int, bytes]]:
    """Non-blank lines of a label file, undecoded (see :func:`split_lines`)."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise DataError(f"label file not found{cwd_hint(path)}", path) from None
    except IsADirectoryError:
        raise DataError("label file is a directory, expected a text file", path) from None
    except OSError as exc:
        raise DataError(f"cannot read label file: {exc.strerror}", path) from None
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")) or b"\x00" in raw[:4096]:
        raise DataError("the file is UTF-16 (or UTF-32) encoded; label files are UTF-8: save it as UTF-8 "
                        "(e.g. iconv -f UTF-16 -t UTF-8 IN > OUT)", path)
    return split_lines(raw)


class DuplicateKeyError(ValueError):
    """A JSON object of a label names one key twice (``json.loads`` would silently keep the last)."""


def _unique_keys(pairs):
    out = {}
    for key, value in pairs:
        if key in out:
            raise DuplicateKeyError(f"key {key!r} appears twice in one JSON object (only one would be kept)")
        out[key] = value
    return out


def _int_or_float(text: str):
    return int(text) if len(text) <= 18 else float(text)  # a 400-digit coordinate: inf, refused as such


def loads_label_json(text: str):
    """``json.loads`` for labels: a key given twice in one object is :class:`DuplicateKeyError`, integers too long
    for an int64 become floats (infinity beyond float range, which the coordinate checks name)."""
    return json.loads(text, object_pairs_hook=_unique_keys, parse_int=_int_or_float)


def resolve_image_path(image_path: str, data_dir: str, file: str, line: int) -> str:
    """``data_dir/image_path`` normalised; raises if it points outside ``data_dir``."""
    if "\x00" in image_path:
        raise DataError(f"image path {image_path!r} contains a NUL character", file, line)
    if image_path.startswith(("http://", "https://")):
        raise DataError(f"image path {image_path!r} is a URL; only local files are supported", file, line)
    base = os.path.abspath(data_dir)
    full = os.path.normpath(os.path.join(base, image_path))
    if os.path.commonpath([base, full]) != base:
        raise DataError(f"image path {image_path!r} points outside data_dir {data_dir!r}", file, line)
    return full


def parse_label_line(raw: Union[bytes, str], file: str, line: int, data_dir: str,
                     delimiter: str = "\t") -> LabelLine:
    """Parse one line (bytes or text, with or without its line end)."""
    if isinstance(raw, bytes):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DataError(f"not valid UTF-8 ({exc.reason} at byte {exc.start} of the line)", file, line) from None
    else:
        text = raw
    text = text.rstrip("\r\n")
    if line == 1:
        text = text.lstrip("\ufeff")
    if not delimiter:
        raise DataError("the delimiter is empty", file, line)
    if delimiter not in text:
        raise DataError(f"no delimiter {delimiter!r} in line {text[:80]!r} (expected image_path{delimiter!r}label; "
                        f"set dataset.delimiter if the file uses another one)", file, line)
    image_path, label = text.split(delimiter, 1)
    if not image_path.strip():
        raise DataError("empty image path", file, line)
    if not label.strip():
        raise DataError(f"empty label for image {image_path!r}", file, line)
    path = resolve_image_path(image_path, data_dir, file, line)
    return LabelLine(file, line, image_path, path, label)


def read_label_file(path: str, data_dir: str, delimiter: str = "\t") -> List[LabelLine]:
    """Every sample of a label file; the first bad line raises."""
    return [parse_label_line(raw, path, lineno, data_dir, delimiter) for lineno, raw in read_raw_lines(path)]
