"""Fixtures for deployment tests: exported models (tiny random ones, and the PaddleOCR reference
weights), helpers to run the tools as a user would."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import List

import numpy as np
import paddle
import pytest

from dbnetpp.checkpoint import load_pretrained
from dbnetpp.config import load_config
from dbnetpp.deploy.export import export_model
from dbnetpp.modeling import build_model

from testutil import last_line_json, load_module


ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "deploy"
TINY_CONFIG = FIXTURES / "det_tiny_deploy.yml"
# reference model folder -> our recipe with the same architecture
REF_MODELS = {"det_mv3_db": ROOT / "configs" / "det" / "det_mv3_db.yml",
              "det_mv3_dbpp": ROOT / "configs" / "det" / "det_mv3_db++_icdar15.yml"}
# Random-init weights give checkerboard-like maps around 0.5 (no text-like blobs), so the
# interop tests lower the thresholds to these values to get dozens of boxes per image.
LOW_THRESHOLDS = {"det_mv3_db": {"thresh": 0.5, "box_thresh": 0.5},
                  "det_mv3_dbpp": {"thresh": 0.52, "box_thresh": 0.52}}


def _run_script(path: Path, args, cwd, timeout: int) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.run([sys.executable, str(path), *args], capture_output=True, text=True, cwd=cwd, env=env,
                          timeout=timeout)


def run_tool(script: str, *args: str, cwd=None, timeout: int = 600) -> subprocess.CompletedProcess:
    """Run ``tools/<script>`` with the test interpreter; returns the finished process."""
    return _run_script(ROOT / "tools" / script, args, cwd, timeout)


def run_benchmark(script: str, *args: str, cwd=None, timeout: int = 600) -> subprocess.CompletedProcess:
    """Run ``benchmarks/<script>`` with the test interpreter; returns the finished process."""
    return _run_script(ROOT / "benchmarks" / script, args, cwd, timeout)


def load_tool(script: str):
    """``tools/<script>`` as a module (for calling its ``main(argv)`` in-process)."""
    path = ROOT / "tools" / script
    return load_module(f"dbnetpp_tool_{path.stem}", path, fresh=True)


def tiny_model(seed: int = 7):
    cfg = load_config(str(TINY_CONFIG))
    paddle.seed(seed)
    model = build_model(cfg["Architecture"])
    model.eval()
    return cfg, model


@pytest.fixture(scope="session")
def tiny_export(tmp_path_factory) -> Path:
    """The tiny DBNet++ (random init, seed 7) exported with BN folding; no Eval section."""
    out = tmp_path_factory.mktemp("tiny_export")
    cfg, model = tiny_model()
    export_model(model, cfg, str(out))
    return out


def export_reference(name: str, ref_dir: Path, out: Path, thresholds=None, resize=None) -> Path:
    cfg = load_config(str(REF_MODELS[name]))
    if thresholds:
        cfg["PostProcess"].update(thresholds)
    model = build_model(cfg["Architecture"])
    load_pretrained(model, str(ref_dir / name / "weights.pdparams"), log=lambda *_: None)
    export_model(model, cfg, str(out), resize=resize)
    return out


@pytest.fixture(scope="session")
def ref_exports(ref_dir, tmp_path_factory):
    """{name: model_dir} of the PaddleOCR reference weights exported with our recipes, resize
    ``limit_side_len 960 / max`` (PaddleOCR inference's default) and lowered thresholds."""
    out = {}
    for name in REF_MODELS:
        out[name] = export_reference(name, ref_dir, tmp_path_factory.mktemp(name), LOW_THRESHOLDS[name],
                                     resize={"limit_side_len": 960, "limit_type": "max"})
    return out


@pytest.fixture(scope="session")
def icdar_images(icdar_dir) -> List[Path]:
    """Three ICDAR2015 test images."""
    files = [icdar_dir / "ch4_test_images" / f"img_{i}.jpg" for i in (1, 2, 3)]
    for f in files:
        if not f.is_file():
            pytest.skip(f"{f} missing")
    return files


def synthetic_image(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A BGR uint8 image with a few dark text-like bars on a light noisy background."""
    rng = np.random.default_rng(seed)
    img = (200 + rng.integers(0, 40, (h, w, 3))).astype(np.uint8)
    for k in range(4):
        y, x = int(rng.integers(0, h - 20)), int(rng.integers(0, max(w - 120, 1)))
        img[y:y + 14, x:x + 100] = 30
    return img


class Helpers:
    """Helpers handed to tests as a fixture (test modules cannot import a conftest by name)."""

    root = ROOT
    fixtures = FIXTURES
    tiny_config = TINY_CONFIG
    ref_models = REF_MODELS
    low_thresholds = LOW_THRESHOLDS
    run_tool = staticmethod(run_tool)
    run_benchmark = staticmethod(run_benchmark)
    load_tool = staticmethod(load_tool)
    last_json = staticmethod(last_line_json)  # the tools' last stdout line, one JSON object
    tiny_model = staticmethod(tiny_model)
    synthetic_image = staticmethod(synthetic_image)
    export_reference = staticmethod(export_reference)


@pytest.fixture(scope="session")
def helpers() -> Helpers:
    return Helpers()
