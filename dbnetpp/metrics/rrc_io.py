"""Reading and validating ICDAR2015 task 4.1 ground truth and submissions.

Accepted sources (for GT and for detections alike):

* the RRC zip format: ``gt_img_N.txt`` / ``res_img_N.txt`` entries of a zip archive;
* a folder holding such files;
* a PaddleOCR label file, one ``image_path<TAB>json`` line per image, where ``json`` is a list
  of ``{"transcription": str, "points": [[x, y], ...]}`` (GT) or ``{"points": ..., "score": s}``
  (detections; ``score`` optional), e.g. the ``predicts`` file of PaddleOCR's ``infer_det``.

Images are keyed by the number in ``gt_img_N`` / ``res_img_N`` / ``img_N.jpg`` (the RRC tool's
sample id), or by the file stem for other names.

With ``protocol="official"`` submissions are validated as the RRC tool does, with its messages:
a detection line must be exactly ``x1,y1,x2,y2,x3,y3,x4,y4`` with integer values, the corners
must be clockwise in image coordinates, and every submitted sample must exist in the GT.  The
RRC task 4.1 script passes no image size, so corners outside the image are not an error there
and are not here either.  With ``protocol="paddleocr"`` coordinates may be floats, an optional
ninth value is a confidence, and orientation is not checked (invalid polygons are skipped by
the evaluation instead).  Every problem raises :class:`~dbnetpp.errors.DataError` naming the
file and line.
"""
from __future__ import annotations

import json
import math
import os
import re
import zipfile
import zlib
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import numpy as np

from ..data.icdar_gt import check_coordinate, decode_text, parse_gt_text
from ..data.label_file import DuplicateKeyError, loads_label_json
from ..errors import DataError, quote
from .icdar_eval import check_protocol
from .samples import dont_care_text

# Entry names, matched whole (``res_img_4.txt~`` or ``res_img_4.txt.bak`` is not a result file).
GT_NAME = re.compile(r"gt_img_([0-9]+)\.txt")
DET_NAME = re.compile(r"res_img_([0-9]+)\.txt")
_INT = r"\s*(-?[0-9]+)\s*"
_OFFICIAL_DET_LINE = re.compile(r"^" + ",".join([_INT] * 8) + r"$")
_QUOTED = re.compile(r'^\s*"(.*)"\s*$')
_IMAGE_KEY = re.compile(r"(?:gt_|res_)?img_([0-9]+)(?:\.[A-Za-z0-9]+)?")

# Bounds of what a submission or GT file may hold (ICDAR2015 test: 500 files of at most a few KB): a small zip
# can decompress to gigabytes, or to millions of lines that take minutes to parse.
MAX_ENTRY_BYTES = 8 << 20
MAX_TOTAL_BYTES = 256 << 20
MAX_LINES_PER_ENTRY = 100_000
MAX_IMAGE_NUMBER_DIGITS = 9

MSG_FORMAT = "Format incorrect. Should be: x1,y1,x2,y2,x3,y3,x4,y4"
MSG_CLOCKWISE = ("Points are not clockwise. The coordinates of bounding quadrilaterals have to be given in "
                 "clockwise order. Regarding the correct interpretation of 'clockwise' remember that the image "
                 "coordinate system used is the standard one, with the image origin at the upper left, the X axis "
                 "extending to the right and Y axis extending downwards.")


@dataclass
class ImageBoxes:
    """Boxes of one image read from a source: polygons ``[P, 2]`` float64, plus GT texts / scores."""

    source: str
    polys: List[np.ndarray] = field(default_factory=list)
    texts: List[Optional[str]] = field(default_factory=list)
    scores: List[Optional[float]] = field(default_factory=list)
    lines: List[int] = field(default_factory=list)

    def dont_care(self, protocol: str) -> List[bool]:
        return [dont_care_text(t, protocol) for t in self.texts]


def image_key(name: str) -> str:
    """``img_12.jpg`` / ``gt_img_12.txt`` / ``dir/res_img_12.txt`` -> ``"12"``; other names -> stem."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    m = _IMAGE_KEY.fullmatch(base)
    if m:
        return m.group(1)
    return os.path.splitext(base)[0]


def clockwise_error(points: np.ndarray) -> bool:
    """RRC check on int-truncated corners: sum of (x2-x1)(y2+y1) over edges must be <= 0."""
    p = np.trunc(np.asarray(points, np.float64).reshape(-1, 2)).astype(np.int64)
    q = np.roll(p, -1, axis=0)
    return int(np.sum((q[:, 0] - p[:, 0]) * (q[:, 1] + p[:, 1]))) > 0


def _line_error(key: str, line: str, error: str, file: str, lineno: int) -> DataError:
    return DataError(f"Line in sample not valid. Sample: {key} Line: {quote(line)} Error: {error}", file, lineno)


# --------------------------------------------------------------------------- containers
def _expected(pattern: re.Pattern) -> str:
    return "gt_img_<N>.txt" if pattern is GT_NAME else "res_img_<N>.txt"


def _list_entries(path: str, pattern: re.Pattern) -> List[Tuple[str, str, bytes]]:
    """(key, display name, raw bytes) of the entries of a zip archive or a folder.

    Every file must be named exactly ``gt_img_<N>.txt`` / ``res_img_<N>.txt`` (RRC: "ZIP entry not
    valid"), and no two entries may name the same image (``res_img_4.txt`` and ``res_img_04.txt``, or a
    name repeated inside a zip): a stray file could otherwise replace a real one without a word.
    Folder entries of a zip (names ending in ``/``) are ignored.
    """
    entries = []
    seen: Dict[int, str] = {}
    total = [0]

    def add(name: str, display: str, read, kind: str):
        m = pattern.fullmatch(name)
        if m is None:  # the RRC tool's wording for zips
            raise DataError(f"{kind} entry not valid: {quote(name)} (every file must be named "
                            f"{_expected(pattern)})", path)
        if len(m.group(1)) > MAX_IMAGE_NUMBER_DIGITS:
            raise DataError(f"{kind} entry not valid: {quote(name)} (an image number of {len(m.group(1))} digits; "
                            f"at most {MAX_IMAGE_NUMBER_DIGITS})", path)
        number = int(m.group(1))
        if number in seen:
            raise DataError(f"entries {seen[number]!r} and {name!r} are both for image {number}", path)
        seen[number] = name
        raw = read()
        if len(raw) > MAX_ENTRY_BYTES:
            raise DataError(f"more than {MAX_ENTRY_BYTES >> 20} MB (not a detection or GT file of one image)", display)
        total[0] += len(raw)
        if total[0] > MAX_TOTAL_BYTES:
            raise DataError(f"the entries hold more than {MAX_TOTAL_BYTES >> 20} MB in all (ICDAR2015's test set: "
                            f"about 1 MB)", path)
        if raw.count(b"\n") >= MAX_LINES_PER_ENTRY:
            raise DataError(f"more than {MAX_LINES_PER_ENTRY} lines (boxes) for one image", display)
        entries.append((m.group(1), display, raw))

    if zipfile.is_zipfile(path):
        try:
            archive = zipfile.ZipFile(path, mode="r", allowZip64=True)
        except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError) as exc:
            raise DataError(f"Error loading the ZIP archive. ({exc})", path) from None
        with archive:
            for name in archive.namelist():
                if name.endswith("/"):
                    continue
                add(name, f"{path}/{name}", lambda n=name: _read_zip_entry(archive, n, path), "ZIP")
        return entries
    for name in sorted(os.listdir(path)):
        full = os.path.join(path, name)
        if os.path.isdir(full):
            raise DataError(f"entry not valid: {quote(name)!r} is a folder (every entry must be a file named "
                            f"{_expected(pattern)})", path)

        def read(f=full):
            with open(f, "rb") as fh:
                return fh.read(MAX_ENTRY_BYTES + 1)
        add(name, full, read, "folder")
    return entries


def _read_zip_entry(archive: zipfile.ZipFile, name: str, path: str) -> bytes:
    """At most ``MAX_ENTRY_BYTES + 1`` decompressed bytes of one entry; every way a damaged or unusual zip
    entry fails (bad CRC, unknown compression, encryption, truncated data) is a :class:`DataError`."""
    try:
        with archive.open(name) as fh:
            raw = fh.read(MAX_ENTRY_BYTES + 1)
            if len(raw) <= MAX_ENTRY_BYTES:
                fh.read(1)  # the CRC is checked when the entry's end is read
            return raw
    except RuntimeError as exc:  # encrypted entries: "File ... is encrypted, password required"
        raise DataError(f"cannot read this ZIP entry: {exc} (submit an unencrypted zip)", f"{path}/{name}") from None
    except NotImplementedError as exc:
        raise DataError(f"cannot read this ZIP entry: {exc} (use the deflate or store methods)",
                        f"{path}/{name}") from None
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, zlib.error) as exc:
        raise DataError(f"cannot read this ZIP entry, the archive is damaged: {exc}", f"{path}/{name}") from None


def _gt_named(path: str) -> bool:
    """True when a zip/folder holds ``gt_img_N.txt`` entries and no ``res_img_N.txt`` ones."""
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    else:
        names = os.listdir(path)
    return any(GT_NAME.fullmatch(n) for n in names) and not any(DET_NAME.fullmatch(n) for n in names)


def _is_container(path: str) -> bool:
    if not os.path.exists(path):
        raise DataError("no such file or folder", path)
    return os.path.isdir(path) or zipfile.is_zipfile(path)


def _label_lines(path: str):
    """Yield (lineno, image key, parsed json list) of a PaddleOCR label file."""
    with open(path, "rb") as f:
        text = decode_text(f.read(), path)
    seen: Dict[str, int] = {}
    for lineno, line in enumerate(text.split("\n"), start=1):
        line = line.rstrip("\r")
        if not line.strip():
            continue
        if "\t" not in line:
            raise DataError("expected 'image_path<TAB>json' (no tab found)", path, lineno)
        img, payload = line.split("\t", 1)
        key = image_key(img.strip())
        if key in seen:
            raise DataError(f"image {img.strip()!r} (sample {key}) already listed on line {seen[key]}", path, lineno)
        seen[key] = lineno
        try:
            boxes = loads_label_json(payload)
        except json.JSONDecodeError as exc:
            raise DataError(f"invalid JSON ({exc.msg} at column {exc.colno + len(img) + 1})", path, lineno) from None
        except DuplicateKeyError as exc:
            raise DataError(str(exc), path, lineno) from None
        if not isinstance(boxes, list):
            raise DataError("the JSON part must be a list of boxes", path, lineno)
        yield lineno, key, boxes


def _json_points(box, file: str, lineno: int, k: int) -> np.ndarray:
    if not isinstance(box, dict) or "points" not in box:
        raise DataError(f"box {k} has no 'points'", file, lineno)
    try:
        pts = np.asarray(box["points"], dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError(f"box {k}: 'points' must be a list of [x, y] numbers", file, lineno) from None
    if pts.ndim != 2 or pts.shape[1] != 2 or len(pts) < 3:
        raise DataError(f"box {k}: 'points' must be a list of at least 3 [x, y] pairs, got shape "
                        f"{list(pts.shape)}", file, lineno)
    if not np.isfinite(pts).all():
        raise DataError(f"box {k}: 'points' has a non-finite value", file, lineno)
    check_coordinate(float(pts.flat[np.abs(pts).argmax()]), f"box {k}: a coordinate", file, lineno)
    return pts


# --------------------------------------------------------------------------- ground truth
def read_ground_truth(path: str, protocol: str = "official") -> Dict[str, ImageBoxes]:
    """GT boxes per sample key from a zip, folder or PaddleOCR label file."""
    check_protocol(protocol)
    out: Dict[str, ImageBoxes] = {}
    if _is_container(path):
        for key, name, raw in _list_entries(path, GT_NAME):
            rec = ImageBoxes(source=name)
            text = decode_text(raw, name)
            for lineno, box in _gt_boxes(text, name):
                pts = np.asarray(box.points, np.float64)
                transcription = box.transcription
                if protocol == "official":
                    m = _QUOTED.match(transcription or "")
                    if m:
                        transcription = m.group(1).replace("\\\\", "\\").replace('\\"', '"')
                    if clockwise_error(pts):
                        raise _line_error(key, _raw_line(text, lineno), MSG_CLOCKWISE, name, lineno)
                rec.polys.append(pts)
                rec.texts.append(transcription)
                rec.scores.append(None)
                rec.lines.append(lineno)
            out[key] = rec
        return out
    for lineno, key, boxes in _label_lines(path):
        rec = ImageBoxes(source=f"{path}:{lineno}")
        for k, box in enumerate(boxes):
            pts = _json_points(box, path, lineno, k)
            text = box.get("transcription", "")
            if not isinstance(text, str):
                raise DataError(f"box {k}: 'transcription' must be a string", path, lineno)
            rec.polys.append(pts)
            rec.texts.append(text)
            rec.scores.append(None)
            rec.lines.append(lineno)
        out[key] = rec
    return out


def _gt_boxes(text: str, name: str):
    """(line number, GTBox) pairs of a GT file's text (parsed by :mod:`dbnetpp.data.icdar_gt`)."""
    numbered = []
    for lineno, line in enumerate(text.split("\n"), start=1):
        if line.strip("\r\n\ufeff \t"):
            numbered.append(lineno)
    boxes = parse_gt_text(text, name)
    return list(zip(numbered, boxes))


def _raw_line(text: str, lineno: int) -> str:
    return text.split("\n")[lineno - 1].replace("\r", "")


# --------------------------------------------------------------------------- detections
def _parse_det_line(line: str, key: str, file: str, lineno: int, protocol: str):
    """One ``res_img_N.txt`` line -> (points [4, 2], score or None)."""
    if protocol == "official":
        m = _OFFICIAL_DET_LINE.match(line)
        if m is None:
            raise _line_error(key, line, MSG_FORMAT, file, lineno)
        pts = np.array([float(v) for v in m.groups()], np.float64).reshape(4, 2)
        if clockwise_error(pts):
            raise _line_error(key, line, MSG_CLOCKWISE, file, lineno)
        return pts, None
    parts = [p.strip() for p in line.split(",")]
    if len(parts) not in (8, 9):
        raise DataError(f"expected 8 coordinates and an optional confidence, got {len(parts)} "
                        f"comma-separated value(s): {quote(line)!r}", file, lineno)
    values = []
    for i, p in enumerate(parts):
        try:
            v = float(p)
        except ValueError:
            raise DataError(f"value {i + 1} is not a number: {quote(p)!r}", file, lineno) from None
        if not math.isfinite(v):
            raise DataError(f"value {i + 1} is not finite: {quote(p)!r}", file, lineno)
        if i < 8:
            check_coordinate(v, f"value {i + 1}", file, lineno)
        values.append(v)
    score = values[8] if len(values) == 9 else None
    return np.array(values[:8], np.float64).reshape(4, 2), score


def read_detections(path: str, gt_keys, protocol: str = "official") -> Dict[str, ImageBoxes]:
    """Detections per sample key; a sample unknown to the GT is an error (RRC validation)."""
    check_protocol(protocol)
    gt_keys = set(gt_keys)
    out: Dict[str, ImageBoxes] = {}
    if _is_container(path) and _gt_named(path):
        # ground truth submitted as detections (``gt_img_N.txt`` with transcriptions): its
        # boxes, don't-care ones included, are the detections
        out = read_ground_truth(path, protocol)
        for key, rec in out.items():
            if key not in gt_keys:
                raise DataError(f"The sample {key} not present in GT", rec.source)
            rec.texts = [None] * len(rec.polys)
        return out
    if _is_container(path):
        for key, name, raw in _list_entries(path, DET_NAME):
            if key not in gt_keys:
                raise DataError(f"The sample {key} not present in GT", name)
            try:
                text = raw.decode("utf-8-sig")
            except UnicodeDecodeError:
                raise DataError(f"The file {key} is not UTF-8", name) from None
            rec = ImageBoxes(source=name)
            for lineno, line in enumerate(text.split("\n"), start=1):
                line = line.replace("\r", "")
                if line == "":
                    continue
                pts, score = _parse_det_line(line, key, name, lineno, protocol)
                rec.polys.append(pts)
                rec.texts.append(None)
                rec.scores.append(score)
                rec.lines.append(lineno)
            out[key] = rec
        return out
    for lineno, key, boxes in _label_lines(path):
        if key not in gt_keys:
            raise DataError(f"The sample {key} not present in GT", path, lineno)
        rec = ImageBoxes(source=f"{path}:{lineno}")
        for k, box in enumerate(boxes):
            pts = _json_points(box, path, lineno, k)
            if protocol == "official":
                flat = ",".join(str(v) for v in pts.reshape(-1).tolist())
                if len(pts) != 4:
                    raise _line_error(key, f"box {k}: {flat}", MSG_FORMAT, path, lineno)
                pts = np.trunc(pts)
                if clockwise_error(pts):
                    raise _line_error(key, f"box {k}: {flat}", MSG_CLOCKWISE, path, lineno)
            score = box.get("score")
            if score is not None and not isinstance(score, (int, float)):
                raise DataError(f"box {k}: 'score' must be a number", path, lineno)
            rec.polys.append(pts)
            rec.texts.append(None)
            rec.scores.append(None if score is None else float(score))
            rec.lines.append(lineno)
        out[key] = rec
    return out
