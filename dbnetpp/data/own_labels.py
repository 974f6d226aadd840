"""Turn your own labelled images into PaddleOCR detection label lines.

Three kinds of labels are understood; :func:`convert` finds out which one a folder holds:

``ppocrlabel``
    A folder labelled with PPOCRLabel (PaddleOCR's labelling tool, github.com/PFCCLab/PPOCRLabel,
    formerly PaddleOCR/PPOCRLabel).  It writes two files into the image folder: ``Label.txt``, one
    line ``<folder name>/<image file>\\t<JSON list>`` per image whose entries are
    ``{"transcription", "points" (pixels), "difficult"}`` (plus ``key_cls`` in KIE mode), and
    ``fileState.txt``, one line ``<image>\\t1`` per image you confirmed with "Check".  Before
    September 2024 PPOCRLabel wrote the image's absolute path there (backslashes and a drive letter
    on Windows), since then ``<folder name>/<image file>``; both are matched by file name, so a
    folder that was moved, renamed or labelled on another machine still works.  Only confirmed
    images are used: the others are skipped ("not checked in PPOCRLabel").  A box marked
    ``"difficult": true`` becomes ``"###"``, i.e. it is ignored in training and evaluation (older
    PPOCRLabel versions let you set the flag; recent ones always write ``false``, so mark unreadable
    text with the transcription ``###`` instead).
    PPOCRLabel writes no ``Label.txt`` line for a confirmed image without boxes, so such images
    are kept as negatives (images without text).

``labelstudio``
    A Label Studio (github.com/HumanSignal/label-studio) "JSON" export: a list of tasks
    ``{"id", "data": {"image": url}, "annotations": [{"result": [...], "was_cancelled"}]}``.
    Only human ``annotations`` are used, never ``predictions``; cancelled annotations are ignored
    and a task with several annotations uses the first one.  Regions are ``polygonlabels`` /
    ``polygon`` (``value.points`` in percent of the image) and ``rectanglelabels`` /
    ``rectangle`` (``value.x``, ``value.y`` = top-left corner in percent, ``value.width``,
    ``value.height`` in percent, ``value.rotation`` in degrees clockwise about that corner).  A
    region's transcription is the text of the ``textarea`` result with the same ``id`` (the OCR
    template's per-region TextArea), else its label; a text or label ``###`` or a label named
    ``ignore`` (any case) makes it an ignored ``"###"`` box.  The image is looked up in the folder
    by the ``?d=`` path of local-files URLs, by file name, by file name without Label Studio's
    upload prefix (``1a2b3c4d-photo.jpg`` -> ``photo.jpg``), and finally anywhere below the folder.

``det``
    A PaddleOCR detection label file (``<image path>\\t<JSON list>`` per line) with image paths
    relative to the folder (absolute paths must lie inside it).

The result's :attr:`Converted.lines` are det label lines with the ABSOLUTE path of each image in
your folder; images are only read, never copied or changed.  Percent coordinates are converted
with the size of the decoded image, and every point is clipped to the image and rounded to whole
pixels.  Problems with single images or boxes (a missing image, a broken polygon, an unsupported
Label Studio tool) skip just that item and are listed in :attr:`Converted.skipped`; problems that
make the whole conversion untrustworthy (no label file, a path leading out of the folder, an image
that does not decode, a malformed line) raise :class:`~dbnetpp.errors.DataError` naming the file
and the line or task.

Example::

    result = convert("my_photos")          # format detected from the files in the folder
    print(result.report())
    with open("train_label.txt", "w", encoding="utf-8") as f:
        f.write("\\n".join(result.lines) + "\\n")
"""
from __future__ import annotations

import json
import math
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, NoReturn, Optional, Sequence, Tuple
from urllib.parse import parse_qs, unquote, urlsplit

from ..errors import DataError, cwd_hint
from .label_file import DuplicateKeyError, loads_label_json

FORMATS = ("det", "ppocrlabel", "labelstudio")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
IGNORE_TEXT = "###"
PPOCR_LABEL = "Label.txt"
PPOCR_STATE = "fileState.txt"
LS_POLYGON_TYPES = ("polygonlabels", "polygon")
LS_RECTANGLE_TYPES = ("rectanglelabels", "rectangle")
LS_ATTRIBUTE_TYPES = ("textarea", "labels")
UPLOAD_PREFIX = re.compile(r"^[0-9a-f]{8}-(.+)$", re.IGNORECASE)
"""Label Studio stores an uploaded ``photo.jpg`` as ``<first 8 characters of a uuid4>-photo.jpg``."""
REPORT_EXAMPLES = 5
LOOKED_FOR = ("Label.txt + fileState.txt (PPOCRLabel), one *.json Label Studio JSON export (a list of tasks), "
              "one *.txt PaddleOCR det label file (<image path><TAB><JSON list> per line)")

Points = List[Tuple[float, float]]
Size = Tuple[int, int]  # (width, height)


@dataclass
class Converted:
    """Result of one conversion: the det label lines and what was kept, skipped or changed."""

    source_format: str  # "det", "ppocrlabel" or "labelstudio"
    source: str  # the file the labels came from
    lines: List[str]  # det label lines, one per kept image (images without boxes are kept as negatives)
    images: int  # kept images
    boxes: int  # kept boxes, including ### ones
    skipped: List[Tuple[str, str]]  # (where, why) for every skipped image or box
    ignored: int = 0  # kept boxes whose transcription is ### (ignored in training and evaluation)
    clipped: int = 0  # kept boxes that reached outside their image and were clipped to it
    notes: List[str] = field(default_factory=list)  # other things worth knowing, one sentence each

    def report(self) -> str:
        """A few lines for a human: format, source, kept and skipped counts (by reason), notes."""
        out = [f"{self.source_format} labels from {self.source}",
               f"  kept: {self.images} image(s), {self.boxes} box(es) ({self.ignored} marked {IGNORE_TEXT}, "
               f"ignored in training)"]
        if self.clipped:
            out.append(f"  clipped: {self.clipped} box(es) reached outside their image and were clipped to it")
        out.append(f"  skipped: {len(self.skipped)}")
        out += [f"    {n} x {reason}" for reason, n in _group_reasons(self.skipped)]
        if self.skipped:
            out.append(f"  first skipped (of {len(self.skipped)}):")
            out += [f"    {where}: {why}" for where, why in self.skipped[:REPORT_EXAMPLES]]
        out += [f"  note: {note}" for note in self.notes]
        return "\n".join(out)


def _group_reasons(skipped: Sequence[Tuple[str, str]]) -> List[Tuple[str, int]]:
    """``(reason, count)``, most frequent first; a reason is the text before ``": "``."""
    return Counter(why.split(": ", 1)[0] for _, why in skipped).most_common()


def _skip_summary(skipped: Sequence[Tuple[str, str]]) -> str:
    if not skipped:
        return "the labels name no image"
    groups = ", ".join(f"{reason}: {n}" for reason, n in _group_reasons(skipped))
    first = "; ".join(f"{where}: {why}" for where, why in skipped[:3])
    return f"{len(skipped)} skipped ({groups}); first: {first}"


# --------------------------------------------------------------------------- folders and files

def _check_dir(data_dir: str) -> None:
    if not os.path.exists(data_dir):
        raise DataError(f"the image folder does not exist{cwd_hint(data_dir)}", file=data_dir)
    if not os.path.isdir(data_dir):
        raise DataError("is not a folder: pass the folder that holds your images", file=data_dir)


def _is_image_name(name: str) -> bool:
    return name.lower().endswith(IMAGE_EXTENSIONS)


def _has_images(data_dir: str) -> bool:
    return any(_is_image_name(n) for _, _, names in os.walk(data_dir) for n in names)


def _top_level_files(data_dir: str, suffix: str) -> List[str]:
    names = sorted(n for n in os.listdir(data_dir) if n.lower().endswith(suffix))
    return [os.path.join(data_dir, n) for n in names if os.path.isfile(os.path.join(data_dir, n))]


def _read_bytes(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        raise DataError(f"label file not found{cwd_hint(path)}", file=path) from None
    except OSError as exc:
        raise DataError(f"cannot read the label file: {exc.strerror}", file=path) from None


def _read_lines(path: str) -> List[Tuple[int, str]]:
    """``(line number, text)`` of every non-blank line; a UTF-8 BOM and CRLF line ends are fine."""
    raw = _read_bytes(path)
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    out = []
    for lineno, line in enumerate(raw.split(b"\n"), start=1):
        line = line.rstrip(b"\r")
        if not line.strip():
            continue
        try:
            out.append((lineno, line.decode("utf-8")))
        except UnicodeDecodeError as exc:
            raise DataError(f"not valid UTF-8 ({exc.reason} at byte {exc.start})", file=path, line=lineno) from None
    return out


def _first_line(path: str) -> str:
    try:
        lines = _read_lines(path)
    except DataError:
        return ""
    return lines[0][1] if lines else ""


def _looks_like_det(path: str) -> bool:
    """True when the first line is ``<path>\\t[...`` (not a rec label, fileState or README file)."""
    head, tab, rest = _first_line(path).partition("\t")
    return bool(head.strip() and tab and rest.lstrip().startswith("["))


def _load_json(path: str) -> Any:
    try:
        text = _read_bytes(path).decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(f"not valid UTF-8 ({exc.reason} at byte {exc.start})", file=path) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"not valid JSON ({exc.msg}, column {exc.colno})", file=path, line=exc.lineno) from None


def _is_labelstudio_export(path: str) -> bool:
    try:
        data = _load_json(path)
    except DataError:
        return False
    return isinstance(data, list) and bool(data) and all(isinstance(t, dict) and "data" in t for t in data)


# --------------------------------------------------------------------------- format detection

def detect_format(data_dir: str, labels: Optional[str] = None) -> Tuple[str, str]:
    """``(format, label file)`` for the folder ``data_dir``.

    With ``labels`` (a path, relative to the current directory or to ``data_dir``) the format is
    read from that file.  Without it the folder is searched, in this order: ``Label.txt`` next to
    ``fileState.txt`` (PPOCRLabel); one ``*.json`` that is a Label Studio JSON export; one ``*.txt``
    PaddleOCR det label file.  Raises :class:`DataError` when nothing (or too much) is found.
    """
    _check_dir(data_dir)
    if labels is not None:
        path = _labels_path(labels, data_dir)
        return _format_of_file(path, data_dir), path
    label_txt, state_txt = os.path.join(data_dir, PPOCR_LABEL), os.path.join(data_dir, PPOCR_STATE)
    if os.path.isfile(label_txt) and os.path.isfile(state_txt):
        return "ppocrlabel", label_txt
    exports = _single(_labelstudio_candidates(data_dir), "Label Studio JSON exports", data_dir)
    if exports:
        return "labelstudio", exports
    det = _single(_det_candidates(data_dir), "det label files (*.txt)", data_dir)
    if det:
        return "det", det
    raise _nothing_found(data_dir)


def _labelstudio_candidates(data_dir: str) -> List[str]:
    return [p for p in _top_level_files(data_dir, ".json") if _is_labelstudio_export(p)]


def _det_candidates(data_dir: str) -> List[str]:
    return [p for p in _top_level_files(data_dir, ".txt") if _looks_like_det(p)]


def _single(candidates: List[str], what: str, data_dir: str) -> Optional[str]:
    if len(candidates) > 1:
        names = ", ".join(os.path.basename(p) for p in candidates)
        raise DataError(f"found several {what} ({names}); pass labels=<file> to choose one", file=data_dir)
    return candidates[0] if candidates else None


def _nothing_found(data_dir: str) -> DataError:
    if not _has_images(data_dir):
        exts = ", ".join(e[1:] for e in IMAGE_EXTENSIONS)
        return DataError(f"the folder holds no images ({exts}) and no label file; looked for {LOOKED_FOR}",
                         file=data_dir)
    return DataError(f"no label file found; looked for {LOOKED_FOR}; pass labels=<file> if yours has another "
                     f"name", file=data_dir)


def _labels_path(labels: str, data_dir: str) -> str:
    for path in (labels, os.path.join(data_dir, labels)):
        if os.path.isfile(path):
            return os.path.abspath(path)
    raise DataError(f"label file not found (looked at {os.path.abspath(labels)} and "
                    f"{os.path.abspath(os.path.join(data_dir, labels))})", file=labels)


def _format_of_file(path: str, data_dir: str) -> str:
    folder = os.path.dirname(os.path.realpath(path))
    if (os.path.basename(path) == PPOCR_LABEL and folder == os.path.realpath(data_dir)
            and os.path.isfile(os.path.join(folder, PPOCR_STATE))):
        return "ppocrlabel"
    if path.lower().endswith(".json") or _is_labelstudio_export(path):
        return "labelstudio"
    return "det"


def convert(data_dir: str, fmt: str = "auto", labels: Optional[str] = None) -> Converted:
    """Convert the labels of the image folder ``data_dir`` (see the module docstring).

    ``fmt`` is ``"auto"`` (detect, see :func:`detect_format`), ``"det"``, ``"ppocrlabel"`` or
    ``"labelstudio"``; ``labels`` names the label file (not used by ``"ppocrlabel"``, which always
    reads ``Label.txt`` and ``fileState.txt`` in ``data_dir``).
    """
    if fmt not in ("auto",) + FORMATS:
        raise DataError(f"unknown label format {fmt!r}; valid formats: auto, {', '.join(FORMATS)}")
    if fmt == "auto":
        fmt, path = detect_format(data_dir, labels)
    else:
        path = _label_file_for(fmt, data_dir, labels)
    if fmt == "ppocrlabel":
        return read_ppocrlabel(data_dir)
    if fmt == "labelstudio":
        return read_labelstudio(path, data_dir)
    return read_det(path, data_dir)


def _label_file_for(fmt: str, data_dir: str, labels: Optional[str]) -> str:
    _check_dir(data_dir)
    if fmt == "ppocrlabel":
        expected = os.path.join(data_dir, PPOCR_LABEL)
        if labels is not None and os.path.realpath(_labels_path(labels, data_dir)) != os.path.realpath(expected):
            raise DataError(f"PPOCRLabel labels are always read from {PPOCR_LABEL} and {PPOCR_STATE} in the "
                            f"image folder; leave labels unset", file=labels)
        return expected
    if labels is not None:
        return _labels_path(labels, data_dir)
    found = _single(_labelstudio_candidates(data_dir) if fmt == "labelstudio" else _det_candidates(data_dir),
                    f"{fmt} label files", data_dir)
    if found is None:
        raise _nothing_found(data_dir)
    return found


# --------------------------------------------------------------------------- polygons

def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _to_float(value: Any) -> float:
    try:
        return float(value)
    except OverflowError:  # an integer too large for a float
        return math.inf


def _area(points: Points) -> float:
    """Absolute shoelace area."""
    total = 0.0
    for (x0, y0), (x1, y1) in zip(points, points[1:] + points[:1]):
        total += x0 * y1 - x1 * y0
    return abs(total) / 2.0


def _parse_points(raw: Any) -> Tuple[Optional[Points], str]:
    """``(points, "")`` for a list of ``[x, y]`` numbers, else ``(None, why)``."""
    if not isinstance(raw, (list, tuple)) or not all(isinstance(p, (list, tuple)) and len(p) == 2 for p in raw):
        return None, "points are not a list of [x, y] pairs"
    if not all(_is_number(v) for p in raw for v in p):
        return None, "non-numeric coordinates"
    points = [(_to_float(x), _to_float(y)) for x, y in raw]
    if not all(math.isfinite(v) for p in points for v in p):
        return None, "non-finite coordinates"
    return _check_shape(points, "")


def _check_shape(points: Points, when: str) -> Tuple[Optional[Points], str]:
    distinct = len(set(points))
    if distinct < 3:
        return None, f"fewer than 3 distinct points ({distinct}){when}"
    if not _area(points) > 0:
        return None, f"zero area{when}"
    return points, ""


def _clip(points: Points, size: Size) -> Tuple[List[List[int]], bool]:
    """Points clipped to ``[0, w-1] x [0, h-1]`` and rounded; True when one lay outside the image
    (beyond ``[0, w] x [0, h]``: a point on the far border, e.g. 100 %, is not counted)."""
    w, h = size
    outside = any(x < 0 or y < 0 or x > w or y > h for x, y in points)
    clipped = [[_round(min(max(x, 0.0), w - 1.0)), _round(min(max(y, 0.0), h - 1.0))] for x, y in points]
    return clipped, outside


def _round(value: float) -> int:
    return int(math.floor(value + 0.5))


# --------------------------------------------------------------------------- collecting the result

class _Collector:
    """Accumulates one conversion: checks paths, decodes images, validates boxes, counts."""

    def __init__(self, fmt: str, source: str, data_dir: str):
        _check_dir(data_dir)
        self.source = source
        self.data_dir = os.path.abspath(data_dir)
        self.real_dir = os.path.realpath(data_dir)
        self.result = Converted(fmt, source, [], 0, 0, [])
        self._sizes: Dict[str, Size] = {}
        self._used: Dict[str, str] = {}
        self.clipped = 0
        self.marks: Dict[str, List[str]] = {}  # remark -> the entries it applies to, for the notes

    def skip(self, where: str, why: str) -> None:
        self.result.skipped.append((where, why))

    def fail(self, message: str, line: Optional[int] = None, entry: str = "",
             file: Optional[str] = None) -> NoReturn:
        raise DataError(f"{entry}: {message}" if entry else message, file=file or self.source, line=line)

    def inside(self, image_path: str, line: Optional[int] = None, entry: str = "",
               file: Optional[str] = None) -> str:
        """Absolute path of ``image_path`` (relative to the folder, or absolute); an error when it,
        after ``..`` and symlinks, lies outside the folder."""
        if "\x00" in image_path:
            self.fail(f"image path {image_path!r} contains a NUL character", line, entry, file)
        full = os.path.normpath(os.path.join(self.data_dir, image_path))
        real = os.path.realpath(full)
        if not _is_within(real, self.real_dir):
            self.fail(f"image path {image_path!r} resolves to {real}, outside the image folder {self.real_dir}; "
                      f"labels may only name images inside the folder", line, entry, file)
        return full

    def size(self, path: str, line: Optional[int] = None, entry: str = "", file: Optional[str] = None) -> Size:
        """``(width, height)`` of the decoded image; an error when it does not decode."""
        if path not in self._sizes:
            shape = _decoded_shape(path)
            if shape is None:
                self.fail(f"image {path} cannot be decoded (not an image, or a damaged file)", line, entry, file)
            self._sizes[path] = (shape[1], shape[0])
        return self._sizes[path]

    def claim(self, path: str, where: str) -> bool:
        """False (and a skip) when an earlier line or task already labelled this image."""
        if path in self._used:
            self.skip(where, f"duplicate image: {path} was already labelled at {self._used[path]}")
            return False
        if any(c in path for c in "\t\r\n"):
            self.skip(where, f"bad image path: {path!r} contains a tab or line break, which a label line cannot hold")
            return False
        self._used[path] = where
        return True

    def box(self, raw_points: Any, text: str, size: Size, where: str) -> Optional[Dict[str, Any]]:
        """A det entry for pixel points, or None (and a skip) for a bad polygon."""
        points, why = _parse_points(raw_points)
        if points is None:
            self.skip(where, f"bad polygon: {why}")
            return None
        return self.box_from(points, text, size, where)

    def box_from(self, points: Points, text: str, size: Size, where: str) -> Optional[Dict[str, Any]]:
        pixels, outside = _clip(points, size)
        when = f" after clipping to the {size[0]}x{size[1]} image and rounding to whole pixels"
        ok, why = _check_shape([(float(x), float(y)) for x, y in pixels], when)
        if ok is None:
            self.skip(where, f"bad polygon: {why}")
            return None
        self.clipped += outside
        return {"transcription": text, "points": pixels}

    def add(self, path: str, entries: List[Dict[str, Any]]) -> None:
        self.result.lines.append(f"{os.path.abspath(path)}\t{json.dumps(entries, ensure_ascii=False)}")
        self.result.images += 1
        self.result.boxes += len(entries)
        self.result.ignored += sum(e["transcription"] == IGNORE_TEXT for e in entries)

    def finish(self, hint: str = "") -> Converted:
        self.result.clipped = self.clipped
        if self.result.images == 0:
            raise DataError(f"no image kept: {_skip_summary(self.result.skipped)}{hint}", file=self.source)
        return self.result


def _is_within(path: str, folder: str) -> bool:
    try:
        return os.path.commonpath([folder, path]) == folder
    except ValueError:  # another drive (Windows)
        return False


def _decoded_shape(path: str) -> Optional[Tuple[int, ...]]:
    import cv2  # deferred: only needed when converting
    import numpy as np

    try:
        image = cv2.imdecode(np.fromfile(path, np.uint8), cv2.IMREAD_COLOR)
    except (OSError, cv2.error):
        return None
    return None if image is None else image.shape


# --------------------------------------------------------------------------- det and Label.txt lines

def _split_label_line(text: str, file: str, line: int) -> Tuple[str, List[Dict[str, Any]]]:
    """``(image path, boxes)`` of ``<image path>\\t<JSON list of objects with points>``."""
    if "\t" not in text:
        raise DataError(f"expected '<image path><TAB><JSON list>', the line has no tab: {text[:80]!r}", file, line)
    image_path, label = text.split("\t", 1)
    if not image_path.strip():
        raise DataError("empty image path before the tab", file, line)
    try:
        boxes = loads_label_json(label)
    except json.JSONDecodeError as exc:
        raise DataError(f"the label is not valid JSON ({exc.msg} at character {exc.pos}): {label[:80]!r}",
                        file, line) from None
    except DuplicateKeyError as exc:
        raise DataError(str(exc), file, line) from None
    if not isinstance(boxes, list):
        raise DataError(f"the label must be a JSON list of {{\"transcription\", \"points\"}} objects, got "
                        f"{type(boxes).__name__}", file, line)
    for i, box in enumerate(boxes, start=1):
        if not isinstance(box, dict) or "points" not in box:
            raise DataError(f"box {i} of image {image_path!r} is not an object with 'points': {str(box)[:80]}",
                            file, line)
    return image_path, boxes


def _transcription(box: Dict[str, Any]) -> str:
    text = box.get("transcription", "")
    return "" if text is None else str(text)


def _add_boxes(col: _Collector, path: str, boxes: List[Dict[str, Any]], where: str, size: Size,
               difficult_is_ignore: bool = False) -> None:
    entries = []
    for i, box in enumerate(boxes, start=1):
        text = _transcription(box)
        if difficult_is_ignore and box.get("difficult") is True:
            text = IGNORE_TEXT
        entry = col.box(box["points"], text, size, f"{where}, box {i}")
        if entry is not None:
            entries.append(entry)
    col.add(path, entries)


def read_det(label_file: str, data_dir: str) -> Converted:
    """Check and convert a PaddleOCR det label file whose image paths are relative to ``data_dir``."""
    col = _Collector("det", label_file, data_dir)
    for lineno, text in _read_lines(label_file):
        image_path, boxes = _split_label_line(text, label_file, lineno)
        where = f"{label_file}:{lineno}"
        path = col.inside(image_path, lineno)
        if not os.path.isfile(path) and "\\" in image_path:  # written on Windows
            path = col.inside(image_path.replace("\\", "/"), lineno)
        if not os.path.isfile(path):
            col.skip(where, f"missing image: {path}")
            continue
        if col.claim(path, where):
            _add_boxes(col, path, boxes, where, col.size(path, lineno))
    hint = ""
    if os.path.basename(label_file) == PPOCR_LABEL:
        hint = f" (a PPOCRLabel {PPOCR_LABEL} needs its {PPOCR_STATE} next to it: use fmt='ppocrlabel')"
    return col.finish(hint)


# --------------------------------------------------------------------------- PPOCRLabel

def _last_component(path: str) -> str:
    """File name of a path written with ``/`` or ``\\`` (Windows), whatever this system uses."""
    return re.split(r"[\\/]", path.strip())[-1]


def _read_file_state(state_txt: str) -> Dict[str, int]:
    """File name -> line number of every image confirmed (state 1) in ``fileState.txt``."""
    checked: Dict[str, int] = {}
    for lineno, text in _read_lines(state_txt):
        if "\t" not in text:
            raise DataError(f"expected '<image path><TAB>1', the line has no tab: {text[:80]!r}", state_txt, lineno)
        image_path, state = text.rsplit("\t", 1)
        if state.strip() == "1":
            checked.setdefault(_last_component(image_path), lineno)
    if not checked:
        raise DataError(f"no image was checked (confirmed) in PPOCRLabel: {PPOCR_STATE} lists no image with "
                        f"state 1; confirm images with 'Check' in PPOCRLabel and export the labels "
                        f"(File > Export Label) first", file=state_txt)
    return checked


def _ppocr_image(col: _Collector, key: str, file: str, line: int) -> str:
    """Image of a ``Label.txt`` key ``<folder name>/<file>``: the file in the folder being converted
    (the folder may have been renamed).  A key with ``..`` is resolved as PPOCRLabel does, from the
    folder's parent, and must still land inside the folder."""
    if ".." in re.split(r"[\\/]", key):
        parent = os.path.dirname(col.data_dir)
        return col.inside(os.path.join(parent, key.replace("\\", "/")), line, file=file)
    return col.inside(_last_component(key), line, file=file)


def read_ppocrlabel(data_dir: str) -> Converted:
    """Convert the confirmed images of a PPOCRLabel folder (``Label.txt`` + ``fileState.txt``)."""
    _check_dir(data_dir)
    label_txt, state_txt = os.path.join(data_dir, PPOCR_LABEL), os.path.join(data_dir, PPOCR_STATE)
    for path in (label_txt, state_txt):
        if not os.path.isfile(path):
            raise DataError(f"not found; PPOCRLabel writes {PPOCR_LABEL} and {PPOCR_STATE} into the image folder "
                            f"when you export the labels (File > Export Label)", file=path)
    checked = _read_file_state(state_txt)
    col = _Collector("ppocrlabel", label_txt, data_dir)
    listed = set()
    for lineno, text in _read_lines(label_txt):
        key, boxes = _split_label_line(text, label_txt, lineno)
        path = _ppocr_image(col, key, label_txt, lineno)
        listed.add(os.path.basename(path))
        _ppocr_line(col, path, boxes, checked, f"{label_txt}:{lineno}", lineno)
    _ppocr_negatives(col, checked, listed, state_txt)
    return col.finish()


def _ppocr_line(col: _Collector, path: str, boxes: List[Dict[str, Any]], checked: Dict[str, int],
                where: str, line: int) -> None:
    if os.path.basename(path) not in checked:
        col.skip(where, f"not checked in PPOCRLabel: {os.path.basename(path)}")
    elif not os.path.isfile(path):
        col.skip(where, f"missing image: {path}")
    elif col.claim(path, where):
        _add_boxes(col, path, boxes, where, col.size(path, line), difficult_is_ignore=True)


def _ppocr_negatives(col: _Collector, checked: Dict[str, int], listed: Iterable[str], state_txt: str) -> None:
    """Confirmed images without a ``Label.txt`` line: PPOCRLabel omits images without boxes."""
    kept = 0
    for name, lineno in sorted(checked.items(), key=lambda item: item[1]):
        if name in listed:
            continue
        where = f"{state_txt}:{lineno}"
        path = col.inside(name, lineno, file=state_txt)
        if not os.path.isfile(path):
            col.skip(where, f"missing image: {path}")
        elif col.claim(path, where):
            col.size(path, lineno, file=state_txt)
            col.add(path, [])
            kept += 1
    if kept:
        col.result.notes.append(f"{kept} confirmed image(s) have no line in {PPOCR_LABEL} and were kept as "
                                f"negatives (PPOCRLabel writes no line for an image without boxes)")


# --------------------------------------------------------------------------- Label Studio

def read_labelstudio(json_file: str, data_dir: str) -> Converted:
    """Convert a Label Studio JSON export whose images are in ``data_dir`` (or below it)."""
    col = _Collector("labelstudio", json_file, data_dir)
    tasks = _load_tasks(json_file)
    finder = _ImageFinder(col)
    for index, task in enumerate(tasks, start=1):
        _ls_task(col, finder, task, index)
    _ls_notes(col)
    return col.finish()


def _load_tasks(json_file: str) -> List[Dict[str, Any]]:
    tasks = _load_json(json_file)
    if not isinstance(tasks, list):
        raise DataError(f"a Label Studio JSON export is a list of tasks, this file holds a "
                        f"{type(tasks).__name__}", file=json_file)
    for index, task in enumerate(tasks, start=1):
        if not isinstance(task, dict) or "data" not in task:
            hint = " (export as 'JSON', not 'JSON-MIN')" if isinstance(task, dict) else ""
            raise DataError(f"task {index} is not a Label Studio task with 'data'{hint}", file=json_file)
    return tasks


def _ls_image_url(data: Any) -> Optional[str]:
    """The task's image: ``data["image"]``, else its only value that looks like an image."""
    if not isinstance(data, dict):
        return None
    if isinstance(data.get("image"), str) and data["image"].strip():
        return data["image"].strip()
    found = [v for v in data.values() if isinstance(v, str) and _looks_like_image_url(v)]
    return found[0] if len(found) == 1 else None


def _looks_like_image_url(value: str) -> bool:
    path = urlsplit(value).path if "://" in value else value.split("?", 1)[0]
    return "/data/local-files/" in value or _is_image_name(path)


def _ls_candidates(url: str) -> Tuple[Optional[str], List[str]]:
    """``(path relative to the folder or None, file names to look for)`` for a task's image URL."""
    if re.match(r"^[A-Za-z]:[\\/]", url):  # a Windows path: only its file name means something here
        explicit, name = None, _last_component(url)
    else:
        parts = urlsplit(url)
        local = parse_qs(parts.query).get("d")
        if local:
            explicit, name = local[0], _last_component(local[0])
        elif parts.scheme or parts.netloc or url.startswith("/data/"):
            explicit, name = None, _last_component(unquote(parts.path))
        else:  # a plain path written by hand
            explicit, name = url, _last_component(url)
    names = [name]
    match = UPLOAD_PREFIX.match(name)
    if match:
        names.append(match.group(1))
    return explicit, [n for n in names if n]


class _ImageFinder:
    """Finds a Label Studio task's image in the folder (see the module docstring)."""

    def __init__(self, col: _Collector):
        self.col = col
        self._index: Optional[Dict[str, List[str]]] = None

    def index(self) -> Dict[str, List[str]]:
        if self._index is None:
            self._index = {}
            for root, _, names in os.walk(self.col.data_dir):
                for name in names:
                    self._index.setdefault(name, []).append(os.path.join(root, name))
        return self._index

    def find(self, url: str, entry: str) -> Tuple[Optional[str], str]:
        """``(absolute path, "")`` or ``(None, why)``; an error for a path that leaves the folder."""
        explicit, names = _ls_candidates(url)
        if explicit is not None:
            path = self.col.inside(explicit, entry=entry)
            if os.path.isfile(path):
                return path, ""
        for name in names:
            path = self.col.inside(name, entry=entry)
            if os.path.isfile(path):
                return path, ""
        for name in names:
            hits = sorted(self.index().get(name, []))
            if len(hits) == 1:
                return self.col.inside(hits[0], entry=entry), ""
            if len(hits) > 1:
                shown = ", ".join(os.path.relpath(h, self.col.data_dir) for h in hits[:3])
                return None, f"ambiguous image name: {name} matches {len(hits)} files ({shown})"
        return None, f"missing image: {url} (looked for {' or '.join(names)} in {self.col.data_dir})"


def _ls_annotation(task: Dict[str, Any]) -> Tuple[Optional[Dict[str, Any]], str]:
    """The first annotation that was not cancelled, or ``(None, why)``."""
    annotations = task.get("annotations")
    if annotations is None:
        annotations = task.get("completions")  # Label Studio before 1.0
    if not isinstance(annotations, list) or not annotations:
        extra = " (predictions are not used)" if task.get("predictions") else ""
        return None, f"no annotation: the task has none{extra}"
    usable = [a for a in annotations if isinstance(a, dict) and not a.get("was_cancelled") and not a.get("skipped")]
    if not usable:
        return None, f"no annotation: all {len(annotations)} annotation(s) were cancelled"
    return usable[0], ("several" if len(usable) > 1 else "")


def _ls_task(col: _Collector, finder: _ImageFinder, task: Dict[str, Any], index: int) -> None:
    entry = f"task {task.get('id', '#' + str(index))}"
    where = f"{col.source}: {entry}"
    url = _ls_image_url(task.get("data"))
    if url is None:
        keys = ", ".join(map(str, task["data"])) if isinstance(task["data"], dict) else type(task["data"]).__name__
        col.skip(where, f"missing image: no image URL in the task data ({keys})")
        return
    path, why = finder.find(url, entry)
    annotation, remark = _ls_annotation(task)
    if annotation is None:
        col.skip(where, remark)
        return
    if path is None:
        col.skip(where, why)
        return
    if not col.claim(path, where):
        return
    if remark == "several":
        col.marks.setdefault("several", []).append(entry)
    size = col.size(path, entry=entry)
    results = annotation.get("result")
    entries, mismatch = _ls_regions(col, results if isinstance(results, list) else [], size, where)
    if mismatch:
        col.marks.setdefault("size", []).append(entry)
    col.add(path, entries)


def _ls_notes(col: _Collector) -> None:
    texts = {"several": "task(s) have several annotations; the first one was used",
             "size": "image(s) differ in size from original_width/height in the export; percent coordinates "
                     "were converted with the image's own size"}
    for key, text in texts.items():
        entries = col.marks.get(key, [])
        if entries:
            more = ", ..." if len(entries) > REPORT_EXAMPLES else ""
            col.result.notes.append(f"{len(entries)} {text} ({', '.join(entries[:REPORT_EXAMPLES])}{more})")


def _ls_regions(col: _Collector, results: List[Any], size: Size, where: str
                ) -> Tuple[List[Dict[str, Any]], bool]:
    """Det entries of one annotation's ``result`` list, and whether a region's original_width/height
    differ from the image's size."""
    texts, labels, shapes = _ls_group(col, results, where)
    entries, mismatch = [], False
    for k, item in shapes:
        rid = item.get("id", f"#{k}")
        mismatch |= _size_differs(item, size)
        text = _ls_text(texts.get(rid, []), _ls_label_names(item) + labels.get(rid, []))
        entry = _ls_shape(col, item, text, size, f"{where}, result {k}")
        if entry is not None:
            entries.append(entry)
    return entries, mismatch


def _ls_group(col: _Collector, results: List[Any], where: str
              ) -> Tuple[Dict[Any, List[str]], Dict[Any, List[str]], List[Tuple[int, Dict[str, Any]]]]:
    """Split results into region shapes and the textarea / labels results linked to them by id."""
    texts: Dict[Any, List[str]] = {}
    labels: Dict[Any, List[str]] = {}
    shapes: List[Tuple[int, Dict[str, Any]]] = []
    attributes: List[Tuple[int, Dict[str, Any]]] = []
    for k, item in enumerate(results, start=1):
        kind = item.get("type") if isinstance(item, dict) else None
        if kind in LS_POLYGON_TYPES + LS_RECTANGLE_TYPES:
            shapes.append((k, item))
        elif kind in LS_ATTRIBUTE_TYPES:
            attributes.append((k, item))
            value = item.get("value") if isinstance(item.get("value"), dict) else {}
            target, key = (texts, "text") if kind == "textarea" else (labels, "labels")
            target.setdefault(item.get("id"), []).extend(_strings(value.get(key)))
        else:
            col.skip(f"{where}, result {k}", f"unknown label type {kind}")
    shape_ids = {item.get("id", f"#{k}") for k, item in shapes}
    for k, item in attributes:
        if item.get("id") not in shape_ids:
            col.skip(f"{where}, result {k}", f"{item['type']} not linked to a polygon or rectangle (no region with "
                                             f"id {item.get('id')!r})")
    return texts, labels, shapes


def _strings(value: Any) -> List[str]:
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value if v is not None] if isinstance(value, list) else []


def _ls_label_names(item: Dict[str, Any]) -> List[str]:
    value = item.get("value") if isinstance(item.get("value"), dict) else {}
    return _strings(value.get(item["type"])) if item["type"].endswith("labels") else []


def _ls_text(texts: List[str], labels: List[str]) -> str:
    """Transcription of a region: its textarea text, else its label; ``###`` for ignored ones."""
    if any(t.strip() == IGNORE_TEXT for t in texts) or any(
            lb.strip() == IGNORE_TEXT or lb.strip().lower() == "ignore" for lb in labels):
        return IGNORE_TEXT
    text = next((t for t in texts if t.strip()), "")
    return text or (labels[0] if labels else "")


def _size_differs(item: Dict[str, Any], size: Size) -> bool:
    ow, oh = item.get("original_width"), item.get("original_height")
    return _is_number(ow) and _is_number(oh) and (ow, oh) != size


def _ls_shape(col: _Collector, item: Dict[str, Any], text: str, size: Size, where: str) -> Optional[Dict[str, Any]]:
    value = item.get("value") if isinstance(item.get("value"), dict) else {}
    if item["type"] in LS_POLYGON_TYPES:
        points, why = _parse_points(value.get("points"))
        if points is not None:
            points, why = _check_shape(_percent_to_pixels(points, size), "")
    else:
        points, why = _ls_rectangle(value, size)
    if points is None:
        col.skip(where, f"bad polygon: {why}")
        return None
    return col.box_from(points, text, size, where)


def _percent_to_pixels(points: Points, size: Size) -> Points:
    w, h = size
    return [(x * w / 100.0, y * h / 100.0) for x, y in points]


def _ls_rectangle(value: Dict[str, Any], size: Size) -> Tuple[Optional[Points], str]:
    """Corners (pixels) of a rectangle given in percent and rotated clockwise about its top-left."""
    keys = ("x", "y", "width", "height")
    if not all(k in value for k in keys):
        return None, "a rectangle needs x, y, width and height"
    raw = [value[k] for k in keys] + [value.get("rotation", 0) or 0]
    if not all(_is_number(v) for v in raw):
        return None, "non-numeric coordinates"
    x, y, w, h, rotation = (_to_float(v) for v in raw)
    if not all(math.isfinite(v) for v in (x, y, w, h, rotation)):
        return None, "non-finite coordinates"
    corners = _rotated_rectangle(x * size[0] / 100.0, y * size[1] / 100.0, w * size[0] / 100.0,
                                 h * size[1] / 100.0, rotation)
    return _check_shape(corners, "")


def _rotated_rectangle(x: float, y: float, w: float, h: float, degrees: float) -> Points:
    """Top-left, top-right, bottom-right, bottom-left of a ``w`` x ``h`` rectangle whose top-left
    corner is ``(x, y)``, turned by ``degrees`` clockwise on screen (y points down) about that corner."""
    c, s = math.cos(math.radians(degrees)), math.sin(math.radians(degrees))
    return [(x, y), (x + w * c, y + w * s), (x + w * c - h * s, y + w * s + h * c), (x - h * s, y + h * c)]
