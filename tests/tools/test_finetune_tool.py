"""tools/finetune.py (scripts/finetune.sh): your own labelled images in, a validated and exported detector out.
The inputs are real folders in PPOCRLabel's and PaddleOCR's det formats, made from the tiny synthetic set of tests/conftest.py."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from testutil import last_line_json

ROOT = Path(__file__).resolve().parents[2]


def _ppocrlabel(tiny_data: Path, dst: Path) -> Path:
    """A PPOCRLabel folder: the images, Label.txt ("<folder>/<image>\\t[...]"), fileState.txt (all checked)."""
    dst.mkdir()
    label, state = [], []
    for name in ("train_icdar2015_label.txt", "test_icdar2015_label.txt"):
        for line in (tiny_data / name).read_text(encoding="utf-8").splitlines():
            rel, boxes = line.split("\t", 1)
            image = f"{'tr' if name.startswith('train') else 'te'}_{Path(rel).name}"
            shutil.copy(tiny_data / rel, dst / image)
            label.append(f"{dst.name}/{image}\t{boxes}\n")
            state.append(f"{dst / image}\t1\n")
    (dst / "Label.txt").write_text("".join(label), encoding="utf-8")
    (dst / "fileState.txt").write_text("".join(state), encoding="utf-8")
    return dst


def _tree_digest(folder: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        h.update(str(path.relative_to(folder)).encode())
        if path.is_file():
            h.update(path.read_bytes())
    return h.hexdigest()


def _tool(*args: str, cwd: Path = ROOT, timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(ROOT / "scripts" / "finetune.sh"), *args], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, "PYTHON": sys.executable})


FAST = ["--gpus", "cpu", "-o", "Global.pretrained_model=", "Train.loader.num_workers=0", "Eval.loader.num_workers=0",
        "Train.dataset.transforms.3.EastRandomCropData.size=[128,128]"]


@pytest.mark.slow
def test_ppocrlabel_folder_to_an_exported_detector(tiny_data, tmp_path):
    data = _ppocrlabel(tiny_data, tmp_path / "my_signs")
    before = _tree_digest(data)
    out = tmp_path / "run"
    # run from another folder: --data and --out are relative to where you are
    p = _tool("--data", "my_signs", "--out", "run", "--val", "1", "--minutes", "1", *FAST, cwd=tmp_path)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    for step in range(1, 6):
        assert f"[{step}/5]" in p.stdout
    assert "ppocrlabel" in p.stdout and "kept" in p.stdout  # the conversion report
    res = last_line_json(p.stdout)
    assert (res["images"], res["train"], res["val"], res["skipped"]) == (5, 4, 1, 0)
    assert 0 <= res["hmean"] <= 1 and res["out"] == str(out)
    # a 1-minute budget at the measured CPU speed: several epochs of the 4 training images, one step each
    assert res["epochs"] > 1 and res["steps"] == res["epochs"]
    labels = out / "labels"
    assert len((labels / "train.txt").read_text().splitlines()) == 4
    assert len((labels / "val.txt").read_text().splitlines()) == 1
    assert json.loads((labels / "split.json").read_text())["seed"] == 0
    assert (out / "model" / "best_accuracy.pdparams").is_file()
    scores = json.loads((out / "val" / "scores.json").read_text())
    assert scores["metrics"]["hmean"] == res["hmean"]
    assert list((out / "val" / "worst").glob("*.jpg")) or list((out / "val" / "worst").glob("*.png"))
    inference = out / "inference"
    assert (inference / "inference.yml").is_file() and (inference / "inference.onnx").is_file()
    assert f"TextDetection(model_name='PP-OCRv3_mobile_det', model_dir='{inference}')" in p.stdout
    assert f'RapidOCR(params={{"Det.model_path": \'{inference / "inference.onnx"}\'' in p.stdout
    assert '"Det.use_dilation": False' in p.stdout  # RapidOCR dilates by default; the export does not
    # the printed infer_det line works on the export
    image = next(data.glob("*.jpg"))
    r = subprocess.run([sys.executable, "tools/infer_det.py", "--model_dir", str(inference), "--image", str(image),
                        "--out", str(tmp_path / "pred")], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert _tree_digest(data) == before  # the input folder is only read
    again = _tool("--data", str(data), "--out", str(out), "--epochs", "1", *FAST)
    assert again.returncode == 2 and "already holds a run" in again.stderr


def test_dry_run_plans_and_writes_nothing(tiny_data, tmp_path):
    labels = tiny_data / "train_icdar2015_label.txt"
    out = tmp_path / "run"
    p = _tool("--data", str(tiny_data), "--labels", str(labels), "--format", "det", "--out", str(out), "--val", "0.25",
              "--minutes", "30", "--dry-run", *FAST)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    res = last_line_json(p.stdout)
    assert res["dry_run"] and (res["train"], res["val"]) == (3, 1) and res["epochs"] >= 1
    assert "would run:" in p.stdout and "tools/train.py -c configs/det/cpu/ft_mv3_db++_icdar15.yml" in p.stdout
    assert f"Train.dataset.label_file_list=[{out / 'labels' / 'train.txt'}]" in p.stdout
    assert not out.exists()
    # --model dbnet: the same recipe without the ASF block
    p = _tool("--data", str(tiny_data), "--labels", str(labels), "--out", str(out), "--model", "dbnet", "--dry-run",
              *FAST)
    assert p.returncode == 0 and "Architecture.Neck.use_asf=False" in p.stdout and "train: dbnet " in p.stdout
    assert not out.exists()


def test_bad_inputs_are_refused(tiny_data, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    p = _tool("--data", str(empty), "--out", str(tmp_path / "o1"), "--dry-run")
    assert p.returncode == 1 and str(empty) in p.stderr and "finetune.py: error:" in p.stderr  # input data: 1
    p = _tool("--data", str(tiny_data), "--out", str(tiny_data / "inside"), "--dry-run")
    assert p.returncode == 2 and "lies inside --data" in p.stderr and not (tiny_data / "inside").exists()
    data = _ppocrlabel(tiny_data, tmp_path / "unchecked")
    (data / "fileState.txt").write_text("")
    p = _tool("--data", str(data), "--out", str(tmp_path / "o2"), "--dry-run")
    assert p.returncode == 1 and "fileState.txt" in p.stderr and "check" in p.stderr
    p = _tool("--data", str(tiny_data), "--val", "1.5", "--dry-run")
    assert p.returncode == 2 and "--val" in p.stderr
