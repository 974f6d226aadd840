"""ICDAR2015 GT lines: BOM, CRLF, commas in transcriptions, ###, and bad lines collected instead of raised."""
import pytest

from dbnetpp.data.icdar_gt import image_id, parse_gt_bytes, parse_gt_text, read_gt_file
from dbnetpp.errors import DataError


def test_bom_crlf_commas_and_dont_care(tmp_path):
    gt = tmp_path / "gt_img_3.txt"
    gt.write_bytes(b"\xef\xbb\xbf377,117,463,117,465,130,378,130,Genaxis Theatre\r\n"
                   b"1,2,3,4,5,6,7,8,###\r\n"
                   b"\r\n"
                   b"10,20,30,20,30,40,10,40,a,b,,c\r\n")
    boxes = read_gt_file(str(gt))
    assert [b.transcription for b in boxes] == ["Genaxis Theatre", "###", "a,b,,c"]
    assert boxes[0].points == [[377, 117], [463, 117], [465, 130], [378, 130]]
    assert [b.ignore for b in boxes] == [False, True, False]
    assert image_id(str(gt)) == 3


def test_bad_line_raises_with_file_and_line():
    with pytest.raises(DataError, match=r"gt_img_1\.txt:2: coordinate 3 is not a number"):
        parse_gt_text("1,2,3,4,5,6,7,8,ok\n1,2,x,4,5,6,7,8,bad\n", "gt_img_1.txt")
    with pytest.raises(DataError, match=r"gt_img_1\.txt:1: expected 8 coordinates and a transcription"):
        parse_gt_text("1,2,3,4,5,6,7,8\n", "gt_img_1.txt")
    with pytest.raises(DataError, match=r"gt\.txt:2: not valid UTF-8"):
        parse_gt_bytes(b"1,2,3,4,5,6,7,8,a\n1,2,3,4,5,6,7,8,\xff\n", "gt.txt")


def test_errors_list_skips_bad_lines_and_keeps_the_rest():
    raw = (b"\xef\xbb\xbf1,2,3,4,5,6,7,8,a\r\n"
           b"1,2,3,4,5,6,7,nan,b\r\n"
           b"1,2,3,4,5,6,7,8,\xff\r\n"
           b"1,2,3,4\r\n"
           b"1,2,3,4,5,6,7,8,###\r\n")
    errors = []
    boxes = parse_gt_bytes(raw, "gt_img_9.txt", errors=errors)
    assert [b.transcription for b in boxes] == ["a", "###"]
    assert [(e.file, e.line) for e in errors] == [("gt_img_9.txt", 2), ("gt_img_9.txt", 3), ("gt_img_9.txt", 4)]
    assert "not finite" in str(errors[0]) and "UTF-8" in str(errors[1])
