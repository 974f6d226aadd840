"""Generate a small synthetic scene-text dataset in the official ICDAR2015 layout.

    python tools/make_synth_dataset.py --dst train_data/synth_icdar --train 200 --test 50 --size 320

writes ``ch4_training_images/img_K.jpg``, ``ch4_training_localization_transcription_gt/gt_img_K.txt``
(UTF-8 with BOM, LF), ``ch4_test_images/img_K.jpg`` and ``Challenge4_Test_Task1_GT/gt_img_K.txt``
(no BOM, CRLF), K = 1..N, plus ``synth_info.json``.  Output is identical for the same
arguments.  An existing dataset is only replaced with ``--force``, and only one this tool
made.  The last line printed is a JSON object with the counts.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time

import cv2

from dbnetpp.cli import run_tool
from dbnetpp.errors import UsageError
from dbnetpp.synth import INFO_FILE, SceneGenerator, SynthConfig, draw_gt, gt_file_bytes, montage

SPLITS = (
    # name, split id (seed stream), image folder, GT folder, BOM, CRLF
    ("train", 0, "ch4_training_images", "ch4_training_localization_transcription_gt", True, False),
    ("test", 1, "ch4_test_images", "Challenge4_Test_Task1_GT", False, True),
)


def parse_size(text: str):
    """``320`` -> (320, 320); ``480x320`` -> (480, 320) as (width, height)."""
    try:
        parts = [int(p) for p in text.lower().split("x")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected N or WxH, got {text!r}") from None
    if len(parts) == 1:
        parts = parts * 2
    if len(parts) != 2 or min(parts) < 64:
        raise argparse.ArgumentTypeError(f"expected N or WxH with sides >= 64, got {text!r}")
    return parts[0], parts[1]


def prepare_dst(dst: str, force: bool) -> None:
    """Refuse to overwrite existing output unless ``force`` and it is ours."""
    existing = [d for _, _, img_dir, gt_dir, _, _ in SPLITS for d in (img_dir, gt_dir)
                if os.path.isdir(os.path.join(dst, d)) and os.listdir(os.path.join(dst, d))]
    if not existing:
        return
    if not force:
        raise UsageError(f"{dst} already holds a dataset ({', '.join(existing)}); pass --force to replace it")
    if not os.path.isfile(os.path.join(dst, INFO_FILE)):
        raise UsageError(f"{dst} holds {', '.join(existing)} but no {INFO_FILE}, so it was not made by this tool; "
                         f"refusing to delete it even with --force")
    for _, _, img_dir, gt_dir, _, _ in SPLITS:
        for d in (img_dir, gt_dir):
            shutil.rmtree(os.path.join(dst, d), ignore_errors=True)


def write_split(gen: SceneGenerator, dst: str, seed: int, split, count: int, previews: list) -> dict:
    name, split_id, img_dir, gt_dir, bom, crlf = split
    os.makedirs(os.path.join(dst, img_dir), exist_ok=True)
    os.makedirs(os.path.join(dst, gt_dir), exist_ok=True)
    boxes = dontcare = 0
    for k in range(1, count + 1):
        sample = gen.generate((seed, split_id, k))
        ok, jpg = cv2.imencode(".jpg", sample.image, [cv2.IMWRITE_JPEG_QUALITY, sample.jpeg_quality])
        if not ok:
            raise RuntimeError(f"JPEG encoding failed for {name} image {k}")
        with open(os.path.join(dst, img_dir, f"img_{k}.jpg"), "wb") as f:
            f.write(jpg.tobytes())
        content = gt_file_bytes(((w.quad, w.transcription) for w in sample.words), bom=bom, crlf=crlf)
        with open(os.path.join(dst, gt_dir, f"gt_img_{k}.txt"), "wb") as f:
            f.write(content)
        boxes += len(sample.words)
        dontcare += sum(w.ignore for w in sample.words)
        if name == "train" and len(previews) < 6:
            previews.append(draw_gt(sample))
    return {"images": count, "boxes": boxes, "dontcare": dontcare}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dst", required=True, help="output folder (created)")
    ap.add_argument("--train", type=int, default=200, help="number of training images")
    ap.add_argument("--test", type=int, default=50, help="number of test images")
    ap.add_argument("--size", type=parse_size, default=(320, 320), help="image size: N (square) or WxH")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--force", action="store_true", help="replace a dataset this tool made before")
    ap.add_argument("--preview", default=None, help="also save a PNG of 6 training images with GT drawn")
    args = ap.parse_args(argv)
    if args.train < 1 or args.test < 1:
        ap.error("--train and --test must be at least 1")
    if args.seed < 0:
        ap.error("--seed must be >= 0")
    return run_tool("make_synth_dataset.py", lambda: make(args))


def make(args: argparse.Namespace) -> int:
    start = time.time()
    prepare_dst(args.dst, args.force)
    width, height = args.size
    gen = SceneGenerator(SynthConfig(width=width, height=height))
    previews: list = []
    counts = {}
    for split in SPLITS:
        n = args.train if split[0] == "train" else args.test
        counts[split[0]] = write_split(gen, args.dst, args.seed, split, n, previews)
        c = counts[split[0]]
        print(f"{split[0]}: {c['images']} images, {c['boxes']} boxes ({c['dontcare']} ###) -> "
              f"{os.path.join(args.dst, split[2])}, {os.path.join(args.dst, split[3])}")
    info = {"generator": "dbnetpp.synth", "seed": args.seed, "size": [width, height], **counts}
    with open(os.path.join(args.dst, INFO_FILE), "w", encoding="utf-8") as f:
        json.dump(info, f, indent=1)
        f.write("\n")
    if args.preview:
        cv2.imwrite(args.preview, montage(previews))
        print(f"preview: {args.preview}")
    elapsed = time.time() - start
    print(f"done in {elapsed:.1f} s")
    print(json.dumps({"dst": args.dst, "size": [width, height], "seed": args.seed,
                      "train_images": counts["train"]["images"], "train_boxes": counts["train"]["boxes"],
                      "train_dontcare": counts["train"]["dontcare"], "test_images": counts["test"]["images"],
                      "test_boxes": counts["test"]["boxes"], "test_dontcare": counts["test"]["dontcare"],
                      "seconds": round(elapsed, 2)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
