"""The shell entry points read every value as data: a config value, an override, an option or an environment
variable holding shell or Python code is refused with a message (exit 2), and the code never runs."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MV3 = "configs/det/det_mv3_db.yml"


def _cases(marker: Path):
    shell = f"$(touch {marker})"
    python = f"__import__('os').system('touch {marker}')"
    edits = [("learning_rate: 0.001", f'learning_rate: "{python}"', "Optimizer.lr.learning_rate"),
             ("learning_rate: 0.001", f'learning_rate: "0.001 * {python}"', "Optimizer.lr.learning_rate"),
             ("batch_size_per_card: 16", f'batch_size_per_card: "{shell}"', "batch_size_per_card"),
             ("batch_size_per_card: 16", 'batch_size_per_card: "a[$(touch X)]"', "batch_size_per_card"),
             ("reference_cards: 4", f'reference_cards: "{shell}"', "Global.reference_cards")]
    for old, new, needle in edits:
        yield "train.sh", {"edit": (old, new)}, ["cpu", "--scale-lr"], needle
    yield "train.sh", {}, ["cpu", "-o", f"Optimizer.lr.learning_rate={python}"], "Optimizer.lr.learning_rate"
    for option in ("--cpu-procs", "--nnodes", "--ref-cards"):
        yield "train.sh", {}, ["cpu", option, shell], option
    yield "train.sh", {}, ["cpu", "--nnodes", "2", "--master", "h:1", "--rank", "a[$(touch X)]"], "--rank"
    yield "train.sh", {}, [shell], "GPUS must be"
    yield "eval.sh", {}, ["cpu", "--cpu-procs", shell], "--cpu-procs"
    yield "train.sh", {"env": {"DEMO_TRAIN": shell}, "demo": True}, ["cpu"], "--train"


@pytest.mark.parametrize("dry_run", [True, False], ids=["dry-run", "run"])
def test_values_are_data_never_code(tmp_path, dry_run):
    marker = tmp_path / "PWNED"
    cases = list(_cases(marker))
    if not dry_run:  # validation comes before anything runs either way: a few cases suffice without --dry-run
        cases = cases[:2] + cases[5:7]
    for script, how, args, needle in cases:
        cwd, config = ROOT, MV3
        if "edit" in how:
            old, new = how["edit"]
            text = (ROOT / MV3).read_text()
            assert old in text, old
            config = str(tmp_path / "edited.yml")
            Path(config).write_text(text.replace(old, new, 1))
        if how.get("demo"):  # a checkout without ICDAR2015 and without a config: the demo branch
            cwd = tmp_path / "co"
            if not cwd.exists():
                cwd.mkdir()
                for name in ("scripts", "configs", "tools"):
                    (cwd / name).symlink_to(ROOT / name)
            config = ""
        env = {**os.environ, "PYTHON": sys.executable, "PATH": f"{tmp_path}:{os.environ['PATH']}",
               **how.get("env", {})}
        cmd = ["bash", f"scripts/{script}", *([config] if config else []), *args,
               "-o", f"Global.save_model_dir={tmp_path / 'out'}", *(["--dry-run"] if dry_run else [])]
        p = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=env, timeout=120)
        shown = " ".join(cmd[2:])
        assert p.returncode == 2, f"{shown}: exit {p.returncode}\n{p.stdout[-1500:]}{p.stderr[-1500:]}"
        assert needle in p.stderr, f"{shown}: {p.stderr[-1500:]}"
        assert not marker.exists(), f"{shown} ran the code in a value"
        assert not (tmp_path / "out").exists() and not (cwd / "X").exists()


def test_download_timeout_is_a_number(tmp_path):
    marker = tmp_path / "PWNED"
    env = {**os.environ, "PYTHON": sys.executable, "DOWNLOAD_TIMEOUT": f"$(touch {marker})",
           "PRETRAIN_DIR": str(tmp_path / "weights")}
    p = subprocess.run(["bash", "scripts/download_pretrained.sh", "mv3"], cwd=ROOT, capture_output=True, text=True,
                       env=env, timeout=60)
    assert p.returncode != 0 and "DOWNLOAD_TIMEOUT must be a positive number" in p.stderr
    assert not marker.exists() and not (tmp_path / "weights").exists()
