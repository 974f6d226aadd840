"""scripts/train.sh: argument parsing, device / node bookkeeping, printed total batch and
learning rate, the linear LR rule, and the launch command (``--dry-run``)."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

MV3 = "configs/det/det_mv3_db.yml"
R50 = "configs/det/det_r50_vd_db++_icdar15.yml"


def _sh(root_dir: Path, *args: str, env=None) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "PYTHON": sys.executable, **(env or {})}
    return subprocess.run(["bash", str(root_dir / "scripts" / "train.sh"), *args], capture_output=True,
                          text=True, env=full_env, timeout=120, cwd=str(root_dir))


def _command(out: str) -> str:
    lines = out.splitlines()
    return lines[lines.index("train.sh: dry run; would run:") + 1]


@pytest.mark.smoke
def test_four_gpus_total_batch_and_lr_rule(root_dir):
    p = _sh(root_dir, MV3, "0,1,2,3", "--dry-run", "-o", "Global.epoch_num=3")
    assert p.returncode == 0, p.stderr
    assert "total batch     16 per card x 4 card(s) x 1 node(s) = 64" in p.stdout
    assert "learning rate   0.001 (constant)" in p.stdout
    assert "4 card(s) x 16 = total batch 64" in p.stdout
    cmd = _command(p.stdout)
    assert "-m paddle.distributed.launch" in cmd and "--gpus 0,1,2,3" in cmd
    assert cmd.endswith(f"tools/train.py -c {MV3} -o Global.epoch_num=3")


def test_scale_lr_on_one_card(root_dir):
    p = _sh(root_dir, MV3, "1", "--scale-lr", "--dry-run")
    assert p.returncode == 0, p.stderr
    assert "= 16" in p.stdout and "0.001 x 16 / 64 = 0.00025" in p.stdout
    cmd = _command(p.stdout)
    assert "paddle.distributed.launch" not in cmd
    assert "CUDA_VISIBLE_DEVICES=1" in cmd and cmd.endswith("-o Optimizer.lr.learning_rate=0.00025")
    # without --scale-lr the configured rate is kept and the suggestion printed
    p = _sh(root_dir, MV3, "1", "--dry-run")
    assert "pass --scale-lr to use 0.00025" in p.stdout and "-o" not in _command(p.stdout)


def test_multi_node_cpu_overrides_and_scaling(root_dir):
    p = _sh(root_dir, R50, "cpu", "--cpu-procs", "2", "--nnodes", "2", "--master", "10.0.0.1:8090", "--rank", "1",
            "--scale-lr", "--dry-run", "-o", "Train.loader.batch_size_per_card=2", "Global.seed=3")
    assert p.returncode == 0, p.stderr
    assert "total batch     2 per card x 2 card(s) x 2 node(s) = 8" in p.stdout
    assert "0.007 x 8 / 16 = 0.0035" in p.stdout and "(DecayLearningRate)" in p.stdout
    cmd = _command(p.stdout)
    assert re.search(r"--nproc_per_node 2 --nnodes 2 --master 10\.0\.0\.1:8090 --rank 1 tools/train\.py", cmd)
    assert cmd.endswith("-o Global.use_gpu=False Train.loader.batch_size_per_card=2 Global.seed=3 "
                        "Optimizer.lr.learning_rate=0.0035")


def test_ips_and_paddleocr_engine(root_dir):
    p = _sh(root_dir, "-c", MV3, "--gpus", "0,1", "--ips", "10.0.0.1,10.0.0.2", "--engine", "paddleocr", "--dry-run")
    assert p.returncode == 0, p.stderr
    assert "16 per card x 2 card(s) x 2 node(s) = 64" in p.stdout
    cmd = _command(p.stdout)
    assert "--gpus 0,1 --ips 10.0.0.1,10.0.0.2" in cmd and "ppocr_patches/run.py train -c" in cmd
    p = _sh(root_dir, MV3, "cpu", "--engine", "paddleocr", "--dry-run")
    assert "-m ppocr_patches.run train -c configs/det/det_mv3_db.yml -o Global.use_gpu=False" in _command(p.stdout)


@pytest.mark.parametrize("args, message", [
    (["--nnodes", "2"], "needs --master HOST:PORT"),
    (["--nnodes", "2", "--master", "h:1"], "needs --rank"),
    (["--nnodes", "2", "--master", "h:1", "--rank", "2"], "--rank 2 must be < --nnodes 2"),
    (["--master", "h:1", "--rank", "0"], "add --nnodes N"),
    (["--nnodes", "2", "--master", "nohostport", "--rank", "0"], "must be HOST:PORT"),
    (["--ips", "a,b", "--nnodes", "3"], "disagrees with --ips"),
    (["0,1", "--cpu-procs", "2"], "cannot be combined with GPUs"),
    (["gpu0"], "GPUS must be auto, cpu or device ids"),
    (["--bogus"], "unknown option '--bogus'"),
    (["--engine", "torch"], "--engine must be dbnetpp or paddleocr"),
    (["-o", "Global.epoch_num"], "must look like Section.key=value"),
    (["-o", "--gpus", "cpu"], "-o needs at least one Key=value"),
    (["-o", "Nope.x=1"], "section 'Nope' is not in the config"),
    (["--cpu-procs", "0"], "--cpu-procs must be a positive integer"),
])
def test_bad_arguments(root_dir, args, message):
    p = _sh(root_dir, MV3, *args, "--dry-run")
    assert p.returncode == 2
    assert message in p.stderr, p.stderr


def test_missing_config_and_scale_lr_without_reference(root_dir, tmp_path):
    p = _sh(root_dir, "configs/det/nope.yml", "--dry-run")
    assert p.returncode == 2 and "config file not found: configs/det/nope.yml" in p.stderr
    cfg = tmp_path / "noref.yml"
    text = (root_dir / MV3).read_text()
    noref = re.sub(r"^  reference_cards: .*\n", "", text, flags=re.M)
    assert noref != text  # Global.reference_cards removed
    cfg.write_text(noref)
    p = _sh(root_dir, str(cfg), "cpu", "--scale-lr", "--dry-run")
    assert p.returncode == 2 and "--ref-cards N" in p.stderr
    p = _sh(root_dir, str(cfg), "cpu", "--scale-lr", "--ref-cards", "2", "--dry-run")
    assert p.returncode == 0 and "0.001 x 16 / 32 = 0.0005" in p.stdout


def test_every_recipe_states_its_reference_card_count(root_dir):
    from dbnetpp.config import load_config

    for path in sorted((root_dir / "configs").rglob("*.yml")):
        ref = load_config(str(path))["Global"].get("reference_cards")
        assert isinstance(ref, int) and not isinstance(ref, bool) and ref > 0, path


def test_reference_cards_is_read_after_overrides(root_dir):
    p = _sh(root_dir, MV3, "cpu", "--scale-lr", "--dry-run", "-o", "Global.reference_cards=2")
    assert p.returncode == 0 and "0.001 x 16 / 32 = 0.0005" in p.stdout
    p = _sh(root_dir, MV3, "cpu", "--dry-run", "-o", "Global.reference_cards=0")
    assert p.returncode == 2 and "Global.reference_cards" in p.stderr and "positive integer" in p.stderr


def test_demo_dry_run_without_icdar(root_dir, tmp_path):
    """The demo branch (tools/demo.py) in a checkout without ICDAR2015: scripts/ copied, the rest linked."""
    shutil.copytree(root_dir / "scripts", tmp_path / "scripts")
    for name in ("configs", "tools"):
        (tmp_path / name).symlink_to(root_dir / name)
    p = _sh(tmp_path, "cpu", "--dry-run", env={"DEMO_TRAIN": "8"})
    assert p.returncode == 0, p.stderr
    assert "DEMO on SYNTHETIC data" in p.stdout and "tools/demo.py -c configs/det/cpu/demo_mv3_db.yml" in p.stdout
    cmds = p.stdout.split("would run:")[1].splitlines()[1:]
    assert len(cmds) == 4, p.stdout
    gen, prep, train, evaluate = cmds
    # DEMO_TRAIN overrides Global.demo_dataset (train 192 test 24 size 256) of the demo config
    assert "tools/make_synth_dataset.py --dst ./train_data/synth_demo/raw --train 8 --test 24 --size 256" in gen
    assert "--src ./train_data/synth_demo/raw --dst ./train_data/synth_demo/text_localization" in prep
    assert "tools/train.py -c configs/det/cpu/demo_mv3_db.yml -o Global.use_gpu=False" in train
    assert "Train.dataset" not in train  # the config already reads ./train_data/synth_demo
    assert evaluate.endswith("Global.checkpoints=./output/demo_mv3_db/latest")
    assert not (tmp_path / "train_data").exists()
    p = _sh(tmp_path, "cpu", "--dry-run", env={"DEMO_SIZE": "x"})
    assert p.returncode == 2 and "--size" in p.stderr


@pytest.mark.slow
def test_demo_runs_end_to_end_without_noise(root_dir, tmp_path):
    """`bash scripts/train.sh` on a CPU checkout without ICDAR2015 (scripts/ copied, the rest linked), on a tiny
    synthetic set: the four steps run, the summary, the pictures and the JSON line come out, and none of its
    processes (the launcher, the trainers, the evaluation) prints Paddle's ccache notice or launcher INFO."""
    shutil.copytree(root_dir / "scripts", tmp_path / "scripts")
    for name in ("configs", "tools"):
        (tmp_path / name).symlink_to(root_dir / name)
    full_env = {**os.environ, "PYTHON": sys.executable, "DEMO_TRAIN": "8", "DEMO_TEST": "2", "DEMO_SIZE": "64"}
    p = subprocess.run(["bash", "scripts/train.sh", "cpu", "-o", "Global.epoch_num=1", "Train.loader.num_workers=0",
                        "Eval.loader.num_workers=0"], capture_output=True, text=True, env=full_env, timeout=600,
                       cwd=str(tmp_path))
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    out = p.stdout + p.stderr
    assert "ccache" not in out and "LAUNCH INFO" not in out, out[-3000:]
    assert "train.sh: demo (synthetic data) precision " in p.stdout
    assert sorted(f.name for f in (tmp_path / "output" / "demo_mv3_db" / "pictures").iterdir()) == \
        ["000_img_1.png", "001_img_2.png"]


def test_cpu_default_is_one_process_per_core_with_the_batch_split(root_dir):
    """On CPU the config's batch is split over one process per core (same total batch and lr)."""
    cores = len(os.sched_getaffinity(0))
    p = _sh(root_dir, MV3, "cpu", "--dry-run")  # batch_size_per_card 16
    assert p.returncode == 0, p.stderr
    procs = max(n for n in range(1, cores + 1) if 16 % n == 0)
    assert f"= {16}" in p.stdout.split("total batch")[1].splitlines()[0]  # total batch unchanged
    cmd = _command(p.stdout)
    if procs > 1:
        assert f"--nproc_per_node {procs}" in cmd and f"Train.loader.batch_size_per_card={16 // procs}" in cmd
        assert f"{procs} processes x batch {16 // procs}" in p.stdout
    else:
        assert "paddle.distributed.launch" not in cmd
    # --cpu-procs N keeps per-process batches (N x the config's batch), and 1 means one plain process
    p = _sh(root_dir, MV3, "cpu", "--cpu-procs", "1", "--dry-run")
    cmd = _command(p.stdout)
    assert p.returncode == 0 and "paddle.distributed.launch" not in cmd and "batch_size_per_card" not in cmd
    p = _sh(root_dir, MV3, "cpu", "--cpu-procs", "2", "--dry-run")
    assert "--nproc_per_node 2" in _command(p.stdout) and "16 per card x 2 card(s) x 1 node(s) = 32" in p.stdout


def test_help_prints_the_whole_header(root_dir):
    p = _sh(root_dir, "--help")
    assert p.returncode == 0
    lines = p.stdout.splitlines()
    assert lines[0].startswith("Train a DBNet") and lines[-1].startswith("Environment:")
    assert "set -euo" not in p.stdout
