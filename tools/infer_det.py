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
``--no-vis``, ``OUT/<image stem>.png`` with the boxes drawn (``<stem>_<ext>.png`` when two images share a
stem, e.g. ``a.jpg`` and ``a.png``).

In a folder, files without an image extension, sub-folders and broken links are listed as ``ignored``
in ``results.json``; an image that cannot be read or decoded (truncated, not an image) is skipped and
listed under ``skipped`` with the reason; the run goes on.  Images are decoded as in training (OpenCV,
EXIF orientation applied, as PaddleOCR does).  The last line printed is one JSON object: image,
box, skipped and ignored counts, mean milliseconds per image, the results file.  Exit status
(dbnetpp/errors.py; one line ``infer_det: error: MESSAGE``): 0; 1 when no image could be read (a single
unreadable image included) or a file-system error; 2 on an error before any image (bad option, model folder,
--out in use by another run or the --image folder).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Dict, List, Tuple

import cv2

from dbnetpp.cli import positive_float, positive_int, run_tool, unit_float
from dbnetpp.deploy.predictor import Detector
from dbnetpp.deploy.settings import describe_resize, parse_resize
from dbnetpp.deploy.visualize import draw_boxes
from dbnetpp.data.transforms.decode_image import DecodeImage
from dbnetpp.errors import DataError, DBNetError, UsageError
from dbnetpp.output_lock import lock_output

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


def on_off(text: str) -> bool:
    low = text.lower()
    if low in ("on", "true", "1", "yes"):
        return True
    if low in ("off", "false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected on or off, got {text!r}")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model_dir", required=True, help="folder written by tools/export_model.py")
    p.add_argument("--image", required=True, help="an image file or a folder of images")
    p.add_argument("--out", default="./output/det_results", help="output folder (default ./output/det_results)")
    p.add_argument("--backend", choices=("paddle", "onnx"), default="paddle",
                   help="paddle (Paddle Inference) or onnx (ONNX Runtime on DIR/inference.onnx)")
    p.add_argument("--device", choices=("cpu", "gpu"), default="cpu")
    p.add_argument("--threads", type=positive_int, default=2, help="CPU threads (default 2)")
    p.add_argument("--mkldnn", type=on_off, default=True, help="oneDNN/MKLDNN kernels on CPU: on|off (default on)")
    p.add_argument("--tensorrt", type=on_off, default=True,
                   help="on GPU, use TensorRT when this Paddle build has it: on|off (default on)")
    p.add_argument("--batch", type=positive_int, default=1, help="images per forward pass (default 1)")
    p.add_argument("--resize", type=parse_resize, default=None,
                   help="override the exported resize rule: HxW (736x1280), max:N, min:N or long:N")
    p.add_argument("--thresh", type=unit_float, default=None, help="override PostProcess.thresh")
    p.add_argument("--box_thresh", type=unit_float, default=None, help="override PostProcess.box_thresh")
    p.add_argument("--unclip_ratio", type=positive_float, default=None, help="override PostProcess.unclip_ratio")
    p.add_argument("--no-vis", dest="vis", action="store_false", help="do not write visualisation PNGs")
    return p


def list_images(path: str) -> Tuple[List[Path], List[Dict[str, str]]]:
    """``(images, ignored)``: an image file, or a folder's image files (by extension, sorted) and, for
    every other entry, ``{"image": path, "reason": ...}`` (other files, broken links, sub-folders)."""
    src = Path(path)
    if src.is_file():
        return [src], []
    if src.is_dir():
        files, ignored = [], []
        for p in sorted(src.iterdir()):
            if p.is_symlink() and not p.exists():
                ignored.append({"image": str(p), "reason": f"broken symbolic link (to {os.readlink(p)})"})
            elif p.is_dir():
                ignored.append({"image": str(p), "reason": "a folder (not searched)"})
            elif p.suffix.lower() in IMAGE_EXTS and any(c in p.name for c in "\t\r\n"):
                ignored.append({"image": str(p), "reason": "the file name holds a tab or a line break, which a "
                                "predicts_db.txt line cannot hold"})
            elif p.suffix.lower() in IMAGE_EXTS:
                files.append(p)
            else:
                ignored.append({"image": str(p), "reason": f"not an image file name ({', '.join(IMAGE_EXTS)})"})
        if not files:
            raise UsageError(f"{src}: no images ({', '.join(IMAGE_EXTS)}) in this folder")
        return files, ignored
    if src.is_symlink():
        raise UsageError(f"{src}: broken symbolic link (to {os.readlink(src)})")
    raise UsageError(f"{src}: no such file or folder")


_DECODE = DecodeImage(img_mode="BGR")  # as training and evaluation decode (EXIF orientation applied)


def read_image(path: Path):
    """BGR uint8 image; :class:`DataError` naming the file when it cannot be read or decoded."""
    try:
        return _DECODE({"image": path.read_bytes()})["image"]
    except DataError as exc:
        raise DataError(str(exc), str(path)) from None


def picture_names(files: List[Path]) -> Dict[Path, str]:
    """``<stem>.png`` per image; images sharing a stem (``a.jpg``, ``a.png``) get ``<stem>_<ext>.png``, and a
    name still taken (an image called ``a_png.png`` beside them) gets ``_2``, ``_3``, ... : one picture per image."""
    stems: Dict[str, int] = {}
    for f in files:
        stems[f.stem] = stems.get(f.stem, 0) + 1
    wanted = {f: f"{f.stem}_{f.suffix[1:].lower()}" if stems[f.stem] > 1 else f.stem for f in files}
    taken = {name.lower() for name in wanted.values()}
    out: Dict[Path, str] = {}
    used: set = set()
    for f in files:
        name, n = wanted[f], 1
        while name.lower() in used or (n > 1 and name.lower() in taken):
            n += 1
            name = f"{wanted[f]}_{n}"
        used.add(name.lower())
        out[f] = f"{name}.png"
    return out


def check_outputs(image: str, out: str, files: List[Path], pictures: Dict[Path, str]) -> None:
    """The input images are never replaced: ``--out`` may not be the ``--image`` folder, nor name an input file."""
    src = Path(image)
    if src.is_dir() and Path(out).resolve() == src.resolve():
        raise UsageError(f"--out {out} is the --image folder: the pictures and results would mix with (and may "
                         f"replace) the images; give another --out folder")
    inputs = {f.resolve() for f in files}
    written = [Path(out, n) for n in (*pictures.values(), "results.json", "predicts_db.txt")]
    clash = [str(p) for p in written if p.resolve() in inputs]
    if clash:
        raise UsageError(f"--out {out}: writing {clash[0]} would replace an input image; give another --out folder")


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    post = {k: v for k, v in (("thresh", args.thresh), ("box_thresh", args.box_thresh),
                              ("unclip_ratio", args.unclip_ratio)) if v is not None}

    def body() -> int:
        files, ignored = list_images(args.image)
        pictures = picture_names(files)
        check_outputs(args.image, args.out, files, pictures)
        with lock_output(args.out, "inference", key="--out"):
            det = Detector(args.model_dir, backend=args.backend, device=args.device, threads=args.threads,
                           mkldnn=args.mkldnn, tensorrt=args.tensorrt, resize=args.resize, postprocess=post)
            return _infer(args, det, files, ignored, pictures)
    return run_tool("infer_det", body)


def _infer(args, det, files, ignored, pictures) -> int:
    """Detect, write the pictures, results.json and predicts_db.txt into --out (locked by the caller)."""
    results, skipped, n_boxes, elapsed = [], [], 0, 0.0
    for start in range(0, len(files), args.batch):
        chunk, imgs = [], []
        for f in files[start:start + args.batch]:
            try:
                imgs.append(read_image(f))
                chunk.append(f)
            except (DBNetError, OSError) as exc:
                if len(files) == 1:
                    raise
                skipped.append({"image": str(f), "reason": str(exc).removeprefix(f"{f}: ")})
        if not chunk:
            continue
        t0 = time.perf_counter()
        dets = det.detect_batch(imgs)
        elapsed += time.perf_counter() - t0
        for f, img, (boxes, scores) in zip(chunk, imgs, dets):
            boxes_list = [[[int(v) for v in pt] for pt in b] for b in boxes]
            results.append({"image": str(f), "height": int(img.shape[0]), "width": int(img.shape[1]),
                            "boxes": boxes_list, "scores": [round(float(s), 6) for s in scores]})
            n_boxes += len(boxes_list)
            if args.vis:
                out_png = os.path.join(args.out, pictures[f])
                if not cv2.imwrite(out_png, draw_boxes(img, boxes, scores)):
                    raise DBNetError(f"{out_png}: cannot write the visualisation")
    engine = det.engine.describe()
    meta = {"model_dir": os.path.abspath(args.model_dir), "engine": engine, "batch": args.batch,
            "resize": det.settings.resize, "PostProcess": det.settings.postprocess}
    res_file = os.path.join(args.out, "results.json")
    with open(res_file, "w", encoding="utf-8") as f:
        json.dump({"settings": meta, "images": results, "skipped": skipped, "ignored": ignored}, f, indent=1)
    with open(os.path.join(args.out, "predicts_db.txt"), "w", encoding="utf-8") as f:
        for r in results:
            boxes = [{"points": b, "score": s} for b, s in zip(r["boxes"], r["scores"])]
            f.write(f"{r['image']}\t{json.dumps(boxes)}\n")
    for item in skipped:
        print(f"infer_det: skipped {item['image']}: {item['reason']}", file=sys.stderr)
    if ignored:
        shown = "; ".join(f"{i['image']} ({i['reason']})" for i in ignored[:5]) + (" ..." if len(ignored) > 5 else "")
        print(f"infer_det: {len(ignored)} folder entr{'y' if len(ignored) == 1 else 'ies'} not processed: {shown}",
              file=sys.stderr)
    ms = 1000.0 * elapsed / max(len(results), 1)
    print(f"{len(results)} image(s), {n_boxes} box(es), {ms:.1f} ms/image ({engine}, resize "
          f"{describe_resize(det.settings.resize)}); {len(skipped)} unreadable image(s) skipped; results in "
          f"{res_file}", file=sys.stderr)
    print(json.dumps({"images": len(results), "boxes": n_boxes, "ms_per_image": round(ms, 2),
                      "skipped": len(skipped), "ignored": len(ignored), "results": os.path.abspath(res_file)}))
    return 0 if results else 1


if __name__ == "__main__":
    sys.exit(main())
