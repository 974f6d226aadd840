"""Whole-loop parity with PaddleOCR release/2.5's trainer: set-up, runs, summaries and comparison.

Each case trains a recipe for ``STEPS_PER_EPOCH x EPOCHS`` = 24 optimizer steps (past the warm-up into
the cosine part) from the same start weights (:func:`start_weights`, a NumPy rule, identical on every
machine and Paddle version) on the same fixed batches (``loop_probe.fixed_batch``), through our
``Trainer`` and through PaddleOCR's ``tools/train.py`` + ``tools/program.py`` (``loop_probe.py``), with
1 process and with 2 (gloo).  What is compared: per step, the learning rate and the four DB loss terms
of rank 0's batch; after the last step, every entry of ``latest.pdparams`` (parameters and BatchNorm
running statistics).

CI machines have no release/2.5 tree, so PaddleOCR's side is committed as reference data
(``data/loop_parity/<case>_<procs>p.json``: the steps, a per-entry summary of the final state and a
SHA-256 of it), regenerated where a tree exists with::

    PADDLEOCR_DIR=/path/to/PaddleOCR-release-2.5 .venv/bin/python tests/upstream/loop_parity.py generate

A full final state dict is several MB per case, so the reference keeps its SHA-256 (compared) and, for
each entry, its sum, absolute sum, L2 norm, its projection on a seeded Gaussian vector and 16 seeded sample
values: when the digests differ, these say how far apart the runs are.
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
PROBE = HERE / "loop_probe.py"
DATA = HERE / "data" / "loop_parity"

STEPS_PER_EPOCH = 4
EPOCHS = 6  # 24 steps
BATCH_PER_CARD = 2
INIT_SEED = 7
SUMMARY_SEED = 11
SAMPLES = 16

#: (config, overrides): PaddleOCR's det_mv3_db.yml (Adam, constant rate 1e-3, L2 factor 0), and the DBNet
#: fine-tune recipe (Adam, L2 5e-5, cosine with linear warm-up; warm-up 1.5 epochs = 6 of the 24 steps here,
#: where the recipe's 0.2 epochs would round to one step)
CASES: Dict[str, tuple] = {
    "det_mv3_db": ("configs/det/det_mv3_db.yml", []),
    "ft_mv3_db": ("configs/det/cpu/ft_mv3_db++_icdar15.yml",
                  ["Architecture.Neck.use_asf=False", "Optimizer.lr.warmup_epoch=1.5"]),
}
PROCS = (1, 2)

#: MKL picks its kernels by CPU (AVX-512, AVX2, ...), which changes float32 rounding; Adam turns such
#: last-bit differences into whole steps within a few iterations (the sign of a near-zero gradient), so
#: the runs use MKL's conditional-numerical-reproducibility mode, the same on every x86-64 CPU
KERNEL_ENV = {"MKL_CBWR": "COMPATIBLE"}

# Tolerances.  Measured: both loops give the same bits at every step and after the last (the final states'
# SHA-256 agree), for both cases and both process counts.  The learning rate is compared within float64
# rounding, the losses exactly, the final state by its SHA-256 (:func:`summary_differences` then only says
# how far apart two runs are that are not identical).
LR_RTOL = 1e-12
LOSS_RTOL = 0.0


def run_config(case: str, work: Path) -> List[str]:
    """Overrides that make ``case`` the parity run: fixed-length schedule, exact per-step logging, start
    weights from ``work/init``, no evaluation, output in ``work/out``."""
    _, extra = CASES[case]
    return [*extra, f"Global.epoch_num={EPOCHS}", "Global.print_batch_step=1", "Global.log_smooth_window=1",
            "Global.eval_at_end=False", f"Global.save_model_dir={work / 'out'}", "Global.save_epoch_step=1000",
            f"Global.pretrained_model={work / 'init'}", "Global.use_visualdl=False", "Global.use_gpu=False",
            "Global.use_amp=False", "Global.seed=1024", f"Train.loader.batch_size_per_card={BATCH_PER_CARD}"]


def start_weights(arch: Mapping[str, Any]) -> Dict[str, np.ndarray]:
    """Start weights for ``arch`` by a NumPy rule over the state-dict entries in order (``i``: index):
    BatchNorm mean 0.1 N(0,1), variance U(0.5, 1.5); conv kernels N(0,1) * sqrt(2 / fan_in); other
    weights U(0.5, 1.0); biases 0.05 N(0,1); each from ``default_rng((INIT_SEED, i))``."""
    from dbnetpp.modeling import build_model

    out = {}
    for i, (name, value) in enumerate(build_model(dict(arch)).state_dict().items()):
        shape = list(value.shape)
        rng = np.random.default_rng([INIT_SEED, i])
        if name.endswith("._mean"):
            arr = 0.1 * rng.standard_normal(shape)
        elif name.endswith("._variance"):
            arr = rng.uniform(0.5, 1.5, shape)
        elif len(shape) == 4:
            arr = rng.standard_normal(shape) * np.sqrt(2.0 / max(1, int(np.prod(shape[1:]))))
        elif name.endswith(".bias"):
            arr = 0.05 * rng.standard_normal(shape)
        else:
            arr = rng.uniform(0.5, 1.0, shape)
        out[name] = arr.astype(np.float32)
    return out


def prepare(case: str, work: Path) -> Path:
    """``work/config.yml`` (the case's config with :func:`run_config`) and ``work/init.pdparams``."""
    import paddle

    from dbnetpp.config import load_config, save_config

    config, _ = CASES[case]
    cfg = load_config(str(ROOT / config), run_config(case, work))
    work.mkdir(parents=True, exist_ok=True)
    path = work / "config.yml"
    save_config(cfg, str(path))
    paddle.save({k: paddle.to_tensor(v) for k, v in start_weights(cfg["Architecture"]).items()},
                str(work / "init.pdparams"))
    return path


def run(engine: str, case: str, procs: int, work: Path, env: Optional[Dict[str, str]] = None,
        timeout: int = 900, parts: str = "upstream") -> Dict[str, Any]:
    """Train ``case`` with ``engine`` on ``procs`` processes in ``work`` -> ``{"steps", "state"}``
    (``parts``: for the paddleocr engine, which of model and loss are ours, see ``loop_probe.py``)."""
    config = prepare(case, work)
    cmd = [sys.executable]
    if procs > 1:
        cmd += ["-m", "paddle.distributed.launch", "--log_dir", str(work / "launch_logs"),
                "--nproc_per_node", str(procs)]
    cmd += [str(PROBE), "--engine", engine, "--config", str(config), "--work", str(work),
            "--steps-per-epoch", str(STEPS_PER_EPOCH), "--parts", parts]
    run_env = dict(env or os.environ)
    run_env.update(KERNEL_ENV)
    run_env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), run_env.get("PYTHONPATH", "")) if p)
    proc = subprocess.run(cmd, cwd=str(work), env=run_env, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        logs = "".join((work / "launch_logs" / f"workerlog.{r}").read_text(errors="replace")[-3000:]
                       for r in range(procs) if (work / "launch_logs" / f"workerlog.{r}").is_file())
        raise RuntimeError(f"{engine} {case} {procs}p failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n"
                           f"{proc.stderr[-3000:]}\n{logs}")
    steps = json.loads((work / "steps.json").read_text(encoding="utf-8"))
    return {"steps": steps, "state": load_state(work / "out" / "latest.pdparams")}


def load_state(path: Path) -> Dict[str, np.ndarray]:
    import paddle

    return {k: np.asarray(v.numpy() if hasattr(v, "numpy") else v, dtype=np.float32)
            for k, v in paddle.load(str(path)).items()}


def digest(state: Mapping[str, np.ndarray]) -> str:
    """SHA-256 over the entries' names and float32 bytes, in order."""
    h = hashlib.sha256()
    for name, arr in state.items():
        h.update(name.encode())
        h.update(np.ascontiguousarray(arr, dtype=np.float32).tobytes())
    return h.hexdigest()


def summarize(state: Mapping[str, np.ndarray]) -> Dict[str, Dict[str, Any]]:
    """Per entry: shape, sum, absolute sum, L2 norm, projection on a seeded Gaussian vector, sampled values."""
    out = {}
    for i, (name, arr) in enumerate(state.items()):
        flat = np.asarray(arr, dtype=np.float64).ravel()
        rng = np.random.default_rng([SUMMARY_SEED, i])
        idx = np.sort(rng.choice(flat.size, min(flat.size, SAMPLES), replace=False))
        direction = rng.standard_normal(flat.size)
        out[name] = {"shape": list(arr.shape), "sum": float(flat.sum()), "abs_sum": float(np.abs(flat).sum()),
                     "l2": float(np.sqrt((flat ** 2).sum())), "proj": float(flat @ direction),
                     "index": idx.tolist(), "samples": flat[idx].tolist()}
    return out


def compare_steps(ours: List[Mapping[str, float]], ref: List[Mapping[str, float]]) -> Dict[str, float]:
    """Asserts same step count, learning rates within LR_RTOL and loss terms within LOSS_RTOL; returns
    the largest relative differences."""
    assert len(ours) == len(ref) == STEPS_PER_EPOCH * EPOCHS, (len(ours), len(ref))
    worst = {"lr": 0.0, "loss": 0.0}
    for a, b in zip(ours, ref):
        assert a["step"] == b["step"], (a, b)
        worst["lr"] = max(worst["lr"], abs(a["lr"] - b["lr"]) / max(abs(b["lr"]), 1e-12))
        assert abs(a["lr"] - b["lr"]) <= LR_RTOL * abs(b["lr"]), f"step {a['step']}: lr {a['lr']} vs {b['lr']}"
        for key in ("loss", "loss_shrink_maps", "loss_threshold_maps", "loss_binary_maps"):
            rel = abs(a[key] - b[key]) / max(abs(b[key]), 1e-12)
            worst["loss"] = max(worst["loss"], rel)
            assert rel <= LOSS_RTOL, f"step {a['step']}: {key} {a[key]} vs {b[key]} (relative {rel:.2e})"
    return worst


def summary_differences(ours: Mapping[str, Mapping], ref: Mapping[str, Mapping]) -> Dict[str, float]:
    """The largest differences between two summaries, to say how far apart two runs are that are not identical
    (asserts only that the entries, shapes and sampled positions agree)."""
    assert list(ours) == list(ref), "state-dict entries differ"
    worst = {"sample_abs": 0.0, "aggregate_rel": 0.0}
    for name, r in ref.items():
        o = ours[name]
        assert o["shape"] == r["shape"], (name, o["shape"], r["shape"])
        assert o["index"] == r["index"], name
        worst["sample_abs"] = max(worst["sample_abs"], float(np.max(np.abs(np.subtract(o["samples"], r["samples"])))))
        # the projection on a unit-variance Gaussian vector is of the order of the L2 norm
        for key, scale in (("sum", r["abs_sum"]), ("abs_sum", r["abs_sum"]), ("l2", r["l2"]), ("proj", r["l2"])):
            worst["aggregate_rel"] = max(worst["aggregate_rel"], abs(o[key] - r[key]) / max(scale, 1e-12))
    return worst


def cpu_isa() -> List[str]:
    """The vector extensions Paddle's CPU kernels choose between at run time (Linux ``/proc/cpuinfo``)."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    flags = set(next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), []))
    return sorted(flags & {"avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_bf16", "amx_tile"})


def reference_path(case: str, procs: int) -> Path:
    return DATA / f"{case}_{procs}p.json"


def generate(work_root: Path) -> None:
    """Run PaddleOCR's loop for every case and process count; write the reference files."""
    import paddle

    from ppocr_patches.checkout import commit_of, resolve_dir

    checkout = resolve_dir(None)
    DATA.mkdir(parents=True, exist_ok=True)
    for case in CASES:
        for procs in PROCS:
            res = run("paddleocr", case, procs, work_root / f"{case}_{procs}p")
            ref = {"case": case, "config": CASES[case][0], "overrides": run_config(case, Path("WORK")),
                   "procs": procs, "steps_per_epoch": STEPS_PER_EPOCH, "epochs": EPOCHS,
                   "batch_size_per_card": BATCH_PER_CARD, "engine": "PaddleOCR release/2.5 tools/train.py",
                   "paddleocr_commit": commit_of(checkout), "paddle": paddle.__version__,
                   "numpy": np.__version__, "machine": platform.machine(), "cpu_isa": cpu_isa(), "kernel_env": KERNEL_ENV,
                   "regenerate": "PADDLEOCR_DIR=... python tests/upstream/loop_parity.py "
                   "generate", "steps": res["steps"], "state_sha256": digest(res["state"]),
                   "state": summarize(res["state"])}
            reference_path(case, procs).write_text(json.dumps(ref, separators=(",", ":")) + "\n", encoding="utf-8")
            print(f"wrote {reference_path(case, procs)}: {len(res['steps'])} steps, "
                  f"final loss {res['steps'][-1]['loss']:.6f}", flush=True)


def main(argv: Optional[List[str]] = None) -> int:
    import argparse
    import tempfile

    ap = argparse.ArgumentParser(description="regenerate the whole-loop parity reference (needs a release/2.5 tree)")
    ap.add_argument("command", choices=("generate",))
    ap.add_argument("--work", help="folder for the runs (default: a temporary one)")
    args = ap.parse_args(argv)
    if args.work:
        generate(Path(args.work).resolve())
    else:
        with tempfile.TemporaryDirectory() as tmp:
            generate(Path(tmp))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
