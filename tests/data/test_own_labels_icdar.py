"""The own-data converters on real inputs: ICDAR2015 training images and their GT written as a PPOCRLabel
folder and as a Label Studio export (benchmarks/own_data.py's writers), converted back and compared."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from testutil import load_module

ROOT = Path(__file__).resolve().parents[2]
IMAGES = (1, 7, 23, 100, 311, 958)


def _prepared(icdar_dir: Path, dst: Path):
    """A det label file of a few training images, read from the official GT files."""
    (dst / "ch4_training_images").mkdir(parents=True)
    sample = []
    for n in IMAGES:
        rel = f"ch4_training_images/img_{n}.jpg"
        shutil.copy(icdar_dir / rel, dst / rel)
        boxes = []
        gt = icdar_dir / "ch4_training_localization_transcription_gt" / f"gt_img_{n}.txt"
        for line in gt.read_text(encoding="utf-8-sig").splitlines():
            parts = line.strip().split(",")
            if len(parts) >= 9:
                xy = [int(v) for v in parts[:8]]
                boxes.append({"transcription": ",".join(parts[8:]), "points": [xy[i:i + 2] for i in range(0, 8, 2)]})
        sample.append((rel, boxes))
    return sample


def test_icdar_gt_round_trips_through_both_labelling_formats(icdar_dir, tmp_path):
    bench = load_module("bench_own_data", ROOT / "benchmarks" / "own_data.py")
    prep = tmp_path / "prep"
    sample = _prepared(icdar_dir, prep)
    assert sum(len(b) for _, b in sample) > 30 and any(b["transcription"] == "###" for _, bs in sample for b in bs)
    bench.write_ppocrlabel(prep, sample, tmp_path / "ppocrlabel")
    sizes = bench.write_labelstudio(prep, sample, tmp_path / "labelstudio")
    export = json.loads((tmp_path / "labelstudio" / "project-1-export.json").read_text())
    assert len(export) == len(IMAGES) and export[0]["data"]["image"].startswith("/data/upload/1/")
    for name in ("ppocrlabel", "labelstudio"):
        check = bench.check_conversion(tmp_path / name, sample, sizes, tolerance=1.0)
        assert check["format"] == name and check["images"] == len(IMAGES), check
        assert check["ok"] and check["max_corner_error_px"] <= 1.0, check
        assert check["boxes"] + check["gt_boxes_not_converted"] == sum(len(b) for _, b in sample)
