"""Learning check: overfit a few real ICDAR2015 training images on CPU and evaluate on the same images.

    python benchmarks/learning.py --data /path/to/icdar2015 --images 10 [--minutes 60] [--target 0.9]

``--data`` is the official ICDAR2015 layout (``ch4_training_images/``,
``ch4_training_localization_transcription_gt/``).  The first ``--images`` training images (by number)
are converted with ``tools/prepare_icdar2015.py`` and trained on with the project trainer
(``tools/train.py``, from scratch) using ``--config`` (default the tiny DBNet recipe) changed for
overfitting: no augmentation, every image resized to ``--size`` (default 544x960, about three quarters
of the images' 720x1280; training and evaluation see the same geometry) or, with ``--crop N``, random
NxN crops; a constant learning rate after a short warm-up; evaluation on the same images every 10
epochs (the official protocol: IoU > 0.5, ``###`` don't-care).  Training stops as soon as an
evaluation reaches ``--target``, or after ``--minutes`` (SIGTERM: the trainer saves ``latest`` and
stops).  Measured on a 2-core CPU with the defaults: hmean 0.923 after 37 minutes (step 900).

The last line printed is one JSON object: the best ``hmean`` (with its ``precision`` / ``recall``),
``minutes`` (wall time from start until that evaluation), ``minutes_total``, ``steps``,
``reached_target`` and the settings.  Exit code 0 when the target was reached, 1 when not, 2 on error,
130 when interrupted (Ctrl-C or SIGTERM: the evaluations so far are still reported).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional

import yaml

from dbnetpp.cli import add_config_args, positive_float, run_tool, sigterm_as_interrupt, tool_parser
from dbnetpp.jsonline import read_events
from dbnetpp.launch import run_until
from dbnetpp.config import apply_overrides, load_yaml
from dbnetpp.data.icdar_gt import read_gt_file
from dbnetpp.errors import StepFailed, UsageError

ROOT = Path(__file__).resolve().parents[1]
TRAIN_IMAGES = "ch4_training_images"
TRAIN_GT = "ch4_training_localization_transcription_gt"
DROPPED = ("IaaAugment", "EastRandomCropData", "RandomCropImgMask", "Resize")
_IMAGE = re.compile(r"^img_(\d+)\.(?:jpg|jpeg|png|bmp)$", re.IGNORECASE)


def image_id(name: str) -> Optional[int]:
    """``img_12.jpg`` -> 12 (``None`` for other names)."""
    m = _IMAGE.match(name)
    return int(m.group(1)) if m else None


def parse_size(text: str) -> List[int]:
    """``736x1280`` -> [736, 1280] (height x width, multiples of 32)."""
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected HEIGHTxWIDTH, got {text!r}") from None
    if h <= 0 or w <= 0 or h % 32 or w % 32:
        raise argparse.ArgumentTypeError(f"height and width must be positive multiples of 32, got {text!r}")
    return [h, w]


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    ap = tool_parser(__doc__)
    ap.add_argument("--data", required=True, help="official ICDAR2015 layout folder")
    ap.add_argument("--images", type=int, default=10, help="number of training images (default 10)")
    ap.add_argument("--minutes", type=positive_float, default=60.0, help="training time budget (default 60)")
    ap.add_argument("--target", type=positive_float, default=0.9, help="stop once an evaluation reaches this hmean")
    add_config_args(ap, default=str(ROOT / "configs/det/cpu/det_mv3_db_tiny.yml"), example="Architecture.Neck.use_asf=true")
    ap.add_argument("--size", type=parse_size, default=[544, 960], help="train/eval image size HxW (default 544x960)")
    ap.add_argument("--batch", type=int, default=2, help="images per step (default 2)")
    ap.add_argument("--crop", type=int, default=0,
                    help="train on random NxN crops (EastRandomCropData) instead of whole images resized to --size")
    ap.add_argument("--lr", type=positive_float, default=0.002, help="constant learning rate after warm-up")
    ap.add_argument("--eval-every", type=int, default=0,
                    help="evaluate every N steps (default: every 10 epochs)")
    ap.add_argument("--workers", type=int, default=1, help="training data-loader workers (default 1)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--keep", help="work folder to keep (default: a temporary folder, removed at the end)")
    args = ap.parse_args(argv)
    if args.images < 1 or args.batch < 1 or args.minutes <= 0 or args.workers < 0:
        ap.error("--images and --batch must be >= 1, --minutes > 0, --workers >= 0")
    if args.crop < 0 or args.crop % 32:
        ap.error("--crop must be 0 or a positive multiple of 32")
    return args


def select_images(data: Path, n: int) -> List[int]:
    img_dir, gt_dir = data / TRAIN_IMAGES, data / TRAIN_GT
    if not img_dir.is_dir() or not gt_dir.is_dir():
        raise UsageError(f"{data} does not hold the official ICDAR2015 training folders {TRAIN_IMAGES}/ and "
                         f"{TRAIN_GT}/")
    ids = sorted(i for i in (image_id(p.name) for p in img_dir.iterdir()) if i is not None)
    if len(ids) < n:
        raise UsageError(f"{img_dir} holds {len(ids)} images, fewer than --images {n}")
    return ids[:n]


def make_subset(data: Path, ids: List[int], src: Path) -> int:
    """Symlink the chosen images and GT files into an official-layout folder; returns the care-box count."""
    (src / TRAIN_IMAGES).mkdir(parents=True)
    (src / TRAIN_GT).mkdir(parents=True)
    care = 0
    for i in ids:
        img = next(p for p in (data / TRAIN_IMAGES).iterdir() if image_id(p.name) == i)
        gt = data / TRAIN_GT / f"gt_img_{i}.txt"
        os.symlink(img.resolve(), src / TRAIN_IMAGES / img.name)
        os.symlink(gt.resolve(), src / TRAIN_GT / gt.name)
        care += sum(not box.ignore for box in read_gt_file(str(gt)))
    return care


def derive_config(args, prep: Path, out: Path, steps_per_epoch: int) -> Dict:
    cfg = load_yaml(args.config)
    label = str(prep / "train_icdar2015_label.txt")
    train_tf = []
    for item in cfg["Train"]["dataset"]["transforms"]:
        name = next(iter(item))
        if name in DROPPED:
            continue
        train_tf.append(item)
        if name == "DetLabelEncode":
            train_tf.append({"EastRandomCropData": {"size": [args.crop, args.crop], "max_tries": 10, "keep_ratio": True}}
                            if args.crop else {"Resize": {"size": list(args.size)}})
    eval_tf = []
    for item in cfg["Eval"]["dataset"]["transforms"]:
        name = next(iter(item))
        eval_tf.append({"DetResizeForTest": {"image_shape": list(args.size)}} if name == "DetResizeForTest" else item)
    every = args.eval_every or 10 * steps_per_epoch
    cfg["Global"].update(save_model_dir=str(out), epoch_num=100000, eval_batch_step=[0, every], eval_at_end=False,
                         print_batch_step=max(1, steps_per_epoch), pretrained_model=None, checkpoints=None,
                         save_epoch_step=100000, use_gpu=False, seed=args.seed, use_visualdl=False)
    cfg["Train"]["dataset"].update(data_dir=str(prep), label_file_list=[label], ratio_list=[1.0], transforms=train_tf)
    cfg["Train"]["loader"].update(batch_size_per_card=args.batch, shuffle=True, drop_last=False,
                                  num_workers=args.workers)
    cfg["Eval"]["dataset"].update(data_dir=str(prep), label_file_list=[label], transforms=eval_tf)
    cfg["Eval"]["loader"].update(num_workers=0)
    cfg["Optimizer"]["lr"] = {"name": "Const", "learning_rate": args.lr, "warmup_epoch": 2}
    return apply_overrides(cfg, args.opt, file=args.config)


def train(args, cfg_path: Path, out: Path, log_path: Path) -> Dict:
    start = time.time()
    metrics = out / "metrics.jsonl"

    def target_reached(_pid: int) -> Optional[str]:
        best = max((e["hmean"] for e in read_events(metrics, "eval")), default=0.0)
        return "target reached" if best >= args.target else None

    with open(log_path, "w", encoding="utf-8") as log:
        ended = run_until([sys.executable, str(ROOT / "tools/train.py"), "-c", str(cfg_path)], log,
                          start + args.minutes * 60, stop_when=target_reached, cwd=str(ROOT))
    end = time.time()
    if ended.returncode not in (0, 128 + signal.SIGTERM, 130, -signal.SIGTERM):
        raise StepFailed.from_log("tools/train.py", ended.returncode, log_path, lines=20)
    evals = read_events(metrics, "eval")
    trains = read_events(metrics, "train")
    return {"evals": evals, "steps": max((e["global_step"] for e in trains + evals), default=0),
            "start": start, "end": end, "reason": ended.reason}


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    sigterm_as_interrupt()
    return run_tool("benchmarks/learning.py", lambda: _main(args))


def _main(args) -> int:
    if args.keep and Path(args.keep).exists() and any(Path(args.keep).iterdir()):
        raise UsageError(f"--keep folder {args.keep} is not empty")
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench_learning_"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        data = Path(args.data)
        ids = select_images(data, args.images)
        care = make_subset(data, ids, work / "src")
        prep = work / "prep"
        with open(work / "prepare.log", "w", encoding="utf-8") as log:
            rc = subprocess.run([sys.executable, str(ROOT / "tools/prepare_icdar2015.py"), "--src", str(work / "src"),
                                 "--dst", str(prep), "--splits", "train", "--symlink", "--no-progress"], cwd=ROOT,
                                stdout=log, stderr=subprocess.STDOUT).returncode
        if rc != 0:
            raise StepFailed.from_log("tools/prepare_icdar2015.py", rc, work / "prepare.log")
        steps_per_epoch = -(-args.images // args.batch)
        cfg = derive_config(args, prep, work / "out", steps_per_epoch)
        cfg_path = work / "config.yml"
        with open(cfg_path, "w", encoding="utf-8") as f:
            yaml.safe_dump(cfg, f, sort_keys=False)
        print(f"overfitting {args.images} ICDAR2015 training images (img_{ids[0]}..img_{ids[-1]}, {care} care boxes) "
              f"at {args.size[0]}x{args.size[1]}, batch {args.batch}, lr {args.lr}, for at most {args.minutes:g} min "
              f"or until hmean >= {args.target}; log: {work / 'train.log'}", flush=True)
        res = train(args, cfg_path, work / "out", work / "train.log")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    evals = res["evals"]
    for e in evals:
        print(f"step {e['global_step']:>5}  {(e['time'] - res['start']) / 60:6.2f} min  precision {e['precision']:.4f}  "
              f"recall {e['recall']:.4f}  hmean {e['hmean']:.4f}")
    if not evals:
        if res["reason"] == "interrupted":
            print("interrupted before the first evaluation", file=sys.stderr)
            return 130
        raise UsageError("no evaluation ran within the budget (raise --minutes or lower --eval-every)")
    best = max(evals, key=lambda e: (e["hmean"], -e["global_step"]))
    reached = best["hmean"] >= args.target
    print(f"{res['reason']}: best hmean {best['hmean']:.4f} at step {best['global_step']}")
    print(json.dumps({"hmean": best["hmean"], "precision": best["precision"], "recall": best["recall"],
                      "minutes": round((best["time"] - res["start"]) / 60, 2),
                      "minutes_total": round((res["end"] - res["start"]) / 60, 2), "best_step": best["global_step"],
                      "steps": res["steps"], "reached_target": reached, "target": args.target, "images": args.images,
                      "care_boxes": care, "size": args.size, "batch": args.batch, "lr": args.lr,
                      "crop": args.crop, "config": os.path.relpath(args.config, ROOT), "overrides": args.opt}))
    if res["reason"] == "interrupted":
        return 130
    return 0 if reached else 1


if __name__ == "__main__":
    sys.exit(main())
