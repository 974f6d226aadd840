"""Own labels -> PaddleOCR det lines: det files, PPOCRLabel folders and Label Studio exports, end to end on
real (tiny) images; every fatal error names the file and the line or task.

The module is loaded from its file so that ``dbnetpp.data``'s ``__init__`` (which imports paddle) is not run:
these tests stay pure Python and fast.
"""
import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from dbnetpp.errors import DataError
from testutil import load_module

ROOT = Path(__file__).resolve().parents[2]
own = load_module("dbnetpp.data.own_labels", ROOT / "dbnetpp" / "data" / "own_labels.py")

W, H = 200, 100  # every test image is 200 x 100 pixels


def make_image(path: Path, w: int = W, h: int = H) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), np.full((h, w, 3), 127, np.uint8))
    return path


def parse(line: str):
    path, label = line.split("\t", 1)
    return path, json.loads(label)


def reasons(result):
    return [why.split(": ", 1)[0] for _, why in result.skipped]


def box(points, text="t", **extra):
    return dict(transcription=text, points=points, **extra)


def det_line(path: str, boxes) -> str:
    return f"{path}\t{json.dumps(boxes)}"


# --------------------------------------------------------------------------- det

def test_det_end_to_end(tmp_path):
    data = tmp_path / "data"
    a = make_image(data / "imgs" / "a.jpg")
    b = make_image(data / "imgs" / "b.png")
    boxes = [box([[10, 10], [50, 10], [50, 40], [10, 40]], "hi"),
             box([[60, 10], [90, 10], [90, 30]], "###"),
             box([[1, 1], [2, 2]]),                                    # 2 points
             box([[0, 0], ["a", 1], [3, 3]]),                          # non-numeric
             box([[0, 0], [10, 0], [20, 0]]),                          # zero area
             box([[-5.4, -5], [300, -5], [300, 50.6], [-5, 50]], "big"),  # clipped to the image
             box([[0, 0], [10, 0], [float("nan"), 5]]),                # non-finite
             box([[100, 10], [120, 10], [130, 20], [120, 30], [100, 30]], "five")]
    (data / "label.txt").write_text("\n".join([det_line("imgs/a.jpg", boxes), det_line("imgs/b.png", []),
                                               det_line("imgs/missing.jpg", boxes[:1])]) + "\n")
    result = own.convert(str(data))
    label = str(data / "label.txt")
    assert (result.source_format, result.source) == ("det", label)
    assert (result.images, result.boxes, result.ignored, result.clipped) == (2, 4, 1, 1)
    (path_a, entries), (path_b, negatives) = map(parse, result.lines)
    assert path_a == str(a) and os.path.isabs(path_a) and path_b == str(b) and negatives == []
    assert entries == [box([[10, 10], [50, 10], [50, 40], [10, 40]], "hi"),
                       box([[60, 10], [90, 10], [90, 30]], "###"),
                       box([[0, 0], [199, 0], [199, 51], [0, 50]], "big"),
                       box([[100, 10], [120, 10], [130, 20], [120, 30], [100, 30]], "five")]  # 5 points kept
    assert result.skipped == [
        (f"{label}:1, box 3", "bad polygon: fewer than 3 distinct points (2)"),
        (f"{label}:1, box 4", "bad polygon: non-numeric coordinates"),
        (f"{label}:1, box 5", "bad polygon: zero area"),
        (f"{label}:1, box 7", "bad polygon: non-finite coordinates"),
        (f"{label}:3", f"missing image: {data / 'imgs' / 'missing.jpg'}")]


def test_report_mentions_kept_skipped_and_clipped(tmp_path):
    make_image(tmp_path / "a.jpg")
    (tmp_path / "gt.txt").write_text(det_line("a.jpg", [box([[0, 0], [10, 0], [10, 10]]),
                                                        box([[0, 0], [1, 1]]),
                                                        box([[0, 0], [500, 0], [0, 8]], "###")]) + "\n"
                                     + det_line("gone.jpg", []) + "\n")
    report = own.convert(str(tmp_path), fmt="det").report()
    assert report.splitlines()[0] == f"det labels from {tmp_path / 'gt.txt'}"
    assert "kept: 1 image(s), 2 box(es) (1 marked ###" in report
    assert "clipped: 1 box(es)" in report
    assert "skipped: 2" in report and "1 x bad polygon" in report and "1 x missing image" in report
    assert f"{tmp_path / 'gt.txt'}:1, box 2: bad polygon" in report


@pytest.mark.parametrize("line, message", [
    ("a.jpg [] no tab", "no tab"),
    ("a.jpg\t[{\"points\": [[0, 0]", "not valid JSON"),
    ("a.jpg\t{\"points\": []}", "must be a JSON list"),
    ("a.jpg\t[{\"transcription\": \"x\"}]", "box 1 of image 'a.jpg' is not an object with 'points'"),
    ("a.jpg\t[\"text\"]", "box 1 of image 'a.jpg' is not an object with 'points'"),
])
def test_malformed_line_is_named_by_file_and_line(tmp_path, line, message):
    make_image(tmp_path / "a.jpg")
    label = tmp_path / "label.txt"
    label.write_text(det_line("a.jpg", []) + "\n\n" + line + "\n")
    with pytest.raises(DataError, match=message) as info:
        own.read_det(str(label), str(tmp_path))
    assert str(info.value).startswith(f"{label}:3: ")


def test_undecodable_image_names_label_line_and_image(tmp_path):
    make_image(tmp_path / "ok.jpg")
    (tmp_path / "broken.jpg").write_bytes(b"this is not a JPEG")
    label = tmp_path / "label.txt"
    label.write_text(det_line("ok.jpg", []) + "\n" + det_line("broken.jpg", []) + "\n")
    with pytest.raises(DataError, match="cannot be decoded") as info:
        own.convert(str(tmp_path))
    assert str(info.value).startswith(f"{label}:2: ") and str(tmp_path / "broken.jpg") in str(info.value)


@pytest.mark.parametrize("image_path", ["../outside.jpg", "imgs/../../outside.jpg", "link.jpg", "ABSOLUTE"])
def test_det_path_outside_the_folder_is_an_error(tmp_path, image_path):
    outside = make_image(tmp_path / "outside.jpg")
    data = tmp_path / "data"
    make_image(data / "a.jpg")
    os.symlink(outside, data / "link.jpg")
    image_path = str(outside) if image_path == "ABSOLUTE" else image_path
    label = data / "label.txt"
    label.write_text(det_line("a.jpg", []) + "\n" + det_line(image_path, []) + "\n")
    with pytest.raises(DataError, match="outside the image folder") as info:
        own.convert(str(data))
    assert str(info.value).startswith(f"{label}:2: ") and repr(image_path) in str(info.value)


def test_no_image_kept_is_an_error_with_the_skip_summary(tmp_path):
    make_image(tmp_path / "unrelated.jpg")
    (tmp_path / "label.txt").write_text(det_line("a.jpg", []) + "\n" + det_line("b.jpg", []) + "\n")
    with pytest.raises(DataError, match=r"no image kept: 2 skipped \(missing image: 2\)") as info:
        own.convert(str(tmp_path))
    assert str(info.value).startswith(str(tmp_path / "label.txt"))


# --------------------------------------------------------------------------- PPOCRLabel

def write_ppocrlabel(folder: Path, label_lines, state_lines):
    (folder / "Label.txt").write_text("".join(f"{k}\t{json.dumps(v)}\n" for k, v in label_lines), encoding="utf-8")
    (folder / "fileState.txt").write_text("".join(f"{p}\t{s}\n" for p, s in state_lines), encoding="utf-8")


def test_ppocrlabel_end_to_end(tmp_path):
    # labelled as C:\Users\me\photos on Windows, then moved here and renamed
    folder = tmp_path / "moved_photos"
    a, _, d = (make_image(folder / n) for n in ("a.jpg", "b.jpg", "d.jpg"))
    sq = [[10, 10], [40, 10], [40, 30], [10, 30]]
    write_ppocrlabel(folder, [
        ("photos/a.jpg", [box(sq, "abc", difficult=False, key_cls="None"),
                          box([[50, 10], [80, 10], [80, 30], [50, 30]], "blurry", difficult=True),
                          box([[1, 1], [1, 1], [2, 2]], "bad", difficult=False)]),
        ("photos/b.jpg", [box(sq, "not confirmed", difficult=False)]),
        ("photos/e.jpg", [box(sq, "gone", difficult=False)]),
    ], [("C:\\Users\\me\\photos\\a.jpg", 1),  # the absolute Windows path PPOCRLabel wrote before 2024-09
        ("photos/e.jpg", 1),                   # the folder/file form written since
        ("C:\\Users\\me\\photos\\d.jpg", 1)])  # confirmed, no boxes: no Label.txt line
    result = own.convert(str(folder))
    label = str(folder / "Label.txt")
    assert (result.source_format, result.source) == ("ppocrlabel", label)
    assert (result.images, result.boxes, result.ignored) == (2, 2, 1)
    assert [parse(line) for line in result.lines] == [
        (str(a), [box(sq, "abc"), box([[50, 10], [80, 10], [80, 30], [50, 30]], "###")]),  # difficult -> ###
        (str(d), [])]
    assert result.skipped == [(f"{label}:1, box 3", "bad polygon: fewer than 3 distinct points (2)"),
                              (f"{label}:2", "not checked in PPOCRLabel: b.jpg"),
                              (f"{label}:3", f"missing image: {folder / 'e.jpg'}")]
    assert any("kept as negatives" in note for note in result.notes)
    assert own.detect_format(str(folder)) == ("ppocrlabel", label)


def test_ppocrlabel_without_checked_image_is_an_error(tmp_path):
    make_image(tmp_path / "a.jpg")
    write_ppocrlabel(tmp_path, [("x/a.jpg", [box([[0, 0], [5, 0], [5, 5]])])], [])
    with pytest.raises(DataError, match=r"no image was checked \(confirmed\) in PPOCRLabel") as info:
        own.convert(str(tmp_path), fmt="ppocrlabel")
    assert str(info.value).startswith(str(tmp_path / "fileState.txt"))


def test_ppocrlabel_key_leaving_the_folder_is_an_error(tmp_path):
    folder = tmp_path / "photos"
    make_image(folder / "a.jpg")
    make_image(tmp_path / "secret.jpg")
    write_ppocrlabel(folder, [("photos/a.jpg", []), ("photos/../secret.jpg", [])], [("photos/a.jpg", 1)])
    with pytest.raises(DataError, match="outside the image folder") as info:
        own.read_ppocrlabel(str(folder))
    assert str(info.value).startswith(f"{folder / 'Label.txt'}:2: ")


def test_ppocrlabel_malformed_line(tmp_path):
    make_image(tmp_path / "a.jpg")
    (tmp_path / "Label.txt").write_text("x/a.jpg\t[{'transcription': 'single quotes'}]\n")
    (tmp_path / "fileState.txt").write_text("x/a.jpg\t1\n")
    with pytest.raises(DataError, match="not valid JSON") as info:
        own.convert(str(tmp_path))
    assert str(info.value).startswith(f"{tmp_path / 'Label.txt'}:1: ")


# --------------------------------------------------------------------------- Label Studio

def rect(rid, x, y, w, h, rotation=0, labels=None, **extra):
    value = dict(x=x, y=y, width=w, height=h, rotation=rotation)
    kind = "rectangle" if labels is None else "rectanglelabels"
    if labels is not None:
        value["rectanglelabels"] = labels
    return dict(id=rid, type=kind, from_name="bbox", to_name="image", value=value,
                original_width=extra.get("ow", W), original_height=extra.get("oh", H))


def poly(rid, points, labels=None):
    value = dict(points=points)
    if labels is not None:
        value["polygonlabels"] = labels
    return dict(id=rid, type="polygon" if labels is None else "polygonlabels", value=value,
                original_width=W, original_height=H)


def attribute(rid, kind, values):
    key = "text" if kind == "textarea" else "labels"
    return dict(id=rid, type=kind, value={"x": 1, "y": 1, "width": 1, "height": 1, key: values})


def task(tid, image, *annotations, **extra):
    return dict(id=tid, data={"image": image}, annotations=list(annotations), **extra)


def annotation(*results, cancelled=False):
    return dict(result=list(results), was_cancelled=cancelled)


def test_labelstudio_end_to_end(tmp_path):
    data = tmp_path / "data"
    scene = make_image(data / "scene.jpg")
    street = make_image(data / "sub" / "street.png")
    spaced = make_image(data / "rel" / "x y.jpg")
    make_image(data / "one" / "dup.jpg")
    make_image(data / "two" / "dup.jpg")
    make_image(data / "unlabelled.jpg")
    tasks = [
        task(1, "/data/upload/3/1a2b3c4d-scene.jpg", annotation(
            rect("r1", 10, 20, 30, 40, ow=400, oh=200),               # export says 400x200, the file is 200x100
            attribute("r1", "labels", ["Text"]), attribute("r1", "textarea", ["hello"]),
            rect("r2", 50, 10, 20, 20, rotation=90, labels=["text"]),
            poly("r3", [[5, 50], [25, 50], [25, 90], [5, 90], [15, 95]], labels=["Ignore"]),
            dict(id="k1", type="keypointlabels", value={"x": 1, "y": 1, "keypointlabels": ["dot"]}),
            poly("r5", [[1, 1], [2, 2]]),
            dict(id="c1", type="choices", value={"choices": ["indoor"]}),
            attribute("lonely", "textarea", ["no region"]))),
        task(2, "/data/local-files/?d=photos/sub/street.png",      # found below the folder by name
             annotation(poly("p1", [[0, 0], [50, 0], [50, 50]]), attribute("p1", "textarea", ["###"])),
             annotation(poly("p2", [[0, 0], [10, 0], [10, 10]]))),  # a second annotation: not used
        task(3, "/data/local-files/?d=rel/x%20y.jpg", annotation(rect("q", 0, 0, 100, 100, labels=["text"]))),
        task(4, "/data/upload/3/deadbeef-nothere.jpg", annotation(poly("m", [[0, 0], [5, 0], [5, 5]]))),
        task(5, "/data/upload/3/dup.jpg", annotation()),
        task(6, "/data/upload/3/unlabelled.jpg", predictions=[annotation(poly("x", [[0, 0], [5, 0], [5, 5]]))]),
        task(7, "/data/upload/3/unlabelled.jpg", annotation(poly("y", [[0, 0], [5, 0], [5, 5]]), cancelled=True)),
    ]
    export = data / "project-1-at-2024.json"
    export.write_text(json.dumps(tasks))
    (data / "notes.txt").write_text("not a label file\n")
    assert own.detect_format(str(data)) == ("labelstudio", str(export))
    result = own.convert(str(data))
    assert (result.source_format, result.images, result.boxes, result.ignored, result.clipped) == (
        "labelstudio", 3, 5, 2, 0)
    lines = dict(map(parse, result.lines))
    assert list(lines) == [str(scene), str(street), str(spaced)]
    assert lines[str(scene)] == [
        box([[20, 20], [80, 20], [80, 60], [20, 60]], "hello"),             # percent -> pixels, textarea text
        box([[100, 10], [100, 50], [80, 50], [80, 10]], "text"),            # rotated 90 deg about top-left
        box([[10, 50], [50, 50], [50, 90], [10, 90], [30, 95]], "###")]     # label "Ignore"; 5 points kept
    assert lines[str(street)] == [box([[0, 0], [100, 0], [100, 50]], "###")]
    assert lines[str(spaced)] == [box([[0, 0], [199, 0], [199, 99], [0, 99]], "text")]  # 100 % is not "clipped"
    where = f"{export}: task"
    assert result.skipped == [
        (f"{where} 1, result 6", "unknown label type keypointlabels"),
        (f"{where} 1, result 8", "unknown label type choices"),
        (f"{where} 1, result 9", "textarea not linked to a polygon or rectangle (no region with id 'lonely')"),
        (f"{where} 1, result 7", "bad polygon: fewer than 3 distinct points (2)"),
        (f"{where} 4", f"missing image: /data/upload/3/deadbeef-nothere.jpg (looked for deadbeef-nothere.jpg or "
                       f"nothere.jpg in {data})"),
        (f"{where} 5", "ambiguous image name: dup.jpg matches 2 files (one/dup.jpg, two/dup.jpg)"),
        (f"{where} 6", "no annotation: the task has none (predictions are not used)"),
        (f"{where} 7", "no annotation: all 1 annotation(s) were cancelled")]
    report = result.report()
    assert "note: 1 task(s) have several annotations; the first one was used (task 2)" in report
    assert "note: 1 image(s) differ in size from original_width/height" in report and "(task 1)" in report
    assert "kept: 3 image(s), 5 box(es)" in report and "skipped: 8" in report


@pytest.mark.parametrize("degrees, corners", [
    (0, [[100, 10], [140, 10], [140, 30], [100, 30]]),
    (90, [[100, 10], [100, 50], [80, 50], [80, 10]]),
    (180, [[100, 10], [60, 10], [60, 0], [100, 0]]),  # reaches above the image: clipped
])
def test_labelstudio_rotated_rectangle_corners(tmp_path, degrees, corners):
    make_image(tmp_path / "a.jpg")
    export = tmp_path / "export.json"
    export.write_text(json.dumps([task(1, "a.jpg", annotation(rect("r", 50, 10, 20, 20, rotation=degrees)))]))
    result = own.read_labelstudio(str(export), str(tmp_path))
    assert parse(result.lines[0])[1] == [box(corners, "")]
    assert result.clipped == (degrees == 180)


def test_labelstudio_upload_prefix_and_url_names(tmp_path):
    a = make_image(tmp_path / "photo one.jpg")
    export = tmp_path / "export.json"
    export.write_text(json.dumps([{"id": 9, "data": {"ocr": "http://host:8080/data/upload/2/0f0e0d0c-photo%20one.jpg"},
                                   "annotations": [annotation(poly("p", [[0, 0], [10, 0], [10, 10]]))]}]))
    result = own.convert(str(tmp_path), fmt="labelstudio")
    assert [parse(line)[0] for line in result.lines] == [str(a)]


def test_labelstudio_path_outside_the_folder_is_an_error(tmp_path):
    data = tmp_path / "data"
    make_image(data / "a.jpg")
    make_image(tmp_path / "secret.jpg")
    export = data / "export.json"
    export.write_text(json.dumps([task(12, "a.jpg", annotation()),
                                  task(7, "/data/local-files/?d=../secret.jpg", annotation())]))
    with pytest.raises(DataError, match="outside the image folder") as info:
        own.convert(str(data))
    assert str(info.value).startswith(f"{export}: task 7: image path '../secret.jpg'")


def test_labelstudio_undecodable_image_names_the_task(tmp_path):
    (tmp_path / "a.jpg").write_bytes(b"")
    export = tmp_path / "export.json"
    export.write_text(json.dumps([task(3, "/data/upload/1/a.jpg", annotation())]))
    with pytest.raises(DataError, match="cannot be decoded") as info:
        own.convert(str(tmp_path))
    assert str(info.value).startswith(f"{export}: task 3: image {tmp_path / 'a.jpg'}")


def test_labelstudio_export_that_is_not_a_task_list(tmp_path):
    make_image(tmp_path / "a.jpg")
    export = tmp_path / "export.json"
    export.write_text(json.dumps([{"image": "a.jpg", "label": []}]))  # JSON-MIN
    with pytest.raises(DataError, match=r"task 1 is not a Label Studio task with 'data' \(export as 'JSON'"):
        own.convert(str(tmp_path), labels="export.json")
    export.write_text("[{\"data\": ")
    with pytest.raises(DataError, match="not valid JSON") as info:
        own.convert(str(tmp_path), fmt="labelstudio", labels=str(export))
    assert str(info.value).startswith(f"{export}:1: ")


# --------------------------------------------------------------------------- folders, formats, detection

def test_empty_folder_is_an_error(tmp_path):
    with pytest.raises(DataError, match="holds no images") as info:
        own.convert(str(tmp_path))
    assert str(info.value).startswith(f"{tmp_path}: ") and "Label.txt + fileState.txt" in str(info.value)


def test_missing_folder_and_file_instead_of_folder(tmp_path):
    with pytest.raises(DataError, match="does not exist") as info:
        own.convert(str(tmp_path / "nope"))
    assert str(info.value).startswith(str(tmp_path / "nope"))
    image = make_image(tmp_path / "a.jpg")
    with pytest.raises(DataError, match="is not a folder"):
        own.convert(str(image))


def test_no_label_file_lists_what_was_looked_for(tmp_path):
    make_image(tmp_path / "a.jpg")
    (tmp_path / "README.txt").write_text("my photos\n")
    (tmp_path / "rec_gt.txt").write_text("crop_img/a_crop_0.jpg\thello\n")
    (tmp_path / "Label.txt.bak").write_text("")
    with pytest.raises(DataError, match="no label file found") as info:
        own.convert(str(tmp_path))
    message = str(info.value)
    assert message.startswith(f"{tmp_path}: ")
    assert all(s in message for s in ("Label.txt + fileState.txt", "*.json Label Studio", "*.txt PaddleOCR det"))


def test_unknown_format_lists_the_valid_ones(tmp_path):
    make_image(tmp_path / "a.jpg")
    with pytest.raises(DataError, match=r"unknown label format 'yolo'; valid formats: auto, det, ppocrlabel, "
                                        r"labelstudio"):
        own.convert(str(tmp_path), fmt="yolo")


def test_detection_with_labels_argument_and_ambiguity(tmp_path):
    make_image(tmp_path / "a.jpg")
    for name in ("train.txt", "val.txt"):
        (tmp_path / name).write_text(det_line("a.jpg", []) + "\n")
    with pytest.raises(DataError, match=r"several det label files \(\*.txt\) \(train.txt, val.txt\)"):
        own.detect_format(str(tmp_path))
    assert own.detect_format(str(tmp_path), labels="val.txt") == ("det", str(tmp_path / "val.txt"))
    result = own.convert(str(tmp_path), labels=str(tmp_path / "train.txt"))
    assert result.source == str(tmp_path / "train.txt") and result.images == 1
    with pytest.raises(DataError, match="label file not found") as info:
        own.convert(str(tmp_path), labels="test.txt")
    assert str(info.value).startswith("test.txt: ")
