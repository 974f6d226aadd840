"""tools/eval_icdar2015.py: official numbers, input formats, RRC validation errors."""
from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from testutil import last_line_json

ROOT = Path(__file__).resolve().parents[2]
TOOL = ROOT / "tools" / "eval_icdar2015.py"


def _tool():
    spec = importlib.util.spec_from_file_location("eval_icdar2015_tool", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(capsys, *args):
    rc = _tool().main([str(a) for a in args])
    out = capsys.readouterr()
    return rc, out.out, out.err


def _write_zip(path: Path, files: dict) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        for name, text in files.items():
            z.writestr(name, text)
    return path


def test_cli_east_official_numbers_and_json(refdet_dir, tmp_path):
    out_json = tmp_path / "res" / "east.json"
    proc = subprocess.run([sys.executable, str(TOOL), "--gt", str(refdet_dir / "official_test_gt.zip"),
                           "--det", str(refdet_dir / "east_res.zip"), "--json", str(out_json)],
                          capture_output=True, text=True, check=True, cwd=ROOT)
    last = last_line_json(proc.stdout)
    assert (round(last["precision"], 4), round(last["recall"], 4), round(last["hmean"], 4)) == (0.8466, 0.7732, 0.8083)
    assert "precision: 0.8466" in proc.stdout and "hmean:     0.8083" in proc.stdout
    saved = json.loads(out_json.read_text())
    assert saved["method"]["matched"] == last["matched"] == 1606
    assert len(saved["per_sample"]) == 500
    assert sum(s["matched"] for s in saved["per_sample"].values()) == 1606
    sample = saved["per_sample"]["2"]
    assert set(sample) >= {"precision", "recall", "hmean", "pairs", "gt_dont_care", "det_dont_care"}


def test_folder_and_label_file_inputs_give_the_same_numbers(refdet_dir, tmp_path, capsys):
    gt_dir, det_dir = tmp_path / "gt", tmp_path / "det"
    with zipfile.ZipFile(refdet_dir / "official_test_gt.zip") as z:
        z.extractall(gt_dir)
    with zipfile.ZipFile(refdet_dir / "pixellink_res.zip") as z:
        z.extractall(det_dir)
    rc, out, _ = _run(capsys, "--gt", gt_dir, "--det", det_dir)
    assert rc == 0 and last_line_json(out)["hmean"] == pytest.approx(0.8352, abs=5e-5)

    # PaddleOCR label files: GT with transcriptions, detections as infer_det writes them
    gt_lines, det_lines = [], []
    for f in sorted(gt_dir.iterdir()):
        n = f.stem.split("_")[-1]
        boxes = []
        for line in f.read_text(encoding="utf-8-sig").splitlines():
            if line.strip():
                parts = line.split(",", 8)
                xy = [int(v) for v in parts[:8]]
                boxes.append({"transcription": parts[8], "points": [xy[i:i + 2] for i in range(0, 8, 2)]})
        gt_lines.append(f"ch4_test_images/img_{n}.jpg\t{json.dumps(boxes)}")
        res = det_dir / f"res_img_{n}.txt"
        dets = []
        for line in res.read_text().splitlines():
            if line.strip():
                xy = [int(v) for v in line.split(",")]
                dets.append({"points": [xy[i:i + 2] for i in range(0, 8, 2)], "score": 0.9})
        det_lines.append(f"img_{n}.jpg\t{json.dumps(dets)}")
    (tmp_path / "gt_label.txt").write_text("\n".join(gt_lines) + "\n")
    (tmp_path / "det_label.txt").write_text("\n".join(det_lines) + "\n")
    rc, out, _ = _run(capsys, "--gt", tmp_path / "gt_label.txt", "--det", tmp_path / "det_label.txt")
    last = last_line_json(out)
    assert rc == 0 and (round(last["precision"], 4), round(last["recall"], 4)) == (0.8552, 0.8161)
    # mixed: zip GT, label-file detections
    rc, out, _ = _run(capsys, "--gt", refdet_dir / "official_test_gt.zip", "--det", tmp_path / "det_label.txt")
    assert rc == 0 and last_line_json(out)["matched"] == 1695


GT_FILES = {"gt_img_1.txt": "10,10,110,10,110,60,10,60,hello\r\n", "gt_img_2.txt": "0,0,50,0,50,20,0,20,###\r\n"}


@pytest.mark.parametrize("lines, lineno, message", [
    ("10,10,110,10,110,60,10,60\n10,10,10,60,110,60,110,10\n", 2, "Points are not clockwise."),
    ("10,10,110,10,110,60,10,60,\n", 1, "Format incorrect. Should be: x1,y1,x2,y2,x3,y3,x4,y4"),
    ("10,10,110,10,110,60\n", 1, "Format incorrect. Should be: x1,y1,x2,y2,x3,y3,x4,y4"),
    ("10,10,110,ten,110,60,10,60\n", 1, "Format incorrect. Should be: x1,y1,x2,y2,x3,y3,x4,y4"),
    ("10.5,10,110,10,110,60,10,60\n", 1, "Format incorrect. Should be: x1,y1,x2,y2,x3,y3,x4,y4"),
])
def test_invalid_submission_lines_get_rrc_messages(tmp_path, capsys, lines, lineno, message):
    gt = _write_zip(tmp_path / "gt.zip", GT_FILES)
    det = _write_zip(tmp_path / "det.zip", {"res_img_1.txt": lines})
    rc, out, err = _run(capsys, "--gt", gt, "--det", det)
    assert rc == 1 and out == ""
    assert f"det.zip/res_img_1.txt:{lineno}: Line in sample not valid. Sample: 1 Line: " in err
    assert message in err


def test_unknown_sample_and_bad_entry_names(tmp_path, capsys):
    gt = _write_zip(tmp_path / "gt.zip", GT_FILES)
    det = _write_zip(tmp_path / "det.zip", {"res_img_7.txt": "10,10,110,10,110,60,10,60\n"})
    rc, _, err = _run(capsys, "--gt", gt, "--det", det)
    assert rc == 1 and "res_img_7.txt: The sample 7 not present in GT" in err
    det = _write_zip(tmp_path / "det2.zip", {"results/img_1.txt": "10,10,110,10,110,60,10,60\n"})
    rc, _, err = _run(capsys, "--gt", gt, "--det", det)
    assert rc == 1 and "ZIP entry not valid: results/img_1.txt" in err
    labels = tmp_path / "det.txt"
    labels.write_text('img_1.jpg\t[{"points": [[10,10],[110,10],[110,60],[10,60]]}]\nimg_2.jpg\t[{"points": [[0,0]}]\n')
    rc, _, err = _run(capsys, "--gt", gt, "--det", labels)
    assert rc == 1 and f"{labels}:2: invalid JSON" in err
    labels.write_text('img_1.jpg\t[{"points": [[10,10],[60,10],[110,10],[110,60],[10,60]]}]\n')
    rc, _, err = _run(capsys, "--gt", gt, "--det", labels)
    assert rc == 1 and f"{labels}:1: Line in sample not valid. Sample: 1" in err and "Format incorrect" in err
    rc, _, err = _run(capsys, "--gt", tmp_path / "missing.zip", "--det", labels)
    assert rc == 1 and "missing.zip: no such file or folder" in err


def test_protocol_switch_on_cli(tmp_path, capsys):
    """paddleocr: '*' is don't-care, float coordinates and a confidence column are accepted,
    counter-clockwise boxes are not an error."""
    gt = _write_zip(tmp_path / "gt.zip", {"gt_img_1.txt": "10,10,110,10,110,60,10,60,hi\r\n"
                                                          "300,10,400,10,400,60,300,60,*\r\n"})
    det = _write_zip(tmp_path / "det.zip", {"res_img_1.txt": "10.5,10,110,10,110,60.2,10,60,0.93\n"
                                                             "300,10,300,60,400,60,400,10,0.5\n"})
    rc, out, _ = _run(capsys, "--gt", gt, "--det", det, "--protocol", "paddleocr")
    last = last_line_json(out)
    assert rc == 0 and (last["gt_care"], last["det_care"], last["matched"]) == (1, 1, 1)
    assert last["protocol"] == "paddleocr"
    rc, _, err = _run(capsys, "--gt", gt, "--det", det)  # the RRC tool rejects this submission
    assert rc == 1 and "Format incorrect" in err


# ------------------------------------------------------------------ strict entry names, counted gaps
_GT = {"gt_img_1.txt": "0,0,10,0,10,10,0,10,word\n", "gt_img_2.txt": "20,20,40,20,40,40,20,40,text\n"}
_DET = {"res_img_1.txt": "0,0,10,0,10,10,0,10\n", "res_img_2.txt": "20,20,40,20,40,40,20,40\n"}


def test_stray_or_duplicate_entries_are_errors_not_silent_replacements(capsys, tmp_path):
    gt = _write_zip(tmp_path / "gt.zip", _GT)
    folder = tmp_path / "det"
    folder.mkdir()
    for name, text in _DET.items():
        (folder / name).write_text(text)
    rc, out, _ = _run(capsys, "--gt", gt, "--det", folder)
    assert rc == 0 and last_line_json(out)["recall"] == 1.0
    (folder / "res_img_2.txt~").write_text("")  # an editor's backup: used to replace image 2's results
    rc, _, err = _run(capsys, "--gt", gt, "--det", folder)
    assert rc == 1 and "folder entry not valid: res_img_2.txt~ (every file must be named res_img_<N>.txt)" in err
    (folder / "res_img_2.txt~").unlink()
    (folder / "res_img_02.txt").write_text("")
    rc, _, err = _run(capsys, "--gt", gt, "--det", folder)
    assert rc == 1 and "'res_img_02.txt'" in err and "'res_img_2.txt'" in err and "image 2" in err
    # the same name twice inside a zip
    dup = tmp_path / "dup.zip"
    with zipfile.ZipFile(dup, "w") as z:
        for name, text in _DET.items():
            z.writestr(name, text)
        with pytest.warns(UserWarning):
            z.writestr("res_img_1.txt", "")
    rc, _, err = _run(capsys, "--gt", gt, "--det", dup)
    assert rc == 1 and "both for image 1" in err


def test_gt_entries_must_be_named_exactly(capsys, tmp_path):
    gt = _write_zip(tmp_path / "gt.zip", {**_GT, "gt_img_3.txt.orig": "1,1,2,1,2,2,1,2,x\n"})
    det = _write_zip(tmp_path / "det.zip", _DET)
    rc, _, err = _run(capsys, "--gt", gt, "--det", det)
    assert rc == 1 and "ZIP entry not valid: gt_img_3.txt.orig (every file must be named gt_img_<N>.txt)" in err


def test_missing_result_files_are_counted(capsys, tmp_path):
    gt = _write_zip(tmp_path / "gt.zip", _GT)
    rc, out, _ = _run(capsys, "--gt", gt, "--det", _write_zip(tmp_path / "one.zip", {"res_img_1.txt": _DET["res_img_1.txt"]}))
    res = last_line_json(out)
    assert rc == 0 and res["images_with_results"] == 1 and res["recall"] == 0.5
    assert "1 of 2 images have a result file (the others count as images without detections)" in out
    empty = tmp_path / "empty"
    empty.mkdir()
    rc, out, _ = _run(capsys, "--gt", gt, "--det", empty)
    assert rc == 0 and "0 of 2 images have a result file" in out and last_line_json(out)["hmean"] == 0


@pytest.mark.parametrize("where", ["gt", "det"])
def test_absurd_coordinates_name_file_and_line(capsys, tmp_path, where):
    gt, det = dict(_GT), dict(_DET)
    if where == "gt":
        gt["gt_img_2.txt"] = "20,20,1e39,20,40,40,20,40,text\n"
    else:
        det["res_img_2.txt"] = "20,20,40,20,40,40,20,1e30\n"
    rc, _, err = _run(capsys, "--gt", _write_zip(tmp_path / "gt.zip", gt), "--det", _write_zip(tmp_path / "d.zip", det),
                      "--protocol", "paddleocr")
    assert rc == 1 and f"{where}_img_2.txt:1" in err.replace("res_img", "det_img") and "not a position in an image" in err
