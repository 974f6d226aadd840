"""PaddleOCR label files: BOM, CRLF, blank lines, bad lines named by file:line, paths kept inside data_dir."""
import os

import pytest

from dbnetpp.data.label_file import parse_label_line, read_label_file, read_raw_lines, resolve_image_path
from dbnetpp.errors import DataError


def test_bom_crlf_blank_lines_and_delimiter_inside_label(tmp_path):
    label = tmp_path / "label.txt"
    label.write_bytes(b"\xef\xbb\xbfimgs/a.jpg\t[{\"transcription\": \"x\ty\"}]\r\n"
                      b"\r\n"
                      b"imgs/b.jpg\t[]\r\n"
                      b"   \n"
                      + "imgs/\u00e9.jpg\t[{\"transcription\": \"\u00e9t\u00e9\"}]".encode())
    lines = read_label_file(str(label), str(tmp_path))
    assert [(x.line, x.image_path) for x in lines] == [(1, "imgs/a.jpg"), (3, "imgs/b.jpg"), (5, "imgs/\u00e9.jpg")]
    assert lines[0].label == '[{"transcription": "x\ty"}]'  # only the first delimiter splits
    assert lines[1].label == "[]"  # no trailing \r
    assert lines[0].path == os.path.join(str(tmp_path), "imgs", "a.jpg")
    assert lines[0].file == str(label)


def test_non_utf8_line_is_named_by_file_and_line(tmp_path):
    label = tmp_path / "label.txt"
    label.write_bytes(b"a.jpg\t[]\nb.jpg\t[{\"transcription\": \"\xff\xfe\"}]\nc.jpg\t[]\n")
    assert [n for n, _ in read_raw_lines(str(label))] == [1, 2, 3]
    with pytest.raises(DataError, match=r"label\.txt:2: not valid UTF-8") as info:
        read_label_file(str(label), str(tmp_path))
    assert info.value.file == str(label) and info.value.line == 2


@pytest.mark.parametrize("line, message", [
    ("a.jpg [] no tab", r"no delimiter '\\t'"),
    ("\t[]", "empty image path"),
    ("a.jpg\t  ", "empty label for image 'a.jpg'"),
    ("../outside.jpg\t[]", "points outside data_dir"),
    ("imgs/../../outside.jpg\t[]", "points outside data_dir"),
    ("/etc/passwd\t[]", "points outside data_dir"),
    ("https://example.com/a.jpg\t[]", "is a URL"),
])
def test_bad_lines(tmp_path, line, message):
    with pytest.raises(DataError, match=message) as info:
        parse_label_line(line, "lbl.txt", 7, str(tmp_path))
    assert str(info.value).startswith("lbl.txt:7: ")


def test_paths_inside_data_dir_are_accepted(tmp_path):
    inside = os.path.join(str(tmp_path), "imgs", "a.jpg")
    assert resolve_image_path(inside, str(tmp_path), "f", 1) == inside  # absolute, inside
    assert resolve_image_path("imgs/x/../a.jpg", str(tmp_path), "f", 1) == inside
    assert resolve_image_path("./imgs/a.jpg", str(tmp_path) + "/", "f", 1) == inside


def test_other_delimiter_and_missing_label_file(tmp_path):
    assert parse_label_line("a b.jpg|[]", "f", 1, str(tmp_path), delimiter="|").image_path == "a b.jpg"
    with pytest.raises(DataError, match="label file not found"):
        read_raw_lines(str(tmp_path / "nope.txt"))
