"""scripts/download_pretrained.sh: download from a local HTTP server, checksum pinning and
first-download recording, format check, and a clear failure when the server is unreachable."""
from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import paddle
import pytest

from testutil import RAPIDOCR_V3_DET, rapidocr_v3_det_onnx

MV3 = "MobileNetV3_large_x0_5_pretrained.pdparams"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _fake_mv3(path: Path, seed: int = 0):
    """A file with the shapes download_pretrained.sh expects of MobileNetV3-large x0.5 ImageNet weights."""
    rng = np.random.default_rng(seed)
    paddle.save({"conv1_weights": rng.standard_normal((8, 3, 3, 3)).astype("float32"),
                 "fc_weights": rng.standard_normal((1280, 1000)).astype("float32"),
                 "blocks_weights": rng.standard_normal((1_400_000,)).astype("float32")}, str(path))


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """``python -m http.server`` on 127.0.0.1 serving a folder (stopped at the end of the module)."""
    root = tmp_path_factory.mktemp("srv")
    _fake_mv3(root / MV3)
    (root / "bad").mkdir()
    (root / "bad" / MV3).write_bytes(b"this is an HTML error page, not weights")
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
                             "--directory", str(root)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 20
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.1)
    try:
        yield f"http://127.0.0.1:{port}", root
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _run(root_dir: Path, dest: Path, *args: str, **env) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "PRETRAIN_DIR": str(dest), "PYTHON": sys.executable, "DOWNLOAD_TIMEOUT": "30", **env}
    return subprocess.run(["bash", str(root_dir / "scripts" / "download_pretrained.sh"), *args],
                          capture_output=True, text=True, env=full_env, timeout=120)


@pytest.mark.smoke
def test_download_records_and_reverifies_checksum(root_dir, server, tmp_path):
    url, srv = server
    dest = tmp_path / "pretrain_models"
    proc = _run(root_dir, dest, "mv3", BASE_URL=url)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    got = dest / MV3
    assert got.read_bytes() == (srv / MV3).read_bytes()
    sha = hashlib.sha256(got.read_bytes()).hexdigest()
    assert (dest / "SHA256SUMS").read_text().split() == [sha, MV3]
    assert not list(dest.glob("*.part*"))
    # second run: verified in place, nothing fetched
    proc = _run(root_dir, dest, "mv3", BASE_URL="http://127.0.0.1:9")
    assert proc.returncode == 0, proc.stderr
    assert "already present and verified" in proc.stdout
    # a pinned checksum that matches is accepted
    proc = _run(root_dir, tmp_path / "pinned", "mv3", PRETRAIN_URL_MV3=f"{url}/{MV3}", PRETRAIN_SHA256_MV3=sha)
    assert proc.returncode == 0, proc.stderr


def test_checksum_mismatch_installs_nothing(root_dir, server, tmp_path):
    url, srv = server
    dest = tmp_path / "pm"
    proc = _run(root_dir, dest, "mv3", BASE_URL=url, PRETRAIN_SHA256_MV3="0" * 64)
    assert proc.returncode != 0
    assert "checksum mismatch" in proc.stderr and "0" * 64 in proc.stderr
    assert not (dest / MV3).exists() and not list(dest.glob("*.part*"))

    # the file changed upstream after its checksum was recorded: reported, the good copy is kept
    assert _run(root_dir, dest, "mv3", BASE_URL=url).returncode == 0
    good = (dest / MV3).read_bytes()
    other = tmp_path / "other"
    other.mkdir()
    _fake_mv3(other / MV3, seed=1)
    (dest / MV3).unlink()
    proc = _run(root_dir, dest, "mv3", PRETRAIN_URL_MV3=(other / MV3).as_uri())
    assert proc.returncode != 0
    assert "recorded" in proc.stderr and "checksum mismatch" in proc.stderr
    assert not (dest / MV3).exists()
    assert hashlib.sha256(good).hexdigest() in (dest / "SHA256SUMS").read_text()


def test_not_a_weights_file_is_rejected(root_dir, server, tmp_path):
    url, _ = server
    dest = tmp_path / "pm"
    proc = _run(root_dir, dest, "mv3", BASE_URL=f"{url}/bad")
    assert proc.returncode != 0
    assert "not a loadable Paddle weights file" in proc.stderr
    assert not (dest / MV3).exists()


def test_offline_fails_clearly(root_dir, tmp_path):
    port = _free_port()  # nothing listens there
    dest = tmp_path / "pm"
    proc = _run(root_dir, dest, "all", BASE_URL=f"http://127.0.0.1:{port}")
    assert proc.returncode != 0
    for name in (MV3, "ResNet50_vd_ssld_pretrained.pdparams"):
        assert f"could not download http://127.0.0.1:{port}/{name}" in proc.stderr
        assert not (dest / name).exists()
    assert "No internet access?" in proc.stderr and "BASE_URL" in proc.stderr


def test_bad_argument(root_dir, tmp_path):
    proc = _run(root_dir, tmp_path, "vgg")
    assert proc.returncode != 0 and "unknown model 'vgg'" in proc.stderr


PPOCRV3_MEMBER = RAPIDOCR_V3_DET


@pytest.fixture(scope="module")
def ppocrv3_onnx() -> Path:
    return rapidocr_v3_det_onnx()


def test_ppocrv3_from_a_local_wheel_converts_and_reverifies(root_dir, ppocrv3_onnx, tmp_path):
    import zipfile

    wheel = tmp_path / "rapidocr_onnxruntime-1.2.13-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.write(ppocrv3_onnx, PPOCRV3_MEMBER)
    dest = tmp_path / "pm"
    proc = _run(root_dir, dest, "ppocrv3", PPOCRV3_WHEEL=str(wheel))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    full = paddle.load(str(dest / "PP-OCRv3_mobile_det.pdparams"))
    backbone = paddle.load(str(dest / "PP-OCRv3_mobile_det_backbone.pdparams"))
    dbfpn = paddle.load(str(dest / "PP-OCRv3_mobile_det_dbfpn.pdparams"))
    assert len(full) == 288 and 0 < len(backbone) < len(dbfpn) < len(full)
    mapping = (dest / "PP-OCRv3_mobile_det.mapping.tsv").read_text().splitlines()
    assert mapping[0].startswith("3439588c030faea3") and len(mapping) == 1 + 1 + 288
    # second run: found and not rebuilt; a local .onnx works too
    again = _run(root_dir, dest, "ppocrv3", PPOCRV3_ONNX="/nonexistent.onnx")
    assert again.returncode == 0 and "already present" in again.stdout
    proc = _run(root_dir, tmp_path / "pm2", "ppocrv3", PPOCRV3_ONNX=str(ppocrv3_onnx))
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "pm2" / "PP-OCRv3_mobile_det.pdparams").read_bytes() == \
        (dest / "PP-OCRv3_mobile_det.pdparams").read_bytes()


def test_ppocrv3_wrong_file_is_refused(root_dir, tmp_path):
    bad = tmp_path / "other.onnx"
    bad.write_bytes(b"not the detector")
    proc = _run(root_dir, tmp_path / "pm", "ppocrv3", PPOCRV3_ONNX=str(bad))
    assert proc.returncode == 1 and "checksum mismatch" in proc.stderr
    assert not (tmp_path / "pm" / "PP-OCRv3_mobile_det.pdparams").exists()
    proc = _run(root_dir, tmp_path / "pm", "ppocrv3", PPOCRV3_WHEEL=str(tmp_path / "missing.whl"))
    assert proc.returncode == 1 and "missing.whl: file not found" in proc.stderr
