"""tools/make_synth_dataset.py: official ICDAR2015 layout and file formats, determinism,
overwrite protection."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from dbnetpp.data.icdar_gt import read_gt_file

from testutil import last_line_json

TRAIN, TEST, SIZE = 5, 3, "192x160"


def _run(root: Path, dst: Path, *extra: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, str(root / "tools" / "make_synth_dataset.py"), "--dst", str(dst), "--train", str(TRAIN),
           "--test", str(TEST), "--size", SIZE, "--seed", "3", *extra]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def dataset(root_dir, tmp_path_factory):
    dst = tmp_path_factory.mktemp("synth") / "icdar_synth"
    proc = _run(root_dir, dst)
    assert proc.returncode == 0, proc.stderr
    return dst, proc


def _tree(dst: Path) -> dict:
    return {str(p.relative_to(dst)): p.read_bytes() for p in sorted(dst.rglob("*")) if p.is_file()}


@pytest.mark.smoke
def test_layout_and_summary(dataset):
    dst, proc = dataset
    files = _tree(dst)
    expected = {f"ch4_training_images/img_{k}.jpg" for k in range(1, TRAIN + 1)}
    expected |= {f"ch4_training_localization_transcription_gt/gt_img_{k}.txt" for k in range(1, TRAIN + 1)}
    expected |= {f"ch4_test_images/img_{k}.jpg" for k in range(1, TEST + 1)}
    expected |= {f"Challenge4_Test_Task1_GT/gt_img_{k}.txt" for k in range(1, TEST + 1)}
    assert set(files) == expected | {"synth_info.json"}
    summary = last_line_json(proc.stdout)
    assert summary["train_images"] == TRAIN and summary["test_images"] == TEST
    assert summary["size"] == [192, 160]
    for split, gt_dir in (("train", "ch4_training_localization_transcription_gt"), ("test", "Challenge4_Test_Task1_GT")):
        boxes = [b for p in (dst / gt_dir).iterdir() for b in read_gt_file(str(p))]
        assert summary[f"{split}_boxes"] == len(boxes) > 0
        assert summary[f"{split}_dontcare"] == sum(b.ignore for b in boxes)
    for name in files:
        if name.endswith(".jpg"):
            img = cv2.imdecode(np.frombuffer(files[name], np.uint8), cv2.IMREAD_COLOR)
            assert img is not None and img.shape == (160, 192, 3)


def test_gt_file_formats_match_official_dataset(dataset):
    dst, _ = dataset
    for k in range(1, TRAIN + 1):  # training GT: UTF-8 BOM, LF
        raw = (dst / f"ch4_training_localization_transcription_gt/gt_img_{k}.txt").read_bytes()
        assert raw.startswith(b"\xef\xbb\xbf") and raw.count(b"\xef\xbb\xbf") == 1
        assert b"\r" not in raw and raw.endswith(b"\n")
    for k in range(1, TEST + 1):  # test GT: no BOM, CRLF
        raw = (dst / f"Challenge4_Test_Task1_GT/gt_img_{k}.txt").read_bytes()
        assert not raw.startswith(b"\xef\xbb\xbf")
        assert raw.endswith(b"\r\n") and raw.count(b"\n") == raw.count(b"\r\n") == raw.count(b"\r")
    for gt in list((dst / "ch4_training_localization_transcription_gt").iterdir()) + list(
            (dst / "Challenge4_Test_Task1_GT").iterdir()):
        lines = gt.read_bytes().decode("utf-8-sig").splitlines()
        boxes = read_gt_file(str(gt))
        assert len(boxes) == len(lines) >= 1
        assert any(not b.ignore for b in boxes)
        for line, box in zip(lines, boxes):
            coords = line.split(",", 8)[:8]
            assert all(c.lstrip("-").isdigit() for c in coords), line  # integer coordinates
            assert box.transcription == line.split(",", 8)[8] and box.transcription
            pts = np.array(box.points)
            assert (pts[:, 0] >= 0).all() and (pts[:, 0] < 192).all() and (pts[:, 1] >= 0).all() and (
                pts[:, 1] < 160).all()


def test_same_arguments_give_identical_bytes(dataset, root_dir, tmp_path):
    dst, _ = dataset
    again = tmp_path / "again"
    proc = _run(root_dir, again)
    assert proc.returncode == 0, proc.stderr
    assert _tree(again) == _tree(dst)
    other = tmp_path / "other"
    assert _run(root_dir, other, "--seed", "4").returncode == 0  # later --seed wins
    assert _tree(other)["ch4_training_images/img_1.jpg"] != _tree(dst)["ch4_training_images/img_1.jpg"]


def test_refuses_to_overwrite_without_force(root_dir, tmp_path):
    dst = tmp_path / "ds"
    assert _run(root_dir, dst).returncode == 0
    gt = dst / "ch4_training_localization_transcription_gt" / "gt_img_1.txt"
    before = gt.read_bytes()
    proc = _run(root_dir, dst)
    assert proc.returncode != 0 and "--force" in proc.stderr
    assert gt.read_bytes() == before
    stale = dst / "ch4_test_images" / "img_99.jpg"
    stale.write_bytes(b"x")
    proc = _run(root_dir, dst, "--force")
    assert proc.returncode == 0, proc.stderr
    assert not stale.exists() and gt.read_bytes() == before


def test_force_never_deletes_a_foreign_dataset(root_dir, tmp_path):
    dst = tmp_path / "real"
    (dst / "ch4_training_images").mkdir(parents=True)
    keep = dst / "ch4_training_images" / "img_1.jpg"
    keep.write_bytes(b"real data")
    proc = _run(root_dir, dst, "--force")
    assert proc.returncode != 0 and "not made by this tool" in proc.stderr
    assert keep.read_bytes() == b"real data"


def test_bad_arguments_are_rejected(root_dir, tmp_path):
    for extra in (("--size", "10"), ("--size", "abc"), ("--train", "0")):
        proc = _run(root_dir, tmp_path / "x", *extra)
        assert proc.returncode == 2 and "error" in proc.stderr
