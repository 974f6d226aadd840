"""Engine test helpers: a tiny generated detection dataset and a ``tools/train.py`` runner."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import List, Optional

import cv2
import numpy as np
import pytest

from testutil import last_line_json

ROOT = Path(__file__).resolve().parents[2]
TINY_CONFIG = ROOT / "tests" / "fixtures" / "configs" / "tiny_det.yml"  # shared with tests/reliability
# what the engine tests train with on top of it (before a test's own overrides, which win)
ENGINE_OVERRIDES = ("Global.save_epoch_step=1", "Global.eval_batch_step=[2,3]", "Global.eval_at_end=true",
                    "Global.seed=7", "Eval.dataset.transforms.2.DetResizeForTest.image_shape=[96,96]",
                    "Eval.loader.batch_size_per_card=1")


def _draw_image(rng: np.random.Generator, h: int, w: int):
    """Noisy background with 1-3 dark, striped, text-like rectangles; returns image and quads."""
    img = rng.integers(150, 230, size=(h, w, 3), dtype=np.uint8)
    quads = []
    for _ in range(int(rng.integers(1, 4))):
        bw, bh = int(rng.integers(w // 3, w * 2 // 3)), int(rng.integers(10, max(11, h // 4)))
        x0, y0 = int(rng.integers(2, w - bw - 2)), int(rng.integers(2, h - bh - 2))
        if any(not (x0 + bw < q[0][0] or q[1][0] < x0 or y0 + bh < q[0][1] or q[2][1] < y0) for q in quads):
            continue  # keep boxes disjoint
        color = tuple(int(c) for c in rng.integers(0, 60, 3))
        cv2.rectangle(img, (x0, y0), (x0 + bw, y0 + bh), color, -1)
        for sx in range(x0 + 3, x0 + bw - 2, 6):  # "letters"
            cv2.line(img, (sx, y0 + 2), (sx, y0 + bh - 2), (255, 255, 255), 1)
        quads.append([[x0, y0], [x0 + bw, y0], [x0 + bw, y0 + bh], [x0, y0 + bh]])
    return img, quads


def make_tiny_dataset(root: Path, n_train: int = 8, n_test: int = 4, seed: int = 0) -> Path:
    """``root/{train,test}.txt`` (PaddleOCR label files) and ``root/imgs/*.png`` (64..128 px)."""
    rng = np.random.default_rng(seed)
    (root / "imgs").mkdir(parents=True, exist_ok=True)
    for split, n in (("train", n_train), ("test", n_test)):
        lines = []
        for i in range(n):
            h, w = int(rng.integers(64, 129)), int(rng.integers(64, 129))
            img, quads = _draw_image(rng, h, w)
            name = f"imgs/{split}_{i}.png"
            cv2.imwrite(str(root / name), img)
            label = [{"transcription": f"w{j}", "points": q} for j, q in enumerate(quads)]
            lines.append(f"{name}\t{json.dumps(label)}")
        (root / f"{split}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> Path:
    return make_tiny_dataset(tmp_path_factory.mktemp("engine_data"))


def tiny_overrides(data: Path, out: Path, *extra: str) -> List[str]:
    return [f"Train.dataset.data_dir={data}", f"Train.dataset.label_file_list=[{data / 'train.txt'}]",
            f"Eval.dataset.data_dir={data}", f"Eval.dataset.label_file_list=[{data / 'test.txt'}]",
            *ENGINE_OVERRIDES, f"Global.save_model_dir={out}", *extra]


def train_cmd(overrides: List[str], nproc: int = 1, log_dir: Optional[Path] = None) -> List[str]:
    cmd = [sys.executable]
    if nproc > 1:
        cmd += ["-m", "paddle.distributed.launch", "--nproc_per_node", str(nproc), "--max_restart", "0"]
        if log_dir is not None:
            cmd += ["--log_dir", str(log_dir)]
    return cmd + [str(ROOT / "tools" / "train.py"), "-c", str(TINY_CONFIG), "-o", *overrides]


def run_train(overrides: List[str], nproc: int = 1, log_dir: Optional[Path] = None, timeout: float = 240,
              ) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.run(train_cmd(overrides, nproc, log_dir), cwd=str(ROOT), env=env, capture_output=True,
                          text=True, timeout=timeout)


def read_events(path: Path) -> List[dict]:
    return [json.loads(ln) for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]


class TrainCLI:
    """Helpers handed to tests through the ``cli`` fixture (conftest modules are not importable)."""

    config = TINY_CONFIG
    make_dataset = staticmethod(make_tiny_dataset)
    overrides = staticmethod(tiny_overrides)
    cmd = staticmethod(train_cmd)
    run = staticmethod(run_train)
    last_json = staticmethod(last_line_json)  # the tools' last stdout line, one JSON object
    events = staticmethod(read_events)


@pytest.fixture(scope="session")
def cli() -> TrainCLI:
    return TrainCLI()
