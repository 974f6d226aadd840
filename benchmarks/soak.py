"""Long CPU soak: train the CPU demo recipe on a synthetic set for N minutes and watch memory.

    python benchmarks/soak.py --minutes 30 [--config configs/det/cpu/demo_mv3_db.yml]
                                   [--work output/soak] [--num-workers 1] [--eval-every 100]

Generates the synthetic dataset (``tools/make_synth_dataset.py`` + ``tools/prepare_icdar2015.py``)
unless ``--data`` names a prepared ``text_localization`` folder, then runs ``tools/train.py`` with
unbounded epochs, periodic evaluation and a ``latest`` checkpoint every epoch, and samples the
resident set size (RSS) of the trainer process and of its data-loader workers every
``--interval`` seconds (written to ``WORK/rss_samples.jsonl``).  After ``--minutes`` it stops
training with SIGTERM (graceful: ``latest`` is saved) and reports, after a warm-up (the first 10%
of the run, at least 60 s, and at least until the first evaluation has finished, which allocates
the evaluation buffers once):

* ``rss_start_peak_mb`` / ``rss_end_peak_mb``: peak total RSS (trainer + workers) in the first
  and the last fifth of the measured period;
* ``rss_slope_mb_per_hour``: least-squares slope of total RSS over the measured period and
  ``rss_slope_second_half_mb_per_hour`` over its second half (``main_*`` the same for the
  trainer process alone);
* steps done, steps per second, evaluations, the trainer's exit code.

A leak shows as a clearly positive slope and an end peak above the start peak.  The last line
printed is one JSON object.  This is a benchmark, not a test: the documented run is
``--minutes 30``.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from dbnetpp.cli import add_config_args, positive_float, run_tool, tool_parser
from dbnetpp.errors import StepFailed
from dbnetpp.launch import run_until

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG = ROOT / "configs" / "det" / "cpu" / "demo_mv3_db.yml"
STEP = re.compile(r"global_step: (\d+),")


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    ap = tool_parser(__doc__)
    ap.add_argument("--minutes", type=positive_float, default=30.0, help="training time (default 30)")
    add_config_args(ap, default=str(DEFAULT_CONFIG))
    ap.add_argument("--work", default=str(ROOT / "output" / "soak"), help="folder for data, checkpoints, logs")
    ap.add_argument("--data", default=None, help="prepared text_localization folder (default: generate one)")
    ap.add_argument("--train-images", type=int, default=48, help="synthetic training images (default 48)")
    ap.add_argument("--num-workers", type=int, default=None, help="Train.loader.num_workers (default: config's)")
    ap.add_argument("--eval-every", type=int, default=100, help="evaluate every N global steps (default 100)")
    ap.add_argument("--interval", type=positive_float, default=5.0, help="seconds between RSS samples (default 5)")
    args = ap.parse_args(argv)
    if args.minutes <= 0 or args.interval <= 0:
        ap.error("--minutes and --interval must be > 0")
    return args


def run_step(args: List[str], log: Path) -> None:
    """``python ARGS`` with its output in ``log``; StepFailed with the log's last lines when it fails."""
    with open(log, "w", encoding="utf-8") as f:
        rc = subprocess.run([sys.executable, *args], cwd=str(ROOT), stdout=f, stderr=subprocess.STDOUT).returncode
    if rc != 0:
        raise StepFailed.from_log(os.path.relpath(args[0], ROOT), rc, log)


def prepare_data(work: Path, n_train: int) -> Path:
    """A synthetic dataset in PaddleOCR layout under ``work/data``; returns the text_localization folder."""
    raw, prepared = work / "data" / "raw", work / "data" / "text_localization"
    label = prepared / "train_icdar2015_label.txt"
    if label.is_file():
        return prepared
    if raw.exists():
        shutil.rmtree(raw)
    run_step([str(ROOT / "tools" / "make_synth_dataset.py"), "--dst", str(raw), "--train", str(n_train),
              "--test", "8", "--size", "256"], work / "make_synth_dataset.log")
    run_step([str(ROOT / "tools" / "prepare_icdar2015.py"), "--src", str(raw), "--dst", str(prepared), "--force",
              "--no-progress"], work / "prepare_icdar2015.log")
    return prepared


def process_tree(pid: int) -> List[int]:
    out, todo = [pid], [pid]
    while todo:
        cur = todo.pop()
        for task in Path(f"/proc/{cur}/task").glob("*"):
            try:
                kids = [int(p) for p in (task / "children").read_text().split()]
            except (OSError, ValueError):
                continue
            out += kids
            todo += kids
    return out


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return 0.0


def slope_per_hour(points: Sequence[Tuple[float, float]]) -> float:
    """Least-squares slope of ``(seconds, MB)`` points, in MB per hour."""
    if len(points) < 2:
        return 0.0
    n = len(points)
    mt = sum(t for t, _ in points) / n
    mv = sum(v for _, v in points) / n
    var = sum((t - mt) ** 2 for t, _ in points)
    if var == 0:
        return 0.0
    return sum((t - mt) * (v - mv) for t, v in points) / var * 3600.0


class LogWatcher:
    """Follows ``train.log``: last global step and number of finished evaluations."""

    def __init__(self, path: Path):
        self.path, self.offset, self.step, self.evals, self._rest = path, 0, 0, 0, ""

    def poll(self) -> None:
        try:
            with open(self.path, encoding="utf-8", errors="replace") as f:
                f.seek(self.offset)
                text = f.read()
                self.offset = f.tell()
        except OSError:
            return
        text, _, self._rest = (self._rest + text).rpartition("\n")  # complete lines only
        found = STEP.findall(text)
        if found:
            self.step = int(found[-1])
        self.evals += text.count("cur metric,")


def summarize(samples: List[Dict[str, float]], seconds: float) -> Dict[str, float]:
    warmup = max(60.0, 0.1 * seconds) if seconds > 120 else 0.1 * seconds
    first_eval = next((s["t"] for s in samples if s["evals"] >= 1), None)
    if first_eval is not None:
        warmup = max(warmup, first_eval)
    measured = [s for s in samples if s["t"] >= warmup] or samples
    half = [s for s in measured if s["t"] >= (measured[0]["t"] + measured[-1]["t"]) / 2]
    span = measured[-1]["t"] - measured[0]["t"] if measured else 0.0
    first = [s for s in measured if s["t"] <= measured[0]["t"] + span / 5] or measured[:1]
    last = [s for s in measured if s["t"] >= measured[-1]["t"] - span / 5] or measured[-1:]
    return {
        "warmup_seconds": round(warmup, 1),
        "rss_start_peak_mb": round(max(s["total"] for s in first), 1),
        "rss_end_peak_mb": round(max(s["total"] for s in last), 1),
        "rss_slope_mb_per_hour": round(slope_per_hour([(s["t"], s["total"]) for s in measured]), 2),
        "rss_slope_second_half_mb_per_hour": round(slope_per_hour([(s["t"], s["total"]) for s in half]), 2),
        "main_rss_start_peak_mb": round(max(s["main"] for s in first), 1),
        "main_rss_end_peak_mb": round(max(s["main"] for s in last), 1),
        "main_rss_slope_mb_per_hour": round(slope_per_hour([(s["t"], s["main"]) for s in measured]), 2),
        "rss_max_mb": round(max(s["total"] for s in samples), 1),
    }


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    return run_tool("benchmarks/soak.py", lambda: _main(args))


def _main(args) -> int:
    work = Path(args.work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    data = Path(args.data).resolve() if args.data else prepare_data(work, args.train_images)
    out = work / "out"
    if out.exists():
        shutil.rmtree(out)
    opts = [f"Train.dataset.data_dir={data}", f"Train.dataset.label_file_list=[{data / 'train_icdar2015_label.txt'}]",
            f"Eval.dataset.data_dir={data}", f"Eval.dataset.label_file_list=[{data / 'test_icdar2015_label.txt'}]",
            f"Global.save_model_dir={out}", "Global.epoch_num=1000000", "Global.save_epoch_step=1000000",
            f"Global.eval_batch_step=[0,{args.eval_every}]", "Global.eval_at_end=false", "Global.print_batch_step=10",
            *args.opt]
    if args.num_workers is not None:
        opts.append(f"Train.loader.num_workers={args.num_workers}")
    cmd = [sys.executable, str(ROOT / "tools" / "train.py"), "-c", args.config, "-o", *opts]
    start = time.monotonic()
    watcher = LogWatcher(out / "train.log")
    samples: List[Dict[str, float]] = []
    next_report = [start + 60.0]

    def sample(pid: int) -> None:  # every --interval seconds while training runs
        pids = process_tree(pid)
        main_mb = rss_mb(pid)
        watcher.poll()
        samples.append({"t": time.monotonic() - start, "main": main_mb, "evals": watcher.evals,
                        "total": main_mb + sum(rss_mb(p) for p in pids[1:]), "procs": len(pids)})
        if time.monotonic() >= next_report[0]:
            s = samples[-1]
            print(f"{s['t'] / 60:6.1f} min  step {watcher.step:6d}  RSS {s['total']:7.1f} MB "
                  f"(trainer {s['main']:.1f} MB, {int(s['procs'])} process(es))", file=sys.stderr, flush=True)
            next_report[0] += 60.0

    with open(work / "train_console.txt", "wb") as console:
        rc = run_until(cmd, console, time.time() + args.minutes * 60.0, stop_when=sample, interval=args.interval,
                       grace=600.0, cwd=str(ROOT), env=dict(os.environ, PYTHONUNBUFFERED="1")).returncode
    seconds = time.monotonic() - start
    watcher.poll()
    log = out / "train.log"
    steps = watcher.step
    text = log.read_text(errors="replace") if log.exists() else ""
    result = {"minutes": round(seconds / 60.0, 2), "config": args.config, "steps": steps,
              "steps_per_second": round(steps / seconds, 3) if seconds > 0 else 0.0,
              "evaluations": watcher.evals, "bad_steps": text.count("non-finite loss at global step"),
              "samples": len(samples), "exit_code": rc, "stopped_by_deadline": rc == 128 + signal.SIGTERM}
    if samples:
        result.update(summarize(samples, seconds))
    with open(work / "rss_samples.jsonl", "w", encoding="utf-8") as f:
        f.writelines(json.dumps({k: round(v, 2) for k, v in s.items()}) + "\n" for s in samples)
    print(f"soak: {result['minutes']} min, {steps} steps, exit {rc}; console: {work / 'train_console.txt'}, "
          f"RSS samples: {work / 'rss_samples.jsonl'}")
    if samples:
        print(f"RSS (trainer + workers): start peak {result['rss_start_peak_mb']} MB, end peak "
              f"{result['rss_end_peak_mb']} MB, slope {result['rss_slope_mb_per_hour']} MB/h")
    sys.stdout.flush()
    print(json.dumps(result), flush=True)
    return 0 if rc in (0, 128 + signal.SIGTERM) else 1


if __name__ == "__main__":
    sys.exit(main())
