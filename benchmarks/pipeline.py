"""Benchmark the DB training data pipeline: dbnetpp's transforms versus PaddleOCR 2.5's.

    python benchmarks/pipeline.py --data ../shared/datasets/icdar2015 [--images 200] [--workers 2]

Both sides run the ``Train.dataset.transforms`` list of the same config (default
``configs/det/det_mv3_db.yml``: DecodeImage, DetLabelEncode, IaaAugment, EastRandomCropData,
MakeBorderMap, MakeShrinkMap, NormalizeImage, ToCHWImage, KeepKeys) on the same ICDAR2015
training images (official layout: ``ch4_training_images/img_N.jpg`` and
``ch4_training_localization_transcription_gt/gt_img_N.txt``), held in memory as encoded bytes +
PaddleOCR label JSON, with the same seeds and the same ``cv2.setNumThreads``.  Each side runs in
its own process (so imports and peak RSS are its own):

Both processes (and their loader workers) also get the same glibc malloc policy: by default
``--malloc retain`` (``dbnetpp.data.transforms.retain_freed_memory``, which dbnetpp's ``Compose``
applies in every process it runs in: freed buffers stay in the heap instead of being
page-faulted back for every sample, which otherwise costs about as much CPU as our transforms);
``--malloc default`` keeps glibc's defaults for both.

1. single process: per-op ms/sample, samples/s, peak RSS;
2. ``paddle.io.DataLoader`` (shared memory) over the same samples with ``--workers`` workers and
   batches of ``--batch-size``: samples/s after the first batch (worker start-up excluded) and
   overall, once with full batches and once with workers returning only a checksum (the
   transforms' own throughput, without the cost of moving ~11.5 MB per sample between processes).

The reference is the PyPI ``paddleocr==2.5.0.3`` wheel's ``ppocr/data/imaug`` modules, loaded
from their files.  Its IaaAugment needs imgaug 0.4.0, imported here with NumPy's removed aliases
(``np.bool`` ...) restored in the reference process only.  Without imgaug the reference
IaaAugment step is timed with dbnetpp's step-by-step IaaAugment (the same OpenCV calls imgaug
makes: flip, warpAffine, cubic resize of the whole image), and the output says so.

The last line is one JSON object: ``ours_sps``, ``reference_sps``, ``ratio`` (single process),
plus loader throughputs, peak RSS and the settings.
"""
from __future__ import annotations

import argparse
import importlib
import json
import os
import random
import resource
import subprocess
import sys
import time
import types
import warnings
from pathlib import Path
from typing import Any, Callable, Dict, List, Tuple

import cv2
import numpy as np

from dbnetpp.cli import run_tool
from dbnetpp.errors import StepFailed, UsageError

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG = ROOT / "configs" / "det" / "det_mv3_db.yml"
REF_MODULES = {
    "DecodeImage": "operators", "NormalizeImage": "operators", "ToCHWImage": "operators",
    "KeepKeys": "operators", "DetResizeForTest": "operators", "Resize": "operators",
    "DetLabelEncode": "label_ops", "IaaAugment": "iaa_augment", "EastRandomCropData": "random_crop_data",
    "MakeBorderMap": "make_border_map", "MakeShrinkMap": "make_shrink_map",
}
# ----------------------------------------------------------------------------- data
def load_samples(data_dir: Path, n_images: int) -> List[Tuple[str, bytes, str]]:
    """First ``n_images`` training images (by number) as (name, jpeg bytes, label JSON)."""
    from dbnetpp.data.icdar_gt import read_gt_file

    def image_id(name: str):
        stem = name[len("img_"):-len(".jpg")]
        return int(stem) if stem.isdigit() else None

    img_dir = data_dir / "ch4_training_images"
    gt_dir = data_dir / "ch4_training_localization_transcription_gt"
    if not img_dir.is_dir() or not gt_dir.is_dir():
        raise UsageError(f"{data_dir} is not an ICDAR2015 folder (needs ch4_training_images/ and "
                         f"ch4_training_localization_transcription_gt/)")
    images = sorted((p for p in img_dir.glob("img_*.jpg") if image_id(p.name) is not None),
                    key=lambda p: image_id(p.name))[:n_images]
    if len(images) < n_images:
        raise UsageError(f"only {len(images)} training images in {img_dir}, asked for {n_images}")
    samples = []
    for p in images:
        boxes = read_gt_file(str(gt_dir / f"gt_{p.stem}.txt"))
        label = json.dumps([{"transcription": b.transcription, "points": b.points} for b in boxes])
        samples.append((p.name, p.read_bytes(), label))
    return samples


# ----------------------------------------------------------------------------- the two sides
def _reference_ops(items: List[Dict[str, Any]]) -> Tuple[List[Tuple[str, Callable]], str]:
    """PaddleOCR 2.5.0.3 ops built from the config list; returns (ops, IaaAugment provenance)."""
    from dbnetpp.ppocr_wheel import NP_ALIASES, ReferenceMissing, wheel_dir

    try:
        base = wheel_dir() / "ppocr"
    except ReferenceMissing as exc:
        raise UsageError(str(exc)) from None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, value in NP_ALIASES.items():  # removed in NumPy 1.24, used by imgaug and ppocr
            setattr(np, name, value)
    # ppocr/data/__init__ imports lmdb, paddle datasets ...: register bare packages instead and
    # import the op modules through them (ppocr.utils.logging resolves through the same path).
    try:
        import six  # noqa: F401
    except ImportError:  # operators.py only reads six.PY2
        sys.modules["six"] = types.SimpleNamespace(PY2=False, PY3=True)
    for name, sub in (("ppocr", base), ("ppocr.data", base / "data"), ("ppocr.data.imaug", base / "data" / "imaug")):
        pkg = types.ModuleType(name)
        pkg.__path__ = [str(sub)]
        sys.modules.setdefault(name, pkg)
    try:
        import imgaug
        iaa_source = f"imgaug {imgaug.__version__} (PaddleOCR's own IaaAugment)"
        imgaug.seed(0)
    except ImportError:
        iaa_source = None
    ops = []
    for item in items:
        (name, args), = item.items()
        if name == "IaaAugment" and iaa_source is None:
            from dbnetpp.data.transforms import IaaAugment
            iaa_source = ("OpenCV equivalent -- imgaug is NOT installed, so the reference IaaAugment is timed "
                          "with dbnetpp's step-by-step IaaAugment (the OpenCV calls imgaug makes: flip, "
                          "warpAffine, cubic resize of the whole image; imgaug's own overhead is not counted)")
            op = IaaAugment(**(args or {}))
            ops.append((name, _to_float64_polys(op)))
            continue
        module = importlib.import_module(f"ppocr.data.imaug.{REF_MODULES[name]}")
        ops.append((name, getattr(module, name)(**(args or {}))))
    return ops, iaa_source or "not used"


def _to_float64_polys(op: Callable) -> Callable:
    def run(data):
        data = op(data)
        data["polys"] = data["polys"].astype(np.float64)
        data["ignore_tags"] = list(data["ignore_tags"].tolist())
        return data
    return run


def _our_ops(items: List[Dict[str, Any]]) -> List[Tuple[str, Callable]]:
    from dbnetpp.data.transforms import create_transforms
    # the malloc policy is set by side_main for both sides alike, so Compose must not change it
    return list(create_transforms(items, retain_memory=False).steps)


def _seed_all(seed: int) -> None:
    np.random.seed(seed)
    random.seed(seed)
    imgaug = sys.modules.get("imgaug")
    if imgaug is not None:
        imgaug.seed(seed)


def run_single(ops: List[Tuple[str, Callable]], samples, seed: int) -> Dict[str, Any]:
    times = {name: 0.0 for name, _ in ops}
    _seed_all(seed + 1)
    for _, raw, label in samples[:5]:  # warm-up (first-call costs), not timed
        data = {"image": raw, "label": label}
        for _, op in ops:
            data = op(data)
            if data is None:
                break
    _seed_all(seed)
    dropped = 0
    cpu_start, start = time.process_time(), time.perf_counter()
    for _, raw, label in samples:
        data = {"image": raw, "label": label}
        for name, op in ops:
            t0 = time.perf_counter()
            data = op(data)
            times[name] += time.perf_counter() - t0
            if data is None:  # PaddleOCR signals a bad sample with None
                dropped += 1
                break
    total = time.perf_counter() - start
    cpu_total = time.process_time() - cpu_start
    n = len(samples)
    return {"ms_per_op": {k: 1000.0 * v / n for k, v in times.items()}, "sps": n / total, "cpu_sps": n / cpu_total,
            "dropped": dropped,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0}


class _Dataset:
    """Minimal map-style dataset over in-memory samples (``payload="none"``: return a checksum only)."""

    def __init__(self, samples, ops, payload: str):
        self.samples, self.ops, self.payload = samples, [op for _, op in ops], payload

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, idx):
        _, raw, label = self.samples[idx]
        data = {"image": raw, "label": label}
        for op in self.ops:
            data = op(data)
            if data is None:  # reference only: retry the next image, as PaddleOCR's dataset does
                return self[(idx + 1) % len(self)]
        if self.payload == "none":
            image = data["image"] if isinstance(data, dict) else data[0]
            return {"checksum": np.float32(image[0, 0, 0])}
        return data


def run_loader(ops, samples, workers: int, batch_size: int, seed: int, cv2_threads: int,
               malloc: str, payload: str) -> Dict[str, Any]:
    import paddle

    from dbnetpp.data.transforms import retain_freed_memory

    ds = _Dataset(samples, ops, payload)

    class PaddleDataset(paddle.io.Dataset):
        def __len__(self):
            return len(ds)

        def __getitem__(self, idx):
            return ds[idx]

    def init_worker(worker_id):
        cv2.setNumThreads(cv2_threads)
        if malloc == "retain":
            retain_freed_memory()
        _seed_all(seed + 1 + worker_id)

    loader = paddle.io.DataLoader(PaddleDataset(), batch_size=batch_size, shuffle=False, drop_last=False,
                                  num_workers=workers, use_shared_memory=True, worker_init_fn=init_worker,
                                  return_list=True)
    start = time.perf_counter()
    first, n_first, n = None, 0, 0
    for batch in loader:
        size = len(next(iter(batch.values())) if isinstance(batch, dict) else batch[0])
        n += size
        if first is None:
            first, n_first = time.perf_counter(), size
    end = time.perf_counter()
    steady = (n - n_first) / (end - first) if end > first and n > n_first else float("nan")
    return {"sps": steady, "sps_with_startup": n / (end - start), "workers": workers, "batch_size": batch_size,
            "worker_peak_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0}


def side_main(args) -> None:
    cv2.setNumThreads(args.cv2_threads)
    from dbnetpp.config import load_yaml
    from dbnetpp.data.transforms import retain_freed_memory

    if args.malloc == "retain" and not retain_freed_memory():
        print("benchmark_pipeline: warning: mallopt not available (not glibc); --malloc retain has no effect",
              file=sys.stderr)

    items = load_yaml(str(args.config))["Train"]["dataset"]["transforms"]
    samples = load_samples(Path(args.data), args.images)
    if args.side == "ours":
        ops, iaa_source = _our_ops(items), "dbnetpp (OpenCV/NumPy)"
    else:
        ops, iaa_source = _reference_ops(items)
    result = run_single(ops, samples, args.seed)
    result["iaa_source"] = iaa_source
    if args.workers > 0:
        for payload in ("full", "none"):
            result[f"loader_{payload}"] = run_loader(ops, samples, args.workers, args.batch_size, args.seed,
                                                     args.cv2_threads, args.malloc, payload)
    print(json.dumps(result))


# ----------------------------------------------------------------------------- driver
def _run_side(side: str, args, workers: int) -> Dict[str, Any]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--_side", side, "--data", str(args.data),
           "--images", str(args.images), "--workers", str(workers), "--batch-size", str(args.batch_size),
           "--seed", str(args.seed), "--cv2-threads", str(args.cv2_threads), "--config", str(args.config),
           "--malloc", args.malloc]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stdout[-3000:] + proc.stderr[-3000:]).splitlines()[-25:]
        raise StepFailed(f"the {side} run failed (exit {proc.returncode}); its last lines:\n" + "\n".join(tail))
    return json.loads(lines[-1])


def _fmt(v: float) -> str:
    return f"{v:8.2f}" if v == v else "     n/a"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True, help="ICDAR2015 folder (official layout)")
    ap.add_argument("--images", type=int, default=200, help="number of training images (default 200)")
    ap.add_argument("--workers", type=int, default=2, help="DataLoader workers for the loader run (0: skip it)")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cv2-threads", type=int, default=1, help="cv2.setNumThreads for both sides (default 1)")
    ap.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="config whose Train transforms are run")
    ap.add_argument("--malloc", choices=["retain", "default"], default="retain",
                    help="glibc malloc policy for both sides (default: retain freed memory, see above)")
    ap.add_argument("--repeat", type=int, default=2,
                    help="single-process runs per side, alternating; the fastest counts (default 2)")
    ap.add_argument("--_side", dest="side", choices=["ours", "reference"], help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.images < 6:
        ap.error("--images must be at least 6")
    if args.repeat < 1:
        ap.error("--repeat must be at least 1")
    return run_tool("benchmarks/pipeline.py", lambda: _main(args))


def _main(args) -> int:
    if args.side:
        side_main(args)
        return 0
    load_samples(Path(args.data), args.images)  # fail early, in this process, on a bad folder
    print(f"benchmark_pipeline: {args.images} ICDAR2015 training images from {args.data}; config "
          f"{args.config.name} (Train transforms); seed {args.seed}; cv2.setNumThreads({args.cv2_threads}); "
          f"malloc {args.malloc} (both sides); "
          f"load average {os.getloadavg()[0]:.2f}", flush=True)
    runs: Dict[str, List[Dict[str, Any]]] = {"ours": [], "reference": []}
    for rep in range(args.repeat):  # alternate the sides; the loader runs in the first round only
        for side in runs:
            runs[side].append(_run_side(side, args, args.workers if rep == 0 else 0))
    ours, ref = ({**runs[side][0], **max(runs[side], key=lambda r: r["sps"])} for side in ("ours", "reference"))
    if args.repeat > 1:
        listed = {side: ", ".join(f"{r['sps']:.1f}" for r in rs) for side, rs in runs.items()}
        print(f"single-process results: the fastest of {args.repeat} alternating runs per side "
              f"(ours {listed['ours']}; reference {listed['reference']} samples/s)")
    print(f"reference: PyPI paddleocr==2.5.0.3 ppocr/data/imaug; IaaAugment: {ref['iaa_source']}")
    print(f"{'per-op ms/sample':40s}{'ours':>8s}{'reference':>11s}")
    ref_ms = dict(ref["ms_per_op"])
    for name, ms in ours["ms_per_op"].items():
        parts = name.split("+")
        theirs = sum(ref_ms.pop(p, 0.0) for p in parts)
        print(f"  {name:38s}{_fmt(ms)}   {_fmt(theirs)}")
    for name, ms in ref_ms.items():
        print(f"  {name:38s}{'':8s}   {_fmt(ms)}")
    print(f"  {'total (1 / samples per second)':38s}{_fmt(1000 / ours['sps'])}   {_fmt(1000 / ref['sps'])}")
    ratio = ours["sps"] / ref["sps"]
    print(f"single process: ours {ours['sps']:.1f} samples/s, reference {ref['sps']:.1f} samples/s, "
          f"ratio {ratio:.2f}x")
    print(f"  (CPU time of the process, less sensitive to other load: ours {ours['cpu_sps']:.1f}, reference "
          f"{ref['cpu_sps']:.1f} samples per CPU-second, ratio {ours['cpu_sps'] / ref['cpu_sps']:.2f}x)")
    print(f"peak RSS (single process): ours {ours['peak_rss_mb']:.0f} MB, reference {ref['peak_rss_mb']:.0f} MB")
    summary = {"ours_sps": round(ours["sps"], 2), "reference_sps": round(ref["sps"], 2), "ratio": round(ratio, 2),
               "ratio_cpu_time": round(ours["cpu_sps"] / ref["cpu_sps"], 2)}
    if args.workers > 0:
        print(f"paddle.io.DataLoader ({args.workers} workers, batch {args.batch_size}, shared memory; samples/s "
              f"after the first batch, in brackets with worker start-up):")
        for payload, what in (("full", "full batches (~11.5 MB of float32 arrays per sample)"),
                              ("none", "transforms only (workers return a checksum; no batch transfer)")):
            lo, lr = ours[f"loader_{payload}"], ref[f"loader_{payload}"]
            print(f"  {what}: ours {lo['sps']:.1f} ({lo['sps_with_startup']:.1f}), "
                  f"reference {lr['sps']:.1f} ({lr['sps_with_startup']:.1f})")
            key = "loader" if payload == "full" else "loader_transforms_only"
            summary.update({f"ours_{key}_sps": round(lo["sps"], 2), f"reference_{key}_sps": round(lr["sps"], 2)})
        print(f"  worker peak RSS: ours {ours['loader_full']['worker_peak_rss_mb']:.0f} MB, "
              f"reference {ref['loader_full']['worker_peak_rss_mb']:.0f} MB")
    summary.update(ours_peak_rss_mb=round(ours["peak_rss_mb"]), reference_peak_rss_mb=round(ref["peak_rss_mb"]),
                   images=args.images, workers=args.workers, repeat=args.repeat, cv2_threads=args.cv2_threads, malloc=args.malloc,
                   reference_iaa="opencv-equivalent" if ref["iaa_source"].startswith("OpenCV") else "imgaug",
                   dropped_reference=ref["dropped"], load_average=round(os.getloadavg()[0], 2))
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
