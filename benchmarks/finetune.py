"""Fine-tuning benchmark: train a config on ICDAR2015, print test hmean against wall-clock minutes.

    python benchmarks/finetune.py -c configs/det/cpu/ft_mv3_db++_icdar15.yml [--procs 2] [--minutes 60] \\
        [--work output/bench_ft_dbpp] [-o Key=value ...]

Runs ``tools/train.py`` on the config as it is (its schedule, evaluation steps and Eval set are fixed in
the file before the run) with ``--procs`` data-parallel processes (``paddle.distributed.launch
--nproc_per_node``; on CPU one single-threaded process per core is the fastest layout), and reads the
evaluations the trainer logs (``metrics.jsonl``).  ``--minutes`` is a safety limit on the whole run's
wall time, evaluations included: when it is reached the trainer is stopped (SIGTERM: it saves ``latest``)
and the run is reported as cut.  Checkpoint choice is the trainer's: ``best_accuracy`` is the best
evaluation so far, as in PaddleOCR.

Prints one line per evaluation (minutes since start, step, epoch, precision, recall, hmean), then one
JSON object: ``precision`` / ``recall`` / ``hmean`` of the best evaluation (``best_accuracy``), the last
evaluation's under ``last``, ``minutes`` (whole run), ``minutes_to_best``, ``curve`` and ``config``.
Exit codes: 0 finished, 1 cut by ``--minutes`` or no evaluation ran, 2 error, 130 interrupted.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional

from dbnetpp.cli import add_config_args, tool_parser
from dbnetpp.dist import usable_cores
from dbnetpp.jsonline import read_events

ROOT = Path(__file__).resolve().parents[1]


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    ap = tool_parser(__doc__)
    add_config_args(ap, default="configs/det/cpu/ft_mv3_db++_icdar15.yml", example="Global.epoch_num=2")
    ap.add_argument("--procs", type=int, default=usable_cores(),
                    help="data-parallel processes (default: the number of CPU cores)")
    ap.add_argument("--minutes", type=float, default=60.0, help="wall-time limit of the whole run (default 60)")
    ap.add_argument("--work", help="output folder (Global.save_model_dir; default output/bench_finetune/<config>)")
    args = ap.parse_args(argv)
    if args.procs < 1 or args.minutes <= 0:
        ap.error("--procs must be >= 1 and --minutes > 0")
    return args


def _stop(proc: subprocess.Popen, timeout: float = 120) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def run(args, work: Path) -> Dict:
    cmd = [sys.executable]
    if args.procs > 1:
        cmd += ["-m", "paddle.distributed.launch", "--log_dir", str(work / "launch_logs"),
                "--nproc_per_node", str(args.procs)]
    cmd += [str(ROOT / "tools/train.py"), "-c", args.config, "-o", f"Global.save_model_dir={work}",
            "Global.use_gpu=False", *args.opt]
    start = time.time()
    deadline = start + args.minutes * 60
    log_path = work / "train.log"
    reason = "finished"
    with open(log_path, "w", encoding="utf-8") as log:
        proc = subprocess.Popen(cmd, cwd=os.getcwd(), stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            while proc.poll() is None:
                if time.time() > deadline:
                    reason = "cut by --minutes"
                    _stop(proc)
                    break
                time.sleep(2)
        except KeyboardInterrupt:
            reason = "interrupted"
            _stop(proc, timeout=30)
    end = time.time()
    if reason == "finished" and proc.returncode != 0:
        tail = log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-25:]
        raise RuntimeError(f"tools/train.py failed (exit {proc.returncode}); last lines of {log_path}:\n"
                           + "\n".join(tail))
    metrics = work / "metrics.jsonl"
    trains = read_events(metrics, "train")
    return {"evals": read_events(metrics, "eval"), "start": start, "end": end, "reason": reason,
            "steps": max((t["global_step"] for t in trains), default=0), "log": str(log_path)}


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    name = Path(args.config).stem
    work = Path(args.work or ROOT / "output" / "bench_finetune" / name).resolve()
    if work.exists() and any(work.iterdir()):
        print(f"error: {work} is not empty (a previous run?); choose another --work or remove it", file=sys.stderr)
        return 2
    work.mkdir(parents=True, exist_ok=True)
    print(f"fine-tuning {args.config} with {args.procs} process(es), limit {args.minutes:g} min; "
          f"log {work / 'train.log'}", flush=True)
    try:
        res = run(args, work)
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    curve = [{"minutes": round((e["time"] - res["start"]) / 60, 2), "step": e["global_step"],
              "epoch": e.get("epoch"), "precision": e["precision"], "recall": e["recall"], "hmean": e["hmean"]}
             for e in res["evals"]]
    for c in curve:
        print(f"{c['minutes']:7.2f} min  step {c['step']:>6}  epoch {c['epoch']}  precision {c['precision']:.4f}  "
              f"recall {c['recall']:.4f}  hmean {c['hmean']:.4f}", flush=True)
    if not curve:
        print(f"error: no evaluation ran ({res['reason']}; see {res['log']})", file=sys.stderr)
        return 130 if res["reason"] == "interrupted" else 1
    best = max(curve, key=lambda c: (c["hmean"], -c["step"]))
    print(f"{res['reason']}: best hmean {best['hmean']:.4f} at step {best['step']} ({best['minutes']:.1f} min)")
    print(json.dumps({"precision": best["precision"], "recall": best["recall"], "hmean": best["hmean"],
                      "minutes": round((res["end"] - res["start"]) / 60, 2), "minutes_to_best": best["minutes"],
                      "best_step": best["step"], "steps": res["steps"], "last": curve[-1], "curve": curve,
                      "reason": res["reason"], "procs": args.procs, "config": args.config, "overrides": args.opt,
                      "save_model_dir": str(work)}))
    if res["reason"] == "interrupted":
        return 130
    return 0 if res["reason"] == "finished" else 1


if __name__ == "__main__":
    sys.exit(main())
