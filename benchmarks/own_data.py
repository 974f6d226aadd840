"""Own-data benchmark: ICDAR2015 training images as "your data", labelled as PPOCRLabel and Label Studio write
them, through ``tools/finetune.py``; the exported detector scored on the ICDAR2015 test set, by us and by
RapidOCR 3.x.

    python benchmarks/own_data.py [--icdar ./train_data/icdar2015/text_localization] [--images 200]
        [--minutes 20] [--work output/bench_own_data] [--deploy-venv .venv-deploy] [-o Key=value ...]

1. Takes ``--images`` training images (a seeded sample, seed 0, of ``train_icdar2015_label.txt`` in the
   prepared ICDAR2015 folder) and writes them as two labelled folders under ``--work``: ``ppocrlabel/``
   (the images, ``Label.txt`` with ``<folder>/<image>`` keys and ``difficult`` flags, ``fileState.txt``
   with every image checked) and ``labelstudio/`` (the images under Label Studio's upload names
   ``<8 hex>-img_N.jpg`` and a JSON export: one task per image, ``polygonlabels`` in percent of the image
   with a ``textarea`` transcription per region, ``###`` regions labelled ``ignore``).
2. Converts both (``dbnetpp.data.own_labels``) and checks that each gives back the GT: the same images,
   boxes and ignore flags, corners within ``--tolerance`` pixels (percent round trips).
3. Runs ``tools/finetune.py --data <work>/ppocrlabel --minutes M`` (its own validation split, training,
   validation scores and export).
4. Scores the export on the ICDAR2015 test set (``test_icdar2015_label.txt``): ``tools/infer_det.py``
   (Paddle Inference) then ``tools/eval_icdar2015.py``; and, when ``--deploy-venv`` holds RapidOCR 3.x,
   RapidOCR with the export's ONNX as its detector and the settings ``tools/finetune.py`` prints.

The last line printed is one JSON object: conversion checks, ``val`` (tools/finetune.py's validation
scores), ``test`` (ours), ``rapidocr`` (RapidOCR's, or the reason it was not run), minutes of each step.
Exit codes: 0 done, 1 a check failed, 2 bad input or a failed step.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import random
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from dbnetpp.cli import positive_float, run_tool, tool_parser
from dbnetpp.data.label_file import read_label_file
from dbnetpp.data.own_labels import convert
from dbnetpp.deploy.settings import rapidocr_params
from dbnetpp.errors import StepFailed, UsageError
from dbnetpp.jsonline import last_json_line

ROOT = Path(__file__).resolve().parents[1]

RAPIDOCR = r"""
import json, sys
import cv2
from rapidocr import RapidOCR
settings, out_file, images = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3:]
engine = RapidOCR(params={"Global.use_cls": False, "Global.use_rec": False, **settings})
with open(out_file, "w", encoding="utf-8") as f:
    for path in images:
        res = engine(cv2.imread(path), use_det=True, use_cls=False, use_rec=False)
        boxes = [] if res.boxes is None else [[[int(v) for v in p] for p in b] for b in res.boxes]
        f.write(path + "\t" + json.dumps([{"points": b} for b in boxes]) + "\n")
"""


def parse_args(argv=None) -> argparse.Namespace:
    p = tool_parser(__doc__)
    p.add_argument("--icdar", default="./train_data/icdar2015/text_localization",
                   help="prepared ICDAR2015 folder (tools/prepare_icdar2015.py)")
    p.add_argument("--images", type=int, default=200, help="training images used as your data (default 200)")
    p.add_argument("--minutes", type=positive_float, default=20.0, help="tools/finetune.py --minutes (default 20)")
    p.add_argument("--work", default="output/bench_own_data", help="output folder (must be new or empty)")
    p.add_argument("--deploy-venv", default=".venv-deploy", help="venv with rapidocr 3.x (scripts/setup_deploy_venv.sh)")
    p.add_argument("--test-limit", type=int, default=0, metavar="N",
                   help="score only the first N test images (a quick check; default: all 500)")
    p.add_argument("--tolerance", type=positive_float, default=1.0, help="pixels a converted corner may move (default 1)")
    p.add_argument("-o", "--opt", nargs="+", action="extend", default=[], metavar="Section.key=value",
                   help="passed to tools/finetune.py -o")
    return p.parse_args(argv)


def read_gt(label_file: Path) -> List[Tuple[str, List[Dict[str, Any]]]]:
    """``(image path as written, boxes)`` of each line of a prepared label file."""
    return [(line.image_path, json.loads(line.label)) for line in read_label_file(str(label_file), str(label_file.parent))]


def _place(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy(src, dst)


def write_ppocrlabel(icdar: Path, sample, folder: Path) -> None:
    """PPOCRLabel's files: Label.txt keys ``<folder>/<image>``, ``###`` as difficult, fileState.txt all checked."""
    folder.mkdir(parents=True)
    label, state = [], []
    for rel, boxes in sample:
        name = Path(rel).name
        _place(icdar / rel, folder / name)
        entries = [{"transcription": "###" if b["transcription"] == "###" else b["transcription"],
                    "points": b["points"], "difficult": b["transcription"] == "###"} for b in boxes]
        label.append(f"{folder.name}/{name}\t{json.dumps(entries, ensure_ascii=False)}\n")
        state.append(f"{folder.name}/{name}\t1\n")
    (folder / "Label.txt").write_text("".join(label), encoding="utf-8")
    (folder / "fileState.txt").write_text("".join(state), encoding="utf-8")


def write_labelstudio(icdar: Path, sample, folder: Path) -> Dict[str, Tuple[int, int]]:
    """A Label Studio JSON export of the sample: uploaded names, polygons in percent, textarea per region."""
    import cv2

    folder.mkdir(parents=True)
    rng = random.Random(0)
    tasks, sizes = [], {}
    for i, (rel, boxes) in enumerate(sample, 1):
        upload = f"{uuid.UUID(int=rng.getrandbits(128)).hex[:8]}-{Path(rel).name}"
        _place(icdar / rel, folder / upload)
        h, w = cv2.imread(str(icdar / rel)).shape[:2]
        sizes[Path(rel).name] = (w, h)
        result = []
        for j, b in enumerate(boxes):
            rid = f"r{i}_{j}"
            points = [[100.0 * x / w, 100.0 * y / h] for x, y in b["points"]]
            common = {"id": rid, "from_name": "label", "to_name": "image", "original_width": w,
                      "original_height": h, "image_rotation": 0}
            label = "ignore" if b["transcription"] == "###" else "text"
            result.append({**common, "type": "polygonlabels", "value": {"points": points, "polygonlabels": [label]}})
            if b["transcription"] != "###":
                result.append({**common, "from_name": "transcription", "type": "textarea",
                               "value": {"text": [b["transcription"]]}})
        tasks.append({"id": i, "data": {"image": f"/data/upload/1/{upload}"},
                      "annotations": [{"id": i, "result": result, "was_cancelled": False}], "predictions": []})
    (folder / "project-1-export.json").write_text(json.dumps(tasks), encoding="utf-8")
    return sizes


def _clip(points, size) -> List[List[float]]:
    w, h = size
    return [[min(max(x, 0), w - 1), min(max(y, 0), h - 1)] for x, y in points]


def check_conversion(folder: Path, sample, sizes: Dict[str, Tuple[int, int]], tolerance: float) -> Dict[str, Any]:
    """The converter's boxes against the GT (clipped to the image, as the converter clips): every image back,
    each converted box at most ``tolerance`` px from its nearest GT box with the same ignore flag; GT boxes
    the converter skipped (degenerate polygons) are counted."""
    conv = convert(str(folder))
    got = {Path(line.split("\t", 1)[0]).name.split("-", 1)[-1]: json.loads(line.split("\t", 1)[1])
           for line in conv.lines}
    worst, problems, missing_boxes = 0.0, [], 0
    for rel, boxes in sample:
        name = Path(rel).name
        mine = got.get(name)
        if mine is None:
            problems.append(f"{rel}: not converted")
            continue
        missing_boxes += len(boxes) - len(mine)
        gt = [(_clip(b["points"], sizes[name]), b["transcription"] == "###") for b in boxes]
        for m in mine:
            errors = [max(math.dist(p, q) for p, q in zip(g, m["points"])) for g, ignore in gt
                      if len(g) == len(m["points"]) and ignore == (m["transcription"] == "###")]
            err = min(errors) if errors else math.inf
            worst = max(worst, err)
    if worst > tolerance:
        problems.append(f"a converted box lies {worst:.2f} px from every GT box (> {tolerance})")
    return {"format": conv.source_format, "images": conv.images, "boxes": conv.boxes, "skipped": len(conv.skipped),
            "gt_boxes_not_converted": missing_boxes, "max_corner_error_px": round(worst, 3),
            "problems": problems[:10], "ok": not problems}


def _run(cmd: List[str], log: Path, env: Optional[Dict[str, str]] = None) -> Tuple[Optional[Dict[str, Any]], float]:
    start = time.time()
    with open(log, "w", encoding="utf-8") as f:
        rc = subprocess.run(cmd, cwd=ROOT, stdout=f, stderr=subprocess.STDOUT, env=env).returncode
    minutes = round((time.time() - start) / 60, 2)
    res = last_json_line(log.read_text(encoding="utf-8", errors="replace"))
    step = " ".join(cmd[1:2]) or cmd[0]
    if rc != 0:
        raise StepFailed.from_log(step, rc, log)
    if res is None:
        raise StepFailed(f"{step} printed no JSON result; see {log}")
    return res, minutes


def score(det: Path, gt: Path, log: Path) -> Dict[str, Any]:
    res, _ = _run([sys.executable, "tools/eval_icdar2015.py", "--gt", str(gt), "--det", str(det)], log)
    return {k: round(res[k], 4) for k in ("precision", "recall", "hmean")}


def rapidocr(args, inference: Path, test_images: List[str], work: Path) -> Dict[str, Any]:
    """RapidOCR 3.x in the deploy venv with our ONNX and the settings tools/finetune.py prints."""
    python = Path(args.deploy_venv) / "bin" / "python"
    if not python.is_file():
        return {"skipped": f"no {python} (bash scripts/setup_deploy_venv.sh makes it)"}
    settings = rapidocr_params(str(inference))  # what tools/finetune.py prints for RapidOCR
    out = work / "rapidocr_predicts.txt"
    start = time.time()
    with open(work / "rapidocr.log", "w", encoding="utf-8") as f:
        rc = subprocess.run([str(python), "-c", RAPIDOCR, json.dumps(settings), str(out), *test_images], cwd=ROOT,
                            stdout=f, stderr=subprocess.STDOUT).returncode
    if rc != 0:
        raise StepFailed.from_log("RapidOCR", rc, work / "rapidocr.log")
    return {**score(out, args.gt, work / "rapidocr_eval.log"), "minutes": round((time.time() - start) / 60, 2),
            "settings": settings}


def subset_test(args, test_images: List[str], work: Path) -> Tuple[Path, List[str]]:
    """The first ``--test-limit`` test images (linked into ``work/test_images``) and their GT (``args.gt``)."""
    folder = work / "test_images"
    folder.mkdir()
    chosen = test_images[:args.test_limit]
    for path in chosen:
        _place(Path(path), folder / Path(path).name)
    lines = args.gt.read_text(encoding="utf-8").splitlines()[:args.test_limit]
    args.gt = work / "test_subset_label.txt"
    args.gt.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder, [str(folder / Path(p).name) for p in chosen]


def main(argv=None) -> int:
    args = parse_args(argv)
    return run_tool("benchmarks/own_data.py", lambda: _main(args))


def _main(args) -> int:
    icdar, work = Path(args.icdar).resolve(), Path(args.work).resolve()
    args.gt = icdar / "test_icdar2015_label.txt"
    for need in (icdar / "train_icdar2015_label.txt", args.gt):
        if not need.is_file():
            raise UsageError(f"{need} not found (prepare ICDAR2015: python tools/prepare_icdar2015.py ...)")
    if work.exists() and any(work.iterdir()):
        raise UsageError(f"{work} is not empty; choose another --work")
    train = read_gt(icdar / "train_icdar2015_label.txt")
    sample = random.Random(0).sample(train, min(args.images, len(train)))
    write_ppocrlabel(icdar, sample, work / "ppocrlabel")
    sizes = write_labelstudio(icdar, sample, work / "labelstudio")
    checks = {name: check_conversion(work / name, sample, sizes, args.tolerance)
              for name in ("ppocrlabel", "labelstudio")}
    for name, c in checks.items():
        print(f"conversion {name:<12} {c['images']} images, {c['boxes']} boxes ({c['gt_boxes_not_converted']} GT "
              f"boxes skipped), max corner error {c['max_corner_error_px']} px: "
              f"{'ok' if c['ok'] else c['problems']}", flush=True)
    result: Dict[str, Any] = {"images": len(sample), "minutes_budget": args.minutes, "conversion": checks}
    try:
        ft, result["finetune_minutes"] = _run([sys.executable, "tools/finetune.py", "--data", str(work / "ppocrlabel"),
                                               "--out", str(work / "run"), "--minutes", str(args.minutes),
                                               *(["-o", *args.opt] if args.opt else [])], work / "finetune.log")
        result["val"] = {k: round(ft[k], 4) for k in ("precision", "recall", "hmean")}
        result.update(epochs=ft["epochs"], steps=ft["steps"], train=ft["train"], val_images=ft["val"])
        print(f"val   (tools/finetune.py, {ft['val']} images) {result['val']}", flush=True)
        inference = work / "run" / "inference"
        test_dir = icdar / "ch4_test_images"
        test_images = [str(icdar / rel) for rel, _ in read_gt(args.gt)]
        if args.test_limit:
            test_dir, test_images = subset_test(args, test_images, work)
        pred, result["infer_minutes"] = _run([sys.executable, "tools/infer_det.py", "--model_dir", str(inference),
                                              "--image", str(test_dir), "--no-vis",
                                              "--out", str(work / "test_pred")], work / "infer.log")
        result["test"] = score(work / "test_pred" / "predicts_db.txt", args.gt, work / "test_eval.log")
        print(f"test  (exported model, tools/infer_det.py, {pred.get('images')} images) {result['test']}", flush=True)
        result["rapidocr"] = rapidocr(args, inference, test_images, work)
        print(f"test  (RapidOCR with the ONNX) {result['rapidocr']}", flush=True)
    except StepFailed:
        print(json.dumps(result))  # what was measured before the failed step
        raise
    print(json.dumps(result))
    return 0 if all(c["ok"] for c in checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
