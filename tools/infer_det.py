"""Detect text with an exported model (Paddle Inference or ONNX Runtime).

    python tools/infer_det.py --model_dir ./inference/det_mv3_db --image ./img_10.jpg
    python tools/infer_det.py --model_dir DIR --image ./ch4_test_images --batch 4 --threads 2 \\
        --mkldnn on --out ./output/det_results

Pre- and post-processing come from ``DIR/inference.yml`` (written by ``tools/export_model.py``);
``--resize`` and the threshold options override them.  Images of a batch are padded to a
common size (bottom/right); each one is post-processed on its own part of the map.

Writes ``OUT/results.json`` (``{"images": [{"image", "boxes", "scores", "height", "width"}],
"settings": {...}}``, boxes as lists of integer ``[x, y]`` corners in source pixels), the same boxes
as ``OUT/predicts_db.txt`` in PaddleOCR's ``infer_det`` format (``image<TAB>[{"points": ..., "score":
...}]`` per line; ``tools/eval_icdar2015.py --det OUT/predicts_db.txt`` scores it) and, unless
``--no-vis``, ``OUT/<image stem>.png`` with the boxes drawn.  The last line printed is one JSON
object: image count, box count, mean milliseconds per image, output folder.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import List

import cv2

from dbnetpp.deploy.predictor import Detector
from dbnetpp.deploy.settings import describe_resize, parse_resize
from dbnetpp.deploy.visualize import draw_boxes
from dbnetpp.errors import DBNetError

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


def on_off(text: str) -> bool:
    low = text.lower()
    if low in ("on", "true", "1", "yes"):
        return True
    if low in ("off", "false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected on or off, got {text!r}")


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model_dir", required=True, help="folder written by tools/export_model.py")
    p.add_argument("--image", required=True, help="an image file or a folder of images")
    p.add_argument("--out", default="./output/det_results", help="output folder (default ./output/det_results)")
    p.add_argument("--backend", choices=("paddle", "onnx"), default="paddle",
                   help="paddle (Paddle Inference) or onnx (ONNX Runtime on DIR/inference.onnx)")
    p.add_argument("--device", choices=("cpu", "gpu"), default="cpu")
    p.add_argument("--threads", type=positive, default=2, help="CPU threads (default 2)")
    p.add_argument("--mkldnn", type=on_off, default=True, help="oneDNN/MKLDNN kernels on CPU: on|off (default on)")
    p.add_argument("--tensorrt", type=on_off, default=True,
                   help="on GPU, use TensorRT when this Paddle build has it: on|off (default on)")
    p.add_argument("--batch", type=positive, default=1, help="images per forward pass (default 1)")
    p.add_argument("--resize", type=parse_resize, default=None,
                   help="override the exported resize rule: HxW (736x1280), max:N, min:N or long:N")
    p.add_argument("--thresh", type=float, default=None, help="override PostProcess.thresh")
    p.add_argument("--box_thresh", type=float, default=None, help="override PostProcess.box_thresh")
    p.add_argument("--unclip_ratio", type=float, default=None, help="override PostProcess.unclip_ratio")
    p.add_argument("--no-vis", dest="vis", action="store_false", help="do not write visualisation PNGs")
    return p


def list_images(path: str) -> List[Path]:
    src = Path(path)
    if src.is_file():
        return [src]
    if src.is_dir():
        files = sorted(p for p in src.iterdir() if p.suffix.lower() in IMAGE_EXTS and p.is_file())
        if not files:
            raise DBNetError(f"{src}: no images ({', '.join(IMAGE_EXTS)}) in this folder")
        return files
    raise DBNetError(f"{src}: no such file or folder")


def read_image(path: Path):
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise DBNetError(f"{path}: cannot decode the image (corrupt or not an image)")
    return img


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    post = {k: v for k, v in (("thresh", args.thresh), ("box_thresh", args.box_thresh),
                              ("unclip_ratio", args.unclip_ratio)) if v is not None}
    try:
        files = list_images(args.image)
        det = Detector(args.model_dir, backend=args.backend, device=args.device, threads=args.threads,
                       mkldnn=args.mkldnn, tensorrt=args.tensorrt, resize=args.resize, postprocess=post)
        os.makedirs(args.out, exist_ok=True)
        results, n_boxes, elapsed = [], 0, 0.0
        for start in range(0, len(files), args.batch):
            chunk = files[start:start + args.batch]
            imgs = [read_image(f) for f in chunk]
            t0 = time.perf_counter()
            dets = det.detect_batch(imgs)
            elapsed += time.perf_counter() - t0
            for f, img, (boxes, scores) in zip(chunk, imgs, dets):
                boxes_list = [[[int(v) for v in pt] for pt in b] for b in boxes]
                results.append({"image": str(f), "height": int(img.shape[0]), "width": int(img.shape[1]),
                                "boxes": boxes_list, "scores": [round(float(s), 6) for s in scores]})
                n_boxes += len(boxes_list)
                if args.vis:
                    out_png = os.path.join(args.out, f"{f.stem}.png")
                    if not cv2.imwrite(out_png, draw_boxes(img, boxes, scores)):
                        raise DBNetError(f"{out_png}: cannot write the visualisation")
        engine = det.engine.describe()
        meta = {"model_dir": os.path.abspath(args.model_dir), "engine": engine, "batch": args.batch,
                "resize": det.settings.resize, "PostProcess": det.settings.postprocess}
        res_file = os.path.join(args.out, "results.json")
        with open(res_file, "w", encoding="utf-8") as f:
            json.dump({"settings": meta, "images": results}, f, indent=1)
        with open(os.path.join(args.out, "predicts_db.txt"), "w", encoding="utf-8") as f:
            for r in results:
                boxes = [{"points": b, "score": s} for b, s in zip(r["boxes"], r["scores"])]
                f.write(f"{r['image']}\t{json.dumps(boxes)}\n")
    except (DBNetError, OSError) as exc:
        print(f"infer_det: {exc}", file=sys.stderr)
        return 2
    ms = 1000.0 * elapsed / max(len(files), 1)
    print(f"{len(files)} image(s), {n_boxes} box(es), {ms:.1f} ms/image ({engine}, resize "
          f"{describe_resize(det.settings.resize)}); results in {res_file}", file=sys.stderr)
    print(json.dumps({"images": len(files), "boxes": n_boxes, "ms_per_image": round(ms, 2),
                      "results": os.path.abspath(res_file)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
