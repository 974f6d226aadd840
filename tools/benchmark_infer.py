"""CPU inference benchmark: our MV3 DB and DBNet++ exports vs PP-OCRv4 mobile det, side by side.

    python tools/benchmark_infer.py                  # 100 ICDAR2015 test images, 736x1280 and max:960
    python tools/benchmark_infer.py --images 10      # quick run

For each input size the tool first tries, per model and backend, the candidate settings on a
few images (Paddle Inference: oneDNN on/off, threads, BN folded at export or not; ONNX Runtime:
graph optimisation level, intra-op threads, thread spinning, BN folded or not) and keeps the
fastest; then all model/backend pairs take turns on every image, timing pre-processing (resize +
normalise; images are decoded beforehand), inference and DB post-processing in milliseconds.

* Our models are the ``det_mv3_db`` and ``det_mv3_db++_icdar15`` recipes exported with
  **random-init weights** (speed does not depend on the weights; their maps are noise, so the
  post-processing times are not those of a trained model).
* PP-OCRv4 mobile det is the ONNX file shipped in PyPI ``rapidocr-onnxruntime==1.4.4``
  (``--ppocrv4-onnx``, else the installed package, else ``pip download --no-deps`` into
  ``--cache``); ONNX Runtime only, with PaddleOCR's pre/post-processing.
* FLOPs: multiply-accumulates of Conv/ConvTranspose/Gemm/MatMul counted on each ONNX graph at the
  input size (``dbnetpp.deploy.onnx_flops``; ours also with ``paddle.flops`` rules), reported as
  GMACs; achieved GFLOP/s = 2 x MACs / mean inference time.

The last line printed is one JSON object: per model, size and backend the mean total / stage
ms and GFLOP/s, the chosen settings, and the machine load.
"""
from __future__ import annotations

import argparse
import glob
import importlib.util
import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Dict, List, Optional

import cv2
import numpy as np
import paddle

from dbnetpp.config import load_config
from dbnetpp.deploy.bench import ort_candidates, paddle_candidates, time_pipelines, tune
from dbnetpp.deploy.export import export_model
from dbnetpp.deploy.onnx_export import export_onnx
from dbnetpp.deploy.onnx_flops import onnx_macs
from dbnetpp.deploy.preprocess import Preprocessor
from dbnetpp.deploy.settings import InferenceSettings, describe_resize, parse_resize
from dbnetpp.errors import ConfigError, DBNetError
from dbnetpp.modeling import build_model
from dbnetpp.modeling.complexity import count_flops
from dbnetpp.postprocess import DBPostProcess

ROOT = Path(__file__).resolve().parents[1]
OURS = {"det_mv3_db": ROOT / "configs" / "det" / "det_mv3_db.yml",
        "det_mv3_db++": ROOT / "configs" / "det" / "det_mv3_db++_icdar15.yml"}
PPOCRV4 = "ppocrv4_mobile_det"
RAPIDOCR = "rapidocr-onnxruntime==1.4.4"
SHARED = Path(os.environ.get("DBNETPP_SHARED", ROOT.parent / "shared"))


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def load_images(folder: Path, n: int) -> List[np.ndarray]:
    files = glob.glob(str(folder / "*.jpg")) + glob.glob(str(folder / "*.png"))
    if not files:
        raise DBNetError(f"{folder}: no .jpg/.png images (pass --image_dir)")
    key = lambda p: [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", os.path.basename(p))]  # noqa: E731
    files = sorted(files, key=key)[:n]
    imgs = []
    for f in files:
        img = cv2.imread(f, cv2.IMREAD_COLOR)
        if img is None:
            raise DBNetError(f"{f}: cannot decode the image")
        imgs.append(img)
    return imgs


def find_ppocrv4(explicit: Optional[str], cache: Path) -> Path:
    """The PP-OCRv4 det ONNX of rapidocr-onnxruntime 1.4.4 (see module docstring)."""
    if explicit:
        if not os.path.isfile(explicit):
            raise DBNetError(f"--ppocrv4-onnx {explicit}: file not found")
        return Path(explicit)
    spec = importlib.util.find_spec("rapidocr_onnxruntime")
    if spec is not None and spec.submodule_search_locations:
        found = sorted(Path(list(spec.submodule_search_locations)[0]).glob("models/*det*.onnx"))
        if found:
            return found[0]
    target = cache / "ch_PP-OCRv4_det_infer.onnx"
    if target.is_file():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    wheels = sorted(cache.glob("rapidocr_onnxruntime-1.4.4-*.whl"))
    if not wheels:
        log(f"downloading {RAPIDOCR} (no dependencies) into {cache}")
        proc = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(cache), RAPIDOCR],
                              capture_output=True, text=True)
        wheels = sorted(cache.glob("rapidocr_onnxruntime-1.4.4-*.whl"))
        if proc.returncode != 0 or not wheels:
            raise DBNetError(f"pip download {RAPIDOCR} failed: {proc.stderr.strip()[-500:]} "
                             f"(pass --ppocrv4-onnx PATH, or --models without {PPOCRV4})")
    with zipfile.ZipFile(wheels[0]) as zf:
        names = [n for n in zf.namelist() if re.search(r"models/.*det.*\.onnx$", n)]
        if not names:
            raise DBNetError(f"{wheels[0]}: no models/*det*.onnx inside")
        target.write_bytes(zf.read(names[0]))
    return target


def export_ours(name: str, work: Path, unfused: bool = True) -> Dict[str, Optional[Path]]:
    """Random-init export of recipe ``name``: BN folded (and unfused), each with its ONNX file
    (``"onnx": False`` when paddle2onnx cannot convert it: then Paddle Inference only)."""
    out: Dict[str, Optional[Path]] = {"unfused": None, "onnx": True}
    for folded in ((True, False) if unfused else (True,)):
        cfg = load_config(str(OURS[name]))
        paddle.seed(2024)
        model = build_model(cfg["Architecture"])
        d = work / (name + ("" if folded else "_unfused"))
        export_model(model, cfg, str(d), fuse_bn=folded, source={"config": str(OURS[name]), "weights": "random-init"})
        if out["onnx"]:
            try:
                export_onnx(str(d), check_shape=None)
            except ConfigError as exc:
                log(f"no ONNX Runtime runs for {name}: {exc}")
                out["onnx"] = False
        out["folded" if folded else "unfused"] = d
    return out


def ppocrv4_settings() -> InferenceSettings:
    """PaddleOCR's PP-OCRv4 det inference settings (BGR, ImageNet mean/std, DB post-processing)."""
    s = InferenceSettings()
    s.postprocess = {"name": "DBPostProcess", "thresh": 0.3, "box_thresh": 0.6, "max_candidates": 1000,
                     "unclip_ratio": 1.5}
    return s


def input_shape(pre: Preprocessor, img: np.ndarray) -> List[int]:
    chw, _ = pre(img)
    return [1, *chw.shape]


def compact_entry(entry: dict) -> dict:
    """The per model/size summary of the final JSON line: stage times, GFLOP/s, settings, GMACs."""
    keys = ("total_ms", "pre_ms", "infer_ms", "post_ms", "gflop_per_s", "settings")
    out = {b: {k: entry[b][k] for k in keys} for b in ("paddle", "onnxruntime") if b in entry}
    if "gmacs_onnx" in entry:
        out["gmacs"] = entry["gmacs_onnx"]
    if "gflops_paddle_rules" in entry:
        out["gflops_paddle_rules"] = entry["gflops_paddle_rules"]
    return out


def model_setup(model: str, exports: dict, v4: Optional[Path], threads: List[int]):
    """(settings, {backend: candidates}, ONNX file for the FLOP count) of one model."""
    if model not in OURS:
        return ppocrv4_settings(), {"onnxruntime": ort_candidates(str(v4), threads, folded=None)}, v4
    d, u = exports[model]["folded"], exports[model]["unfused"]
    settings = InferenceSettings.load(str(d))
    dep = settings.deploy
    unfused = (str(u / dep["model_file"]), str(u / dep["params_file"])) if u else None
    backends = {
        "paddle": paddle_candidates(str(d / dep["model_file"]), str(d / dep["params_file"]), threads, unfused=unfused),
    }
    if not exports[model]["onnx"]:
        return settings, backends, None
    backends["onnxruntime"] = ort_candidates(str(d / "inference.onnx"), threads,
                                             str(u / "inference.onnx") if u else None)
    return settings, backends, d / "inference.onnx"


def bench_size(size: dict, models: List[str], exports: dict, v4: Optional[Path], images: List[np.ndarray],
               args) -> Dict[str, dict]:
    """Tune and time every model/backend at one resize rule -> {model: entry}."""
    size_key = describe_resize(size)
    runners, chosen, entries = {}, {}, {}
    for model in models:
        settings, backends, onnx_file = model_setup(model, exports, v4, args.thread_list)
        settings.resize = dict(size)
        pre = Preprocessor(settings)
        post = DBPostProcess(**{k: v for k, v in settings.postprocess.items() if k != "name"})
        shape = input_shape(pre, images[0])
        entries[model] = {"input": shape}
        if model in OURS:
            net = build_model(load_config(str(OURS[model]))["Architecture"])
            entries[model]["gflops_paddle_rules"] = round(count_flops(net, shape) / 1e9, 3)
        # without an ONNX graph the paddle.flops-rule count (conv MACs + BN/pool ops) stands in
        macs = onnx_macs(str(onnx_file), shape)["macs"] if onnx_file else count_flops(net, shape)
        if onnx_file:
            entries[model]["gmacs_onnx"] = round(macs / 1e9, 3)
        tune_inputs = [pre(img)[0][None] for img in images[:max(args.tune_images, 1)]]
        for backend, cands in backends.items():
            log(f"[{model} @ {size_key} {shape[2]}x{shape[3]}] {backend}: "
                f"{'default settings' if args.no_tune else 'tuning ' + str(len(cands)) + ' candidates'}")
            if args.no_tune:
                best, engine, table = cands[0], cands[0].make(), []
            else:
                best, engine, table = tune(cands, tune_inputs, log=log)
            runners[(model, backend)] = (pre, engine, post)
            chosen[(model, backend)] = (best, table, macs)
    log(f"[{size_key}] timing {len(images)} images, {len(runners)} model/backend pairs taking turns")
    for (model, backend), times in time_pipelines(images, runners).items():
        best, table, macs = chosen[(model, backend)]
        summ = times.summary()
        summ["gflop_per_s"] = round(2.0 * macs / (summ["infer_ms"] / 1000.0) / 1e9, 2)
        summ["settings"] = best.settings
        summ["tuning_ms"] = {label: (None if ms is None else round(ms, 1)) for label, ms in table}
        entries[model][backend] = summ
        log(f"  {model} {backend} {best.label()}: pre {summ['pre_ms']:.1f} + infer {summ['infer_ms']:.1f} + "
            f"post {summ['post_ms']:.1f} = {summ['total_ms']:.1f} ms/image; {summ['gflop_per_s']:.1f} GFLOP/s")
    return entries


def print_table(results: Dict[str, Dict[str, dict]]) -> None:
    log("")
    log(f"{'model':<20}{'size':<10}{'backend':<13}{'pre':>8}{'infer':>9}{'post':>8}{'total':>9}"
        f"{'GMACs':>8}{'GFLOP/s':>9}  settings")
    for model, per_size in results.items():
        for size_key, entry in per_size.items():
            for backend in ("paddle", "onnxruntime"):
                if backend in entry:
                    s = entry[backend]
                    log(f"{model:<20}{size_key:<10}{backend:<13}{s['pre_ms']:>8.1f}{s['infer_ms']:>9.1f}"
                        f"{s['post_ms']:>8.1f}{s['total_ms']:>9.1f}{entry.get('gmacs_onnx', 0):>8.2f}"
                        f"{s['gflop_per_s']:>9.1f}  {s['settings']}")


def target_check(results: Dict[str, Dict[str, dict]]) -> Dict[str, dict]:
    """Per size: does our DBNet++ (best backend) reach PP-OCRv4 det's GFLOP/s?"""
    out = {}
    if "det_mv3_db++" in results and PPOCRV4 in results:
        for size_key, theirs in results[PPOCRV4].items():
            ours = max(results["det_mv3_db++"][size_key].get(b, {}).get("gflop_per_s", 0)
                       for b in ("paddle", "onnxruntime"))
            v4 = theirs["onnxruntime"]["gflop_per_s"]
            out[size_key] = {"dbnetpp_gflop_per_s": ours, "ppocrv4_gflop_per_s": v4, "met": ours >= v4}
    return out


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--images", type=int, default=100, help="number of test images (default 100)")
    p.add_argument("--image_dir", default=str(SHARED / "datasets" / "icdar2015" / "ch4_test_images"))
    p.add_argument("--sizes", default="736x1280,max:960", help="comma-separated resize rules (HxW, max:N, ...)")
    p.add_argument("--threads", default="2,1", help="thread counts to try (default 2,1)")
    p.add_argument("--models", default=f"det_mv3_db,det_mv3_db++,{PPOCRV4}")
    p.add_argument("--tune-images", type=int, default=2, help="images used to pick the settings (default 2)")
    p.add_argument("--no-tune", action="store_true", help="skip tuning: oneDNN on / ORT level all, max threads")
    p.add_argument("--no-unfused", dest="unfused", action="store_false",
                   help="do not try our models with BatchNorm kept (saves two exports per model)")
    p.add_argument("--ppocrv4-onnx", default=None, help="PP-OCRv4 det ONNX file (default: from rapidocr)")
    p.add_argument("--work", default=str(ROOT / "output" / "benchmark_infer"), help="exported models go here")
    p.add_argument("--cache", default=os.path.join(os.path.expanduser("~"), ".cache", "dbnetpp"))
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.thread_list = [int(t) for t in args.threads.split(",") if t.strip()]
        sizes = [parse_resize(s.strip()) for s in args.sizes.split(",") if s.strip()]
        models = [m.strip() for m in args.models.split(",") if m.strip()]
        unknown = [m for m in models if m not in OURS and m != PPOCRV4]
        if unknown:
            raise DBNetError(f"unknown model(s) {unknown}; choose from {list(OURS) + [PPOCRV4]}")
        images = load_images(Path(args.image_dir), args.images)
        work = Path(args.work)
        work.mkdir(parents=True, exist_ok=True)
        load_start = os.getloadavg()
        log(f"{len(images)} images from {args.image_dir}; load average {load_start[0]:.2f} on {os.cpu_count()} cores")
        exports = {m: export_ours(m, work, args.unfused) for m in models if m in OURS}
        v4 = find_ppocrv4(args.ppocrv4_onnx, Path(args.cache)) if PPOCRV4 in models else None
    except (DBNetError, OSError, ValueError) as exc:
        print(f"benchmark_infer: {exc}", file=sys.stderr)
        return 2

    results: Dict[str, Dict[str, dict]] = {m: {} for m in models}
    for size in sizes:
        for model, entry in bench_size(size, models, exports, v4, images, args).items():
            results[model][describe_resize(size)] = entry
    load_end = os.getloadavg()
    print_table(results)
    compact = {m: {sk: compact_entry(e) for sk, e in per.items()} for m, per in results.items()}
    print(json.dumps({"images": len(images), "threads_tried": args.thread_list, "weights": "random-init (ours)",
                      "loadavg_start": round(load_start[0], 2), "loadavg_end": round(load_end[0], 2),
                      "cpu_count": os.cpu_count(), "paddle": paddle.__version__, "results": compact,
                      "dbnetpp_vs_ppocrv4_gflop_per_s": target_check(results)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
