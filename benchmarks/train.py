"""Training throughput of a config: samples/s, data-wait fraction and peak memory for a fixed number of steps.

    python benchmarks/train.py -c configs/det/cpu/demo_mv3_db.yml --steps 20 [--warmup 3] [-o Key=value ...]
    python benchmarks/train.py -c configs/det/cpu/demo_mv3_db.yml --steps 20 --compare-procs 1,2
    python benchmarks/train.py -c configs/det/cpu/ft_mv3_db++_icdar15.yml --steps 20 --compare-options --procs 2

Runs the project trainer (:class:`dbnetpp.engine.trainer.Trainer`) for ``warmup + steps`` global steps
with logging after every step, no evaluation and checkpoints in a temporary folder, then reads the
per-step timings it wrote to ``metrics.jsonl``.  The first ``--warmup`` steps (data-loader start-up,
first-call kernel selection) are left out of the figures.

* ``samples_per_s``: training samples per second on this process (all ranks when launched on several);
* ``step_s``: mean wall time per step (data wait included);
* ``data_wait_fraction``: share of the step time spent waiting for the next batch from the loader;
* ``peak_rss_mb``: peak resident memory of this process; ``workers_peak_rss_mb``: sum of the peaks of
  the loader worker processes, sampled every 0.5 s (0 with ``num_workers: 0``).

``--compare-procs 1,2`` measures the same training (the config's ``batch_size_per_card`` as the total
batch, split evenly over the processes) in one process and in data-parallel groups of 2, ... processes
(``paddle.distributed.launch --nproc_per_node``, gloo on CPU), one after the other in this run, and
reports each and their ``speedup`` over the first.  On CPU this is the before/after of running one
single-threaded process per core (what ``scripts/train.sh`` does by default on CPU).

``--compare-options --procs 2`` measures, one after the other on ``--procs`` processes (sharing the
config's ``batch_size_per_card`` as the total batch, as ``--compare-procs`` does), what may speed a step: the eager model (the reference), the static
graph (``Global.to_static``), Paddle's oneDNN kernels (``FLAGS_use_mkldnn`` / ``FLAGS_use_onednn``) with
and without it, and the loader's ``num_workers`` 0 / 2 and ``use_shared_memory``; each with its
``speedup`` over the first, and an option that fails with the last line of its error.

The last line printed is one JSON object with these numbers.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from typing import Dict, List, Optional

from dbnetpp.cli import add_config_args, int_list, run_tool, tool_parser
from dbnetpp.config import load_config
from dbnetpp.errors import ConfigError, StepFailed, UsageError
from dbnetpp.jsonline import last_json_line
from dbnetpp.launch import LaunchError, cpu_launch_prefix, split_batch


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    ap = tool_parser(__doc__)
    add_config_args(ap)
    ap.add_argument("--steps", type=int, default=20, help="measured training steps (default 20)")
    ap.add_argument("--warmup", type=int, default=3, help="steps run first and not measured (default 3)")
    ap.add_argument("--compare-procs", type=int_list(1, "process counts", "1,2"), default=None, metavar="P1,P2,...",
                    help="run the same total batch in P1, P2, ... processes, side by side (e.g. 1,2)")
    ap.add_argument("--compare-options", nargs="?", const=",".join(OPTIONS), type=_option_list, default=None,
                    metavar="NAME,...", help="measure each speed option (static graph, oneDNN, loader settings) "
                    f"side by side; default all of: {', '.join(OPTIONS)}")
    ap.add_argument("--procs", type=int, default=1,
                    help="processes per run of --compare-options (the config's batch per process; default 1)")
    args = ap.parse_args(argv)
    if args.steps < 1 or args.warmup < 0 or args.procs < 1:
        ap.error("--steps and --procs must be >= 1 and --warmup >= 0")
    if args.compare_procs and args.compare_options:
        ap.error("give --compare-procs or --compare-options, not both")
    return args


def _option_list(text: str) -> List[str]:
    names = [v.strip() for v in text.split(",") if v.strip()]
    unknown = [n for n in names if n not in OPTIONS]
    if not names or unknown:
        raise argparse.ArgumentTypeError(f"unknown option(s) {', '.join(unknown) or repr(text)}; "
                                         f"choose from: {', '.join(OPTIONS)}")
    return names


def _run_child(args, procs: int, opts: List[str], env: Optional[Dict[str, str]] = None) -> Dict:
    """This tool on ``procs`` processes with ``opts`` after the command line's overrides and ``env`` added to the
    environment -> its JSON result; StepFailed with the output when it fails."""
    with tempfile.TemporaryDirectory(prefix="bench_procs_") as logs:
        cmd = cpu_launch_prefix(procs, logs) + [os.path.abspath(__file__), "-c", args.config, "--steps", str(args.steps), "--warmup",
                str(args.warmup)]
        if args.opt or opts:
            cmd += ["-o", *args.opt, *opts]
        print(f"--- {' '.join(f'{k}={v}' for k, v in (env or {}).items())} {' '.join(cmd)}", file=sys.stderr,
              flush=True)
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              env={**os.environ, **(env or {})})
        out = proc.stdout
        if procs > 1 and os.path.isfile(os.path.join(logs, "workerlog.0")):
            with open(os.path.join(logs, "workerlog.0"), encoding="utf-8", errors="replace") as f:
                out += f.read()
        result = last_json_line(out)
        if proc.returncode != 0 or result is None:
            raise StepFailed(f"the {procs}-process run failed (exit {proc.returncode}); its output:\n{out[-3000:]}")
    return result


def compare_procs(args, cfg: Dict) -> Dict:
    """Run this tool once per process count in ``args.compare_procs`` (same total batch); collect the results."""
    total = int(((cfg.get("Train") or {}).get("loader") or {}).get("batch_size_per_card") or 0)
    bad = [p for p in args.compare_procs if total % p]
    if total < 1 or bad:
        raise ConfigError(f"the total batch {total} (Train.loader.batch_size_per_card) cannot be split evenly over "
                          f"{', '.join(map(str, bad))} process(es)", key="Train.loader.batch_size_per_card")
    runs = []
    for procs in args.compare_procs:
        result = _run_child(args, procs, [f"Train.loader.batch_size_per_card={total // procs}"])
        result["procs"] = procs
        runs.append(result)
    base = runs[0]["samples_per_s"] or 0
    for r in runs:
        r["speedup"] = round(r["samples_per_s"] / base, 3) if base and r["samples_per_s"] else None
    return {"config": args.config, "total_batch": total, "steps": args.steps, "runs": runs,
            "cpu_count": os.cpu_count(), "overrides": args.opt}


#: what ``--compare-options`` measures: name -> (-o overrides, environment); the first is the reference
OPTIONS = {
    "eager": ([], {}),
    "to_static": (["Global.to_static=true"], {}),
    "onednn": ([], {"FLAGS_use_mkldnn": "1", "FLAGS_use_onednn": "1"}),
    "to_static+onednn": (["Global.to_static=true"], {"FLAGS_use_mkldnn": "1", "FLAGS_use_onednn": "1"}),
    "to_static+workers0": (["Global.to_static=true", "Train.loader.num_workers=0"], {}),
    "to_static+workers2": (["Global.to_static=true", "Train.loader.num_workers=2"], {}),
    "to_static+shared_memory": (["Global.to_static=true", "Train.loader.use_shared_memory=true"], {}),
}


def compare_options(args) -> Dict:
    """Each of the chosen :data:`OPTIONS` on ``args.procs`` processes, one after the other: samples/s and speedup
    over the first; an option that fails is reported with the last line of its error, not fatal."""
    total = int(load_config(args.config, args.opt)["Train"]["loader"]["batch_size_per_card"])
    try:
        split = [f"Train.loader.batch_size_per_card={split_batch(total, args.procs)}"]
    except LaunchError as exc:
        raise ConfigError(str(exc), key="Train.loader.batch_size_per_card") from None
    runs = []
    for name in args.compare_options:
        opts, env = OPTIONS[name]
        try:
            result = _run_child(args, args.procs, split + opts, env)
        except StepFailed as exc:
            tail = [ln for ln in str(exc).splitlines() if ln.strip()]
            result = {"samples_per_s": None, "error": tail[-1][:300] if tail else "failed"}
        runs.append({"option": name, "overrides": opts, "env": env, **result})
    base = runs[0]["samples_per_s"] or 0
    for r in runs:
        r["speedup"] = round(r["samples_per_s"] / base, 3) if base and r["samples_per_s"] else None
    return {"config": args.config, "procs": args.procs, "steps": args.steps, "runs": runs,
            "cpu_count": os.cpu_count(), "overrides": args.opt}


def _children(pid: int) -> List[int]:
    """Descendant process ids (Linux /proc), for the data-loader workers."""
    out: List[int] = []
    try:
        task_dir = f"/proc/{pid}/task"
        for tid in os.listdir(task_dir):
            with open(os.path.join(task_dir, tid, "children")) as f:
                for c in f.read().split():
                    out.append(int(c))
                    out.extend(_children(int(c)))
    except OSError:
        pass
    return out


def _peak_rss_mb(pid: int) -> float:
    """VmHWM (peak resident set) of ``pid`` in MiB, 0 when unavailable."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return 0.0


class WorkerMemory(threading.Thread):
    """Samples the peak RSS of this process's descendants (loader workers) every ``period`` seconds."""

    def __init__(self, period: float = 0.5):
        super().__init__(daemon=True)
        self.period = period
        self.peaks: Dict[int, float] = {}
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(self.period):
            self.sample()

    def sample(self) -> None:
        for pid in _children(os.getpid()):
            self.peaks[pid] = max(self.peaks.get(pid, 0.0), _peak_rss_mb(pid))

    def stop(self) -> float:
        self.sample()
        self._stop_event.set()
        return sum(self.peaks.values())


def benchmark(cfg: Dict, steps: int, warmup: int) -> Optional[Dict]:
    from dbnetpp.engine.trainer import Trainer

    with tempfile.TemporaryDirectory(prefix="bench_train_") as tmp:
        g = cfg.setdefault("Global", {})
        total = steps + warmup
        g.update(save_model_dir=tmp, max_steps=total, epoch_num=total, print_batch_step=1, log_smooth_window=1,
                 eval_batch_step=None, eval_at_end=False, save_epoch_step=10 ** 6, use_visualdl=False,
                 checkpoints=None, pretrained_model=None)
        cfg["Eval"] = None
        memory = WorkerMemory()
        memory.start()
        t0 = time.time()
        trainer = Trainer(cfg)
        setup_s = time.time() - t0
        trainer.train()
        wall_s = time.time() - t0
        workers = memory.stop()
        if trainer.env.rank != 0:  # rank 0 writes metrics.jsonl and reports for all ranks
            return None
        records = []
        with open(os.path.join(tmp, "metrics.jsonl"), encoding="utf-8") as f:
            for line in f:
                rec = json.loads(line)
                if rec.get("event") == "train":
                    records.append(rec)
        world = trainer.env.world_size
        loader = cfg["Train"].get("loader") or {}
    measured = [r for r in records if r["global_step"] > warmup]
    if not measured:
        raise UsageError(f"no per-step timings after the {warmup} warm-up steps (the Train set may be smaller "
                         f"than --steps allows; see the log above)")
    batch_s = sum(r["batch_cost"] for r in measured)
    reader_s = sum(r["reader_cost"] for r in measured)
    samples = sum(r["ips"] * r["batch_cost"] for r in measured)
    return {
        "config": cfg.get("__file__"),
        "steps": len(measured),
        "warmup_steps": warmup,
        "batch_size_per_card": loader.get("batch_size_per_card"),
        "world_size": world,
        "num_workers": loader.get("num_workers"),
        "samples_per_s": round(samples / batch_s, 3) if batch_s > 0 else None,
        "step_s": round(batch_s / len(measured), 4),
        "data_wait_fraction": round(reader_s / batch_s, 4) if batch_s > 0 else None,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1),
        "workers_peak_rss_mb": round(workers, 1),
        "setup_s": round(setup_s, 2),
        "wall_s": round(wall_s, 2),
    }


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    return run_tool("benchmarks/train.py", lambda: _main(args))


def _main(args) -> int:
    cfg = load_config(args.config, args.opt)
    if args.compare_procs:
        result = compare_procs(args, cfg)
        for r in result["runs"]:
            print(f"{r['procs']} process(es) x batch {r['batch_size_per_card']}: {r['samples_per_s']} samples/s, "
                  f"step {r['step_s']} s, data wait {r['data_wait_fraction']}, speedup {r['speedup']}")
    elif args.compare_options:
        result = compare_options(args)
        for r in result["runs"]:
            print(f"{r['option']:<24} {r['samples_per_s'] or 0:7.3f} samples/s  speedup {r['speedup']}  "
                  f"data wait {r.get('data_wait_fraction')}" + (f"  FAILED: {r['error']}" if "error" in r else ""))
    else:
        result = benchmark(cfg, args.steps, args.warmup)
    if result is not None:
        sys.stdout.flush()
        print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
