"""Timing helpers for ``benchmarks/infer.py``: engine candidates, tuning and per-stage timing.

A *candidate* is one way of running a model (backend + settings).  :func:`tune` times every
candidate on a few images and keeps the fastest; :func:`time_pipelines` then measures
pre-processing, inference and post-processing per image over the whole image set, for all
models and backends side by side.
"""
from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

from .engines import OrtEngine, PaddleEngine
from .predictor import finish_quads

__all__ = ["Candidate", "paddle_candidates", "ort_candidates", "tune", "time_pipelines", "StageTimes"]


@dataclass
class Candidate:
    """One backend configuration; ``make()`` builds the engine."""

    backend: str  # "paddle" or "onnxruntime"
    settings: Dict[str, object]
    make: Callable[[], Callable[[np.ndarray], np.ndarray]] = field(repr=False)

    def label(self) -> str:
        return self.backend + "(" + ", ".join(f"{k}={v}" for k, v in self.settings.items()) + ")"


def paddle_candidates(model_file: str, params_file: str, threads: Sequence[int], unfused: Optional[tuple] = None
                      ) -> List[Candidate]:
    """oneDNN on/off x thread counts; plus, if ``unfused=(model_file, params_file)`` of an export
    without BN folding, that model with oneDNN and the largest thread count."""
    out = []
    for mkldnn in (True, False):
        for t in sorted(threads, reverse=True):
            if not mkldnn and t != max(threads):
                continue  # plain CPU kernels are far slower; one thread count suffices
            out.append(Candidate("paddle", {"mkldnn": mkldnn, "threads": t, "folded_bn": True},
                                 lambda m=mkldnn, t=t: PaddleEngine(model_file, params_file, threads=t, mkldnn=m)))
    if unfused:
        t = max(threads)
        out.append(Candidate("paddle", {"mkldnn": True, "threads": t, "folded_bn": False},
                             lambda t=t: PaddleEngine(unfused[0], unfused[1], threads=t, mkldnn=True)))
    return out


def ort_candidates(onnx_file: str, threads: Sequence[int], unfused_onnx: Optional[str] = None,
                   folded: Optional[bool] = True) -> List[Candidate]:
    """Graph optimisation levels x intra-op threads, thread spinning off, and the unfused export."""
    out = []
    t_max = max(threads)
    extra = {} if folded is None else {"folded_bn": folded}
    for level in ("all", "extended", "basic"):
        for t in sorted(threads, reverse=True):
            if level != "all" and t != t_max:
                continue
            out.append(Candidate("onnxruntime", {"opt_level": level, "threads": t, "spinning": True, **extra},
                                 lambda lv=level, t=t: OrtEngine(onnx_file, threads=t, opt_level=lv)))
    out.append(Candidate("onnxruntime", {"opt_level": "all", "threads": t_max, "spinning": False, **extra},
                         lambda: OrtEngine(onnx_file, threads=t_max, opt_level="all", spinning=False)))
    if unfused_onnx:
        out.append(Candidate("onnxruntime", {"opt_level": "all", "threads": t_max, "spinning": True,
                                             "folded_bn": False},
                             lambda: OrtEngine(unfused_onnx, threads=t_max, opt_level="all")))
    return out


def _run_ms(engine, inputs: Sequence[np.ndarray]) -> float:
    t0 = time.perf_counter()
    for x in inputs:
        engine(x)
    return (time.perf_counter() - t0) * 1000.0 / len(inputs)


def tune(candidates: Sequence[Candidate], inputs: Sequence[np.ndarray], runs: int = 3,
         log: Callable[[str], None] = print) -> tuple:
    """Pick the fastest candidate on ``inputs``.

    Every candidate's engine is built and warmed up (kernel selection, oneDNN primitive cache,
    memory arenas), then timed in ``runs`` interleaved rounds, so a change of machine load hits
    all candidates alike.  After the first round, candidates over 3x slower than the best are
    dropped.  Returns ``(best candidate, its engine, [(label, median ms per input or None)])``.
    """
    engines = [c.make() for c in candidates]
    for e in engines:
        for x in inputs:
            e(x)
    times: Dict[int, List[float]] = {i: [] for i in range(len(engines))}
    alive = list(range(len(engines)))
    for r in range(runs):
        for i in alive:
            times[i].append(_run_ms(engines[i], inputs))
        if r == 0:
            fastest = min(times[i][0] for i in alive)
            alive = [i for i in alive if times[i][0] <= 3.0 * fastest]
    medians = {i: statistics.median(times[i]) for i in alive}
    best = min(medians, key=medians.get)
    table = []
    for i, cand in enumerate(candidates):
        ms = medians.get(i)
        table.append((cand.label(), ms))
        log(f"    {cand.label():<78} " + (f"{ms:8.1f} ms" if ms is not None else
                                            f"dropped ({times[i][0]:.0f} ms > 3x the fastest)"))
    engine = engines[best]
    del engines
    return candidates[best], engine, table


@dataclass
class StageTimes:
    pre: List[float] = field(default_factory=list)
    infer: List[float] = field(default_factory=list)
    post: List[float] = field(default_factory=list)
    boxes: int = 0

    def summary(self) -> Dict[str, float]:
        mean = lambda v: float(np.mean(v)) if v else 0.0  # noqa: E731
        pre, infer, post = mean(self.pre), mean(self.infer), mean(self.post)
        return {"pre_ms": round(pre, 2), "infer_ms": round(infer, 2), "post_ms": round(post, 2),
                "total_ms": round(pre + infer + post, 2), "infer_ms_median": round(float(np.median(self.infer)), 2),
                "boxes_per_image": round(self.boxes / max(len(self.infer), 1), 2)}


def time_pipelines(images: Sequence[np.ndarray], runners: Dict[str, tuple], warmup: int = 2
                   ) -> Dict[str, StageTimes]:
    """Per image and per runner ``(pre, engine, post)``: pre-process (resize + normalise + CHW),
    inference, DB post-processing with the final box step.  The runners take turns on each image
    (in rotating order), so load changes during the run affect them alike.  The first ``warmup``
    images also run once untimed."""
    out = {name: StageTimes() for name in runners}
    names = list(runners)
    seq = [(img, False) for img in images[:warmup]] + [(img, True) for img in images]
    for k, (img, timed) in enumerate(seq):
        for name in names[k % len(names):] + names[:k % len(names)]:
            pre, engine, post = runners[name]
            t0 = time.perf_counter()
            chw, shape = pre(img)
            x = chw[None]
            t1 = time.perf_counter()
            prob = engine(x)
            t2 = time.perf_counter()
            res = post.process_map(prob[0, 0], int(shape[0]), int(shape[1]))
            boxes, _ = finish_quads(res["points"], res["scores"], int(shape[0]), int(shape[1]))
            t3 = time.perf_counter()
            if timed:
                st = out[name]
                st.pre.append((t1 - t0) * 1000.0)
                st.infer.append((t2 - t1) * 1000.0)
                st.post.append((t3 - t2) * 1000.0)
                st.boxes += len(boxes)
    return out
