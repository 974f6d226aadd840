"""Shared fixtures: locations of ../shared data (skipping cleanly when absent) and tiny datasets."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("DBNETPP_SHARED", ROOT.parent / "shared"))


def _need(path: Path, what: str) -> Path:
    if not path.exists():
        pytest.skip(f"{what} not available: {path} is missing (set DBNETPP_SHARED to the folder holding "
                    f"datasets/ and reference/)")
    return path


@pytest.fixture(scope="session")
def root_dir() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def ref_dir() -> Path:
    """``../shared/reference/ppocr``: upstream PaddleOCR reference outputs."""
    return _need(SHARED / "reference" / "ppocr", "PaddleOCR reference data")


@pytest.fixture(scope="session")
def icdar_dir() -> Path:
    """``../shared/datasets/icdar2015``: the official ICDAR2015 layout."""
    return _need(SHARED / "datasets" / "icdar2015", "ICDAR2015 dataset")


@pytest.fixture(scope="session")
def refdet_dir() -> Path:
    """``../shared/datasets/icdar2015_reference_detections``."""
    return _need(SHARED / "datasets" / "icdar2015_reference_detections", "ICDAR2015 reference detections")


# ---- a tiny synthetic dataset and overrides that point a recipe at it (recipe, launcher and tool tests)

@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory):
    """4 training + 1 test synthetic 128x128 images, prepared like ICDAR2015 (tools/prepare_icdar2015.py)."""
    base = tmp_path_factory.mktemp("tiny")
    for cmd in ([sys.executable, "tools/make_synth_dataset.py", "--dst", str(base / "raw"), "--train", "4",
                 "--test", "1", "--size", "128", "--seed", "1"],
                [sys.executable, "tools/prepare_icdar2015.py", "--src", str(base / "raw"), "--dst",
                 str(base / "prep"), "--no-progress"]):
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
    return base / "prep"


def make_tiny_overrides(cfg_path: str, data: Path, out: Path, size: int = 128, steps: int = 1, batch: int = 2):
    """-o overrides pointing the recipe ``cfg_path`` at ``data``: ``size`` px images, ``steps`` steps of
    ``batch`` images, no loader workers, no pretrained weights, output in ``out``."""
    from dbnetpp.config import load_config

    cfg = load_config(str(ROOT / cfg_path))
    opts = [f"Global.save_model_dir={out}", "Global.epoch_num=1", f"Global.max_steps={steps}",
            "Global.print_batch_step=1", "Global.pretrained_model=", "Global.eval_batch_step=[0,1000]",
            f"Train.loader.batch_size_per_card={batch}", "Train.loader.num_workers=0", "Eval.loader.num_workers=0"]
    for split, label in (("Train", "train_icdar2015_label.txt"), ("Eval", "test_icdar2015_label.txt")):
        opts += [f"{split}.dataset.data_dir={data}", f"{split}.dataset.label_file_list=[{data / label}]"]
        for i, item in enumerate(cfg[split]["dataset"]["transforms"]):
            name = next(iter(item))
            if name == "EastRandomCropData":
                opts.append(f"{split}.dataset.transforms.{i}.{name}.size=[{size},{size}]")
            elif name == "DetResizeForTest":
                opts.append(f"{split}.dataset.transforms.{i}.{name}.image_shape=[{size},{size}]")
    return opts


@pytest.fixture(scope="session")
def tiny_overrides():
    return make_tiny_overrides
