"""Hostile submission zips through the real scorer (``tools/eval_icdar2015.py``): every damaged, unusual or
oversized entry is the scorer's one-line error (exit 1, the zip and entry named), quickly and in bounded
memory, and a bad line is quoted by a short prefix only."""
from __future__ import annotations

import struct
import sys
import time
import zipfile

import pytest

from dbnetpp.metrics import rrc_io

GOOD_LINE = "10,10,60,10,60,40,10,40"


def _zip(path, entries, method=zipfile.ZIP_DEFLATED):
    with zipfile.ZipFile(path, "w", compression=method) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return path


def _gt(tmp_path):
    return _zip(tmp_path / "gt.zip", {"gt_img_1.txt": "10,10,60,10,60,40,10,40,word\r\n"})


def _patch_headers(path, offset_in_local, offset_in_central, fmt, value):
    """Set a field of the only entry's local and central-directory headers (``fmt`` struct format)."""
    data = bytearray(path.read_bytes())
    local = data.index(b"PK\x03\x04")
    central = data.index(b"PK\x01\x02")
    struct.pack_into(fmt, data, local + offset_in_local, value)
    struct.pack_into(fmt, data, central + offset_in_central, value)
    path.write_bytes(bytes(data))
    return path


def _bad_crc(tmp_path):
    path = _zip(tmp_path / "det.zip", {"res_img_1.txt": GOOD_LINE + "\n"}, method=zipfile.ZIP_STORED)
    data = bytearray(path.read_bytes())
    at = data.index(GOOD_LINE.encode())
    data[at] = ord("9")  # same length, other bytes: the stored CRC no longer matches
    path.write_bytes(bytes(data))
    return path


def _unknown_method(tmp_path):
    path = _zip(tmp_path / "det.zip", {"res_img_1.txt": GOOD_LINE + "\n"}, method=zipfile.ZIP_STORED)
    return _patch_headers(path, 8, 10, "<H", 99)  # compression method 99 (AES, unsupported)


def _encrypted(tmp_path):
    path = _zip(tmp_path / "det.zip", {"res_img_1.txt": GOOD_LINE + "\n"}, method=zipfile.ZIP_STORED)
    return _patch_headers(path, 6, 8, "<H", 1)  # general-purpose flag bit 0: encrypted


def _long_number(tmp_path):
    return _zip(tmp_path / "det.zip", {f"res_img_{'7' * 5000}.txt": GOOD_LINE + "\n"})


def _one_huge_line(tmp_path):
    return _zip(tmp_path / "det.zip", {"res_img_1.txt": "1" * 100_000_000})  # ~97 KB compressed


def _many_lines(tmp_path):
    return _zip(tmp_path / "det.zip", {"res_img_1.txt": (GOOD_LINE + "\n") * 3_000_000})  # ~230 KB compressed


def _lines_over_count(tmp_path):
    return _zip(tmp_path / "det.zip", {"res_img_1.txt": "\n" * (rrc_io.MAX_LINES_PER_ENTRY + 1)})


def _long_bad_line(tmp_path):
    return _zip(tmp_path / "det.zip", {"res_img_1.txt": "x" * 1_000_000 + "\n"})


CASES = {
    "bad_crc": (_bad_crc, "archive is damaged: Bad CRC-32"),
    "unknown_compression": (_unknown_method, "compression method"),
    "encrypted": (_encrypted, "encrypted"),
    "image_number_5000_digits": (_long_number, "an image number of 5000 digits"),
    "one_100MB_line": (_one_huge_line, "more than 8 MB"),
    "three_million_lines": (_many_lines, "more than 8 MB"),
    "lines_over_limit": (_lines_over_count, f"more than {rrc_io.MAX_LINES_PER_ENTRY} lines"),
    "long_bad_line": (_long_bad_line, "(1000000 characters)"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_hostile_zip_is_a_clear_error(rel, tmp_path, case):
    make, needle = CASES[case]
    det = make(tmp_path)
    start = time.monotonic()
    r = rel.run([sys.executable, "tools/eval_icdar2015.py", "--gt", str(_gt(tmp_path)), "--det", str(det)],
                timeout=120)
    seconds = time.monotonic() - start
    assert r.returncode == 1, (r.stdout[-1000:], r.stderr[-2000:])
    assert "Traceback" not in r.stderr and r.stderr.startswith("eval_icdar2015: error: "), r.stderr[-2000:]
    assert needle in r.stderr and str(det) in r.stderr, r.stderr[-2000:]
    assert len(r.stderr) < 1000, f"{len(r.stderr)} characters of error message"
    assert seconds < 60, f"{seconds:.0f} s"


def test_entries_beyond_the_total_bound_are_refused(tmp_path, monkeypatch):
    """Many entries just under the per-entry bound: refused once the total passes MAX_TOTAL_BYTES (bounds
    lowered here so the test stays small)."""
    monkeypatch.setattr(rrc_io, "MAX_ENTRY_BYTES", 1000)
    monkeypatch.setattr(rrc_io, "MAX_TOTAL_BYTES", 5000)
    det = _zip(tmp_path / "det.zip", {f"res_img_{k}.txt": (GOOD_LINE + "\n") * 35 for k in range(1, 11)})
    with pytest.raises(rrc_io.DataError, match="MB in all"):
        rrc_io.read_detections(str(det), [str(k) for k in range(1, 11)])


def test_a_good_zip_still_scores(rel, tmp_path):
    det = _zip(tmp_path / "det.zip", {"res_img_1.txt": GOOD_LINE + "\n"})
    r = rel.run([sys.executable, "tools/eval_icdar2015.py", "--gt", str(_gt(tmp_path)), "--det", str(det)])
    assert r.returncode == 0, r.stderr[-2000:]
    assert rel.last_json(r.stdout)["hmean"] == 1.0
