"""Engine test helpers: a tiny generated detection dataset and a ``tools/train.py`` runner."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import List, Optional

import pytest

from testutil import last_line_json, load_module

ROOT = Path(__file__).resolve().parents[2]
TINY_CONFIG = ROOT / "tests" / "fixtures" / "configs" / "tiny_det.yml"  # shared with tests/reliability
CORPUS_SCRIPT = ROOT / "tests" / "fixtures" / "bad_inputs" / "make_corpus.py"
# what the engine tests train with on top of it (before a test's own overrides, which win)
ENGINE_OVERRIDES = ("Global.save_epoch_step=1", "Global.eval_batch_step=[2,3]", "Global.eval_at_end=true",
                    "Global.seed=7", "Eval.dataset.transforms.2.DetResizeForTest.image_shape=[96,96]",
                    "Eval.loader.batch_size_per_card=1")


def make_tiny_dataset(root: Path, n_train: int = 8, n_test: int = 4, seed: int = 0) -> Path:
    """``root/{train,test}.txt`` (PaddleOCR label files) and ``root/imgs/*.png`` (64..128 px): the clean
    dataset of the bad-input corpus (``tests/fixtures/bad_inputs/make_corpus.py``)."""
    corpus = load_module("bad_inputs_make_corpus", CORPUS_SCRIPT)
    return corpus.write_clean_dataset(root, n_train=n_train, n_test=n_test, seed=seed)


@pytest.fixture(scope="session")
def engine_data(tmp_path_factory) -> Path:
    """8 training + 4 test images with PaddleOCR label files (``tiny_data`` of tests/conftest.py is another
    set: ICDAR2015-prepared synthetic scenes)."""
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
