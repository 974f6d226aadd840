"""Fixtures for the upstream-route tests: a prepared PaddleOCR release/2.5 checkout, a tiny
synthetic dataset in PaddleOCR's label format, small configs and a runner for the launcher.

The tests run when ``PADDLEOCR_DIR`` names a release/2.5 checkout (or ``third_party/PaddleOCR``
exists) and skip otherwise.  A checkout that the overlay has not been applied to is copied to a
temporary folder first and prepared there, so the given folder is never written to.
"""
from __future__ import annotations

import copy
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Optional

import cv2
import numpy as np
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PROBE = Path(__file__).resolve().parent / "ppocr_probe.py"
DB_CONFIG_IN_CHECKOUT = "configs/det/det_mv3_db.yml"
DBPP_CONFIG = ROOT / "configs" / "det" / "det_mv3_db++_icdar15.yml"
IMAGE_SIZE = 256


def _overlay_version() -> str:
    text = (ROOT / "ppocr_patches" / "__init__.py").read_text(encoding="utf-8")
    return re.search(r'OVERLAY_VERSION = "([^"]+)"', text).group(1)


def _stamp_ok(root: Path) -> bool:
    stamp = root / ".ppocr_patches.json"
    if not stamp.is_file():
        return False
    try:
        return json.loads(stamp.read_text(encoding="utf-8")).get("overlay_version") == _overlay_version()
    except ValueError:
        return False


def launcher_env(checkout: Path) -> Dict[str, str]:
    env = dict(os.environ, PADDLEOCR_DIR=str(checkout), PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
    return env


def run_checked(cmd: List[str], env: Dict[str, str], cwd: Path, timeout: int = 600) -> str:
    """Run ``cmd``; on failure, fail the test with the output's tail.  Returns stdout + stderr."""
    # own session: upstream's data loader installs a SIGTERM handler that kills its process group
    proc = subprocess.run(cmd, env=env, cwd=str(cwd), capture_output=True, text=True, timeout=timeout,
                          start_new_session=True)
    out = proc.stdout + proc.stderr
    if proc.returncode != 0:
        tail = "\n".join(out.splitlines()[-40:])
        pytest.fail(f"{' '.join(cmd)} exited {proc.returncode}:\n{tail}", pytrace=False)
    return out


def _route_requirements() -> List[str]:
    lines = (ROOT / "ppocr_patches" / "requirements.txt").read_text(encoding="utf-8").splitlines()
    return [line.split("#")[0].strip() for line in lines if line.split("#")[0].strip()]


@pytest.fixture(scope="session")
def given_checkout() -> Path:
    raw = os.environ.get("PADDLEOCR_DIR")
    root = Path(raw) if raw else ROOT / "third_party" / "PaddleOCR"
    if not raw and not root.is_dir():
        pytest.skip("upstream route not set up: PADDLEOCR_DIR is unset and third_party/PaddleOCR is absent "
                    "(bash init.sh --with-paddleocr, or PADDLEOCR_DIR=/path/to/PaddleOCR-release-2.5)")
    if not (root / "ppocr").is_dir() or not (root / "tools" / "train.py").is_file():
        pytest.skip(f"PADDLEOCR_DIR={root} is not a PaddleOCR checkout (no ppocr/ or tools/train.py)")
    missing = [req.split("==")[0] for req in _route_requirements() if importlib.util.find_spec(req.split("==")[0]) is None]
    if missing:
        pytest.skip(f"the route's requirements are not installed ({', '.join(missing)}): "
                    f"pip install -r ppocr_patches/requirements.txt, or bash scripts/setup_paddleocr.sh")
    if not (root / DB_CONFIG_IN_CHECKOUT).is_file():
        pytest.skip(f"{root / DB_CONFIG_IN_CHECKOUT} is missing (a full release/2.5 tree has it)")
    return root.resolve()


@pytest.fixture(scope="session")
def checkout(given_checkout: Path, tmp_path_factory) -> Path:
    """The prepared checkout: the given one if already applied, else an applied temporary copy."""
    if _stamp_ok(given_checkout):
        return given_checkout
    copy_root = tmp_path_factory.mktemp("ppocr") / "PaddleOCR"
    shutil.copytree(given_checkout, copy_root, ignore=shutil.ignore_patterns(".git", "__pycache__", "output"))
    run_checked([sys.executable, "-m", "ppocr_patches.apply", "--no-smoke", str(copy_root)],
                launcher_env(copy_root), ROOT)
    return copy_root


# ---- a tiny synthetic dataset -------------------------------------------------------------------------
def _quad(cx, cy, w, h, angle):
    pts = cv2.boxPoints(((cx, cy), (w, h), angle))
    # clockwise from the top-left corner, as ICDAR2015 stores them
    start = int(np.argmin(pts.sum(axis=1)))
    pts = np.roll(pts, -start, axis=0)
    if np.cross(pts[1] - pts[0], pts[2] - pts[1]) < 0:
        pts = pts[[0, 3, 2, 1]]
    return np.round(pts).astype(int)


def _draw_image(rng, size):
    img = rng.integers(170, 256, (size, size, 3)).astype(np.uint8)
    img = cv2.GaussianBlur(img, (5, 5), 0)
    labels = []
    for j in range(int(rng.integers(2, 5))):
        w, h = float(rng.uniform(60, 150)), float(rng.uniform(18, 36))
        cx, cy = float(rng.uniform(w / 2 + 8, size - w / 2 - 8)), float(rng.uniform(h / 2 + 8, size - h / 2 - 8))
        quad = _quad(cx, cy, w, h, float(rng.uniform(-12, 12)))
        color = tuple(int(c) for c in rng.integers(0, 90, 3))
        cv2.fillPoly(img, [quad.reshape(-1, 1, 2).astype(np.int32)], color)
        for k in range(4):  # light strokes, so the box looks a little like text
            x = int(cx - w / 2 + (k + 0.5) * w / 4)
            cv2.line(img, (x, int(cy - h / 3)), (x, int(cy + h / 3)), (230, 230, 230), 2)
        text = "###" if j == 3 else f"word{j}"
        labels.append({"transcription": text, "points": quad.tolist()})
    return img, labels


@pytest.fixture(scope="session")
def synth_data(tmp_path_factory) -> Dict[str, Path]:
    """``root`` with ``train/``, ``test/`` images and PaddleOCR label files ``train.txt`` / ``test.txt``."""
    root = tmp_path_factory.mktemp("synth")
    rng = np.random.default_rng(2025)
    for split, count in (("train", 4), ("test", 3)):
        (root / split).mkdir()
        lines = []
        for i in range(count):
            img, labels = _draw_image(rng, IMAGE_SIZE)
            if split == "test" and i == count - 1:
                # one image-filling sign: an untrained model's single big box can match it, so the
                # metric comparison also covers matched boxes, not only false positives
                labels = [{"transcription": "sign", "points": [[6, 6], [IMAGE_SIZE - 6, 6],
                                                                [IMAGE_SIZE - 6, IMAGE_SIZE - 6], [6, IMAGE_SIZE - 6]]}]
            rel = f"{split}/img_{i + 1}.jpg"
            cv2.imwrite(str(root / rel), img)
            lines.append(f"{rel}\t{json.dumps(labels)}")
        (root / f"{split}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return {"root": root, "train": root / "train.txt", "test": root / "test.txt"}


def _set_transform(transforms: list, name: str, **args) -> None:
    for item in transforms:
        if name in item:
            item[name] = {**(item[name] or {}), **args}
            return
    raise KeyError(f"no {name} in the transforms")


def small_config(base: dict, data: Dict[str, Path], out_dir: Path, *, crop: int = 160,
                 augment: bool = True) -> dict:
    """``base`` shrunk to the synthetic data: CPU, no pretrained weights, batch 2, no workers."""
    cfg = copy.deepcopy(base)
    g = cfg["Global"]
    g.update(use_gpu=False, pretrained_model=None, checkpoints=None, epoch_num=1, print_batch_step=1,
             save_model_dir=str(out_dir), save_epoch_step=1, eval_batch_step=[0, 1000], use_visualdl=False,
             save_inference_dir=None, seed=1024)
    for mode, label in (("Train", data["train"]), ("Eval", data["test"])):
        cfg[mode]["dataset"].update(data_dir=str(data["root"]), label_file_list=[str(label)])
        cfg[mode]["loader"].update(num_workers=0, use_shared_memory=False)
    cfg["Train"]["loader"].update(batch_size_per_card=2, shuffle=False, drop_last=False)
    train_tf = cfg["Train"]["dataset"]["transforms"]
    if not augment:
        train_tf[:] = [t for t in train_tf if "IaaAugment" not in t]
    _set_transform(train_tf, "EastRandomCropData", size=[crop, crop])
    _set_transform(cfg["Eval"]["dataset"]["transforms"], "DetResizeForTest", image_shape=[IMAGE_SIZE, IMAGE_SIZE])
    return cfg


def write_yaml(cfg: dict, path: Path) -> Path:
    path.write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def base_configs(checkout: Path) -> Dict[str, dict]:
    """The two recipes: upstream's own det_mv3_db.yml and this project's DBNet++ MobileNetV3 one."""
    if not DBPP_CONFIG.is_file():
        pytest.skip(f"{DBPP_CONFIG} is missing")
    db = yaml.safe_load((checkout / DB_CONFIG_IN_CHECKOUT).read_text(encoding="utf-8"))
    dbpp = yaml.safe_load(DBPP_CONFIG.read_text(encoding="utf-8"))
    assert dbpp["Architecture"]["Neck"].get("use_asf") is True
    return {"db": db, "dbpp": dbpp}


class Route:
    """Helpers handed to the tests (test modules cannot import this conftest under importlib mode)."""

    root = ROOT
    probe_script = PROBE
    small_config = staticmethod(small_config)
    write_yaml = staticmethod(write_yaml)

    def __init__(self, checkout: Path):
        self.checkout = checkout

    def env(self) -> Dict[str, str]:
        return launcher_env(self.checkout)

    def run(self, cmd: List[str], cwd: Optional[Path] = None, timeout: int = 600) -> str:
        return run_checked(cmd, self.env(), cwd or ROOT, timeout)

    def launcher(self, *args: str, cwd: Optional[Path] = None) -> str:
        """``python -m ppocr_patches.run ARGS``."""
        return self.run([sys.executable, "-m", "ppocr_patches.run", *args], cwd)

    def script(self, name: str, *args: str, cwd: Optional[Path] = None) -> str:
        """``bash scripts/NAME ARGS`` with this interpreter."""
        env = dict(self.env(), PYTHON=sys.executable)
        return run_checked(["bash", str(ROOT / "scripts" / name), *args], env, cwd or ROOT)

    def probe(self, jobs_file: Path) -> str:
        return self.run([sys.executable, str(PROBE), str(jobs_file)])

    metrics = staticmethod(lambda log, marker: parse_metrics(log, marker))


@pytest.fixture(scope="session")
def route(checkout: Path) -> Route:
    return Route(checkout)


def parse_metrics(log: str, marker: str) -> Optional[Dict[str, float]]:
    """The last ``precision``/``recall``/``hmean`` that upstream logged after ``marker``."""
    pos = log.rfind(marker)
    if pos < 0:
        return None
    found = {}
    for key in ("precision", "recall", "hmean"):
        m = re.search(rf"\b{key}\s*[:]\s*([0-9.eE+-]+)", log[pos:])
        if m:
            found[key] = float(m.group(1))
    return found if len(found) == 3 else None
