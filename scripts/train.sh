#!/usr/bin/env bash
# Train a DBNet / DBNet++ recipe on one or more GPUs, on CPU, or across several machines.
#
#   bash scripts/train.sh [CONFIG] [GPUS|auto|cpu] [options] [-o Key=value ...]
#
# With no CONFIG, what fits the machine (it prints what it chose, and why):
#   * a GPU (or GPU ids given), several nodes or --engine paddleocr: configs/det/det_mv3_db++_icdar15.yml
#     on ICDAR2015 (prepared in ./train_data/icdar2015/text_localization/);
#   * CPU only, ICDAR2015 prepared: configs/det/cpu/ft_mv3_db++_icdar15_60min.yml, DBNet++ fine-tuned from
#     PP-OCRv3's detector in about an hour on two cores (the expected time is printed); PP-OCRv3's weights
#     are fetched first when missing (scripts/download_pretrained.sh ppocrv3); it validates on the 100
#     images held out by tools/prepare_icdar2015.py --val 100;
#   * CPU only, no ICDAR2015: a demo on a small synthetic dataset (tools/demo.py: generated, prepared,
#     trained and evaluated in a few minutes; its size is Global.demo_dataset of
#     configs/det/cpu/demo_mv3_db.yml); the last line it prints is a JSON object with precision, recall
#     and hmean.
# An explicit CONFIG is always obeyed.
#
# GPUS: auto (default: every GPU nvidia-smi lists, else CPU), cpu, or device ids such as 0,1,2,3.
# Options:
#   -c CONFIG              same as the positional CONFIG
#   -o Key=value ...       PaddleOCR-style config overrides, passed to the trainer (several allowed)
#   --scale-lr             apply the linear LR scaling rule: lr x (total batch / the config's reference
#                          total batch), the reference being Global.reference_cards cards x the config's
#                          batch_size_per_card (read after -o, so -o Global.reference_cards=N sets it)
#   --ref-cards N          reference card count, in place of the config's Global.reference_cards
#   --cpu-procs N          N CPU processes per node (gloo all-reduce), each with the config's batch.
#                          Default on CPU: one process per core (Paddle's CPU kernels keep one core busy
#                          per process), the config's batch split evenly over them, so the run trains
#                          exactly as one process would (same total batch and learning rate), faster
#   --nnodes N --master HOST:PORT --rank R
#                          multi-node: run this same command on every node with its own --rank
#   --ips IP1,IP2,...      multi-node, PaddleOCR style (each node finds its rank from its own IP)
#   --log-dir DIR          per-process logs of paddle.distributed.launch (default <save_model_dir>/launch_logs)
#   --engine dbnetpp|paddleocr
#                          paddleocr: run upstream PaddleOCR's trainer through `python -m ppocr_patches.run`
#   --dry-run              print the settings and the launch command, run nothing
#   -h, --help
# Every value is parsed as data and checked before anything runs (dbnetpp/launch.py does the planning);
# errors exit with code 2. Signals sent to this command (SIGTERM, SIGINT, SIGHUP) are passed on to the run.
# Environment: PYTHON (default .venv/bin/python), DEMO_TRAIN / DEMO_TEST / DEMO_SIZE (demo dataset).
set -euo pipefail
# shellcheck source=scripts/lib/common.sh
source "$(dirname "$0")/lib/common.sh"
exec_launcher "$0" train "$@"
