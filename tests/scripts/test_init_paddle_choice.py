"""``init.sh``'s choice of the Paddle wheel, run against a fake ``nvidia-smi`` on PATH (nothing installed):
CPU without a GPU, PyPI's paddlepaddle-gpu for Paddle 2, and for Paddle 3 (GPU wheels only on Paddle's
own index) the index of the newest CUDA build the driver supports."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
INDEX = "https://www.paddlepaddle.org.cn/packages/stable/{}/"

FAKE_SMI = """#!/bin/sh
if [ "$1" = "-L" ]; then echo "GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-0)"; exit 0; fi
cat <<'EOT'
+-----------------------------------------------------------------------------------------+
| NVIDIA-SMI 550.54.15              Driver Version: 550.54.15      CUDA Version: {cuda}     |
+-----------------------------------------------------------------------------------------+
EOT
"""


def _choice(tmp_path, cuda=None, **env):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    if cuda is not None:
        smi = bin_dir / "nvidia-smi"
        smi.write_text(FAKE_SMI.replace("{cuda}", cuda))
        smi.chmod(0o755)
    full = {k: v for k, v in os.environ.items() if not k.startswith("PADDLE_")}
    full.update(env, PATH=f"{bin_dir}:/usr/bin:/bin", VENV=str(tmp_path / "never-created"))
    r = subprocess.run(["bash", "init.sh", "--print-paddle-command"], cwd=str(ROOT), env=full,
                       capture_output=True, text=True, timeout=60)
    assert not (tmp_path / "never-created").exists()  # nothing set up, nothing installed
    return r


@pytest.mark.parametrize("cuda, variant", [("12.9", "cu129"), ("13.0", "cu129"), ("12.8", "cu126"),
                                           ("12.6", "cu126"), ("12.4", "cu118"), ("11.8", "cu118")])
def test_paddle3_gpu_index_follows_the_driver(tmp_path, cuda, variant):
    r = _choice(tmp_path, cuda, PADDLE_VERSION="3.3.1")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"pip install paddlepaddle-gpu==3.3.1 --extra-index-url {INDEX.format(variant)}"), r.stdout
    assert f"driver supports CUDA {cuda}" in r.stdout


def test_old_driver_is_refused_with_the_way_out(tmp_path):
    r = _choice(tmp_path, "11.4", PADDLE_VERSION="3.3.1")
    assert r.returncode != 0
    assert "supports CUDA 11.4" in r.stderr and "CUDA >= 11.8" in r.stderr and "PADDLE_VERSION=2.6.2" in r.stderr


def test_no_gpu_paddle2_gpu_and_overrides(tmp_path):
    assert _choice(tmp_path, PADDLE_VERSION="3.3.1").stdout.strip() == "pip install paddlepaddle==3.3.1"
    r = _choice(tmp_path, "12.6", PADDLE_VERSION="2.6.2")
    assert r.stdout.strip() == "pip install paddlepaddle-gpu==2.6.2"  # Paddle 2 GPU wheels are on PyPI
    r = _choice(tmp_path, "12.6", PADDLE_VERSION="3.3.1", PADDLE_INDEX_URL="https://mirror.example/paddle/")
    assert r.stdout.strip() == "pip install paddlepaddle-gpu==3.3.1 --extra-index-url https://mirror.example/paddle/"
    r = _choice(tmp_path, "12.6", PADDLE_VERSION="3.3.1", PADDLE_PACKAGE="paddlepaddle")
    assert r.stdout.strip() == "pip install paddlepaddle==3.3.1"  # CPU build asked for on a GPU machine
