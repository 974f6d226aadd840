"""Fine-tuning benchmark: train a config, choose its checkpoint on the validation set, score the test set once.

    python benchmarks/finetune.py -c configs/det/cpu/ft_mv3_db++_icdar15.yml [--procs 2] [--minutes 60] \\
        [--test LABEL_FILE] [--test-scales 960,1280,1600,2048] [--work output/bench_ft_dbpp] \\
        [--engine dbnetpp|paddleocr] [-o Key=value ...]

Runs ``tools/train.py`` on the config as it is (its schedule, evaluation steps and Eval set are fixed in
the file before the run) with ``--procs`` data-parallel processes (``paddle.distributed.launch
--nproc_per_node``; on CPU one single-threaded process per core is the fastest layout) that share the
config's batch (``Train.loader.batch_size_per_card`` is the total batch, split evenly over them, as
``scripts/train.sh`` does on CPU), and reads the
evaluations the trainer logs (``metrics.jsonl``).  The config's ``Eval`` set is the **validation** set:
the CPU recipes evaluate ``val_icdar2015_label.txt`` (``prepare_icdar2015 --val 100``), and the trainer
keeps the best of those evaluations as ``best_accuracy``.  When the training has ended, that checkpoint
(and only it) is scored on the **test** set (``--test``; default ``test_icdar2015_label.txt`` beside the
Eval label file, images under the Eval ``data_dir``) by ``tools/eval.py`` with the same processes, resize
and protocol: a test score that did not choose the checkpoint.  ``--test-scales`` scores that checkpoint
on the test set again with the long side of each image resized to each size given (eval only; the
recipe's own resize gives the headline figure).

``--minutes`` limits the training run, validation included (the final test scoring is the measurement, not
part of the recipe, and its minutes are reported apart): when it is reached the trainer is stopped
(SIGTERM: it saves ``latest``), the run is reported as cut, and the best checkpoint so far is still scored.

``--engine paddleocr`` trains the same recipe with PaddleOCR release/2.5's own loop (the upstream route,
``ppocr_patches``; needs ``PADDLEOCR_DIR`` or ``third_party/PaddleOCR``) from the config without our own
keys (written as ``paddleocr_config.yml`` in the output folder).  PaddleOCR evaluates on rank 0 alone
while the other ranks wait in the next gradient all-reduce, which gloo abandons after about 30 s (the run
aborts with ``gloo::TimeoutException``); so its run saves checkpoints at the recipe's evaluation steps
instead (``save_epoch_step``; each step must end an epoch), and ``tools/eval.py`` scores them afterwards
with the same processes, Eval set and protocol as our loop's evaluations (their minutes count in the
run's); the best of them is then scored on the test set.  Both engines report ``train_samples_per_s``:
the total batch over the median ``avg_batch_cost`` of the logged training windows (evaluations excluded).

Prints one line per validation evaluation (minutes since start, step, epoch, precision, recall, hmean),
the test line of the chosen checkpoint, then one JSON object: ``precision`` / ``recall`` / ``hmean`` on
the test set (also under ``test``, with the checkpoint, its step, ``minutes`` and ``scales``),
``val_best`` (the validation evaluation that chose it), ``last`` (the last validation evaluation),
``minutes`` (training run), ``minutes_to_best``, ``curve`` (validation), ``val_labels``, ``test_labels``
and ``config``.  When the Eval set is the test set, the JSON says ``"test_chose_checkpoint": true`` and a
warning is printed.
Exit codes: 0 finished, 1 cut by ``--minutes`` or no evaluation ran, 2 error, 130 interrupted.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from dbnetpp.cli import add_config_args, int_list, positive_float, run_tool, sigterm_as_interrupt, tool_parser
from dbnetpp.config import load_config
from dbnetpp.errors import StepFailed, UsageError
from dbnetpp.launch import cpu_launch_prefix, run_until, split_batch, usable_cores
from dbnetpp.jsonline import last_json_line, read_events

ROOT = Path(__file__).resolve().parents[1]


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    ap = tool_parser(__doc__)
    add_config_args(ap, default="configs/det/cpu/ft_mv3_db++_icdar15.yml", example="Global.epoch_num=2")
    ap.add_argument("--procs", type=int, default=usable_cores(),
                    help="data-parallel processes (default: the number of CPU cores)")
    ap.add_argument("--minutes", type=positive_float, default=60.0, help="wall-time limit of the whole run (default 60)")
    ap.add_argument("--test", metavar="LABEL_FILE",
                    help="test label file scored once on the chosen checkpoint (default: test_icdar2015_label.txt "
                         "beside the config's Eval label file)")
    ap.add_argument("--test-scales", type=int_list(32, "long sides", "960,1280"), default=None, metavar="S1,S2,...",
                    help="also score the chosen checkpoint on the test set with its long side resized to each of "
                         "these (e.g. 960,1280,1600,2048; DetResizeForTest resize_long)")
    ap.add_argument("--work", help="output folder (Global.save_model_dir; default output/bench_finetune/<config>)")
    ap.add_argument("--engine", choices=("dbnetpp", "paddleocr"), default="dbnetpp",
                    help="training loop: ours (tools/train.py, default) or PaddleOCR release/2.5's (ppocr_patches)")
    args = ap.parse_args(argv)
    if args.procs < 1 or args.minutes <= 0:
        ap.error("--procs must be >= 1 and --minutes > 0")
    return args


def _launch(args, work: Path, script: List[str]) -> List[str]:
    return cpu_launch_prefix(args.procs, str(work / "launch_logs")) + script


def _train_command(args, work: Path) -> List[str]:
    """tools/train.py, or PaddleOCR's trainer on the config without our own keys."""
    if args.engine == "dbnetpp":
        return _launch(args, work, [str(ROOT / "tools/train.py"), "-c", args.config, "-o",
                                    f"Global.save_model_dir={work}", "Global.use_gpu=False", *args.opt])
    from ppocr_patches.config import write_paddleocr_config

    cfg = load_config(args.config, [*args.opt, f"Global.save_model_dir={work}", "Global.use_gpu=False"])
    g = cfg["Global"]
    plan = paddleocr_eval_plan(cfg, args.procs)
    # PaddleOCR evaluates on rank 0 alone while the other ranks wait in the next gradient all-reduce, which
    # gloo gives up after about 30 s (gloo::TimeoutException, the run aborts): its evaluations are made
    # afterwards on the checkpoints it saves at those steps (every save_epoch_step epochs, and latest)
    g["eval_batch_step"] = [plan["total"] + 1, 1]
    g["save_epoch_step"] = plan["save_epoch_step"]
    (work / "eval_plan.json").write_text(json.dumps(plan), encoding="utf-8")
    upstream = write_paddleocr_config(cfg, str(work / "paddleocr_config.yml"))
    return _launch(args, work, [str(ROOT / "ppocr_patches/run.py"), "train", "-c", upstream])


def paddleocr_eval_plan(cfg: Dict, procs: int) -> Dict:
    """The global steps at which the recipe evaluates (``eval_batch_step``, and the end with
    ``eval_at_end``), as epochs of PaddleOCR's loader: ``{"steps_per_epoch", "total", "epochs",
    "save_epoch_step"}``.  Each must end an epoch, since PaddleOCR saves checkpoints there only."""
    import math

    from dbnetpp.data import build_dataloader
    from dbnetpp.engine.build import eval_schedule
    from dbnetpp.global_schema import with_defaults

    g = with_defaults(cfg["Global"])
    spe = len(build_dataloader(cfg, "Train", rank=0, world_size=procs, seed=0))  # = paddle's DistributedBatchSampler
    total = int(g["epoch_num"]) * spe
    schedule = eval_schedule(g, cfg.get("Eval") is not None)  # the trainer's rule
    steps = [s for s in range(1, total + 1) if schedule and schedule.due(s)]
    if g["eval_at_end"] and total not in steps:
        steps.append(total)
    off = [s for s in steps if s % spe]
    if off:
        raise UsageError(f"evaluation steps {off} do not end an epoch of {spe} steps: PaddleOCR saves checkpoints "
                         f"only at epoch ends, so its run cannot be evaluated there")
    epochs = [s // spe for s in steps]
    return {"steps_per_epoch": spe, "total": total, "epochs": epochs,
            "save_epoch_step": math.gcd(*epochs) if epochs else 10 ** 6}


def _watch(cmd: List[str], log_path: Path, deadline: float) -> str:
    """Run ``cmd`` with its output in ``log_path`` until it ends or ``deadline`` (SIGTERM) -> how it ended."""
    with open(log_path, "w", encoding="utf-8") as log:
        ended = run_until(cmd, log, deadline, grace=120.0, cwd=os.getcwd())
    if ended.reason == "finished" and ended.returncode != 0:
        raise StepFailed.from_log(next((c for c in cmd if c.endswith(".py")), cmd[0]), ended.returncode, log_path)
    return {"time budget used": "cut by --minutes"}.get(ended.reason, ended.reason)


def run(args, work: Path) -> Dict:
    cmd = _train_command(args, work)
    start = time.time()
    deadline = start + args.minutes * 60
    log_path = work / ("train.log" if args.engine == "dbnetpp" else "stdout.log")
    reason = _watch(cmd, log_path, deadline)
    end = time.time()
    if args.engine == "dbnetpp":
        metrics = work / "metrics.jsonl"
        trains = read_events(metrics, "train")
        evals = read_events(metrics, "eval")
        costs = [t["batch_cost"] for t in trains if "batch_cost" in t]
        steps = max((t["global_step"] for t in trains), default=0)
    else:
        # PaddleOCR's rank 0 logs to <save_model_dir>/train.log
        costs, steps = paddleocr_log((work / "train.log").read_text(encoding="utf-8", errors="replace"))
        evals = evaluate_checkpoints(args, work, deadline) if reason == "finished" else []
        end = time.time()
    return {"evals": evals, "start": start, "end": end, "reason": reason, "steps": steps, "log": str(log_path),
            "batch_costs": costs}


def paddleocr_log(text: str):
    """PaddleOCR's training log -> (avg_batch_cost of each logged window, last global step)."""
    costs: List[float] = []
    step = 0
    for m in re.finditer(r"global_step: (\d+),.*avg_batch_cost: ([0-9.]+) s", text):
        step = int(m.group(1))
        costs.append(float(m.group(2)))
    return costs, step


def evaluate_checkpoints(args, work: Path, deadline: float) -> List[Dict]:
    """``tools/eval.py`` (same processes, the config's Eval set and protocol) on PaddleOCR's checkpoints at the
    planned evaluation steps (``iter_epoch_N``, and ``latest`` for the last step), in step order."""
    plan = json.loads((work / "eval_plan.json").read_text(encoding="utf-8"))
    last_epoch = plan["total"] // plan["steps_per_epoch"]
    evals = []
    for epoch in plan["epochs"]:
        name = "latest" if epoch == last_epoch else f"iter_epoch_{epoch}"
        res = score_checkpoint(args, work / name, work / f"eval_{name}", deadline)
        if res is None:
            break
        evals.append({**res, "global_step": epoch * plan["steps_per_epoch"], "epoch": epoch, "time": time.time(),
                      "source": f"tools/eval.py on {name}", "checkpoint": str(work / name)})
    return evals


def score_checkpoint(args, ckpt: Path, folder: Path, deadline: float, extra: Sequence[str] = ()) -> Optional[Dict]:
    """``tools/eval.py`` on ``ckpt`` with the benchmark's processes and the config (``extra`` overrides last)
    -> ``{precision, recall, hmean}``, or None when it was cut by ``deadline`` or interrupted."""
    folder.mkdir(exist_ok=True)
    cmd = _launch(args, folder, [str(ROOT / "tools/eval.py"), "-c", args.config, "-o", *args.opt,
                                 f"Global.pretrained_model={ckpt}", "Global.use_gpu=False", *extra])
    log = folder / "eval.log"
    if _watch(cmd, log, deadline) != "finished":
        return None
    res = last_json_line(log.read_text(encoding="utf-8", errors="replace"), "hmean")
    if res is None:
        raise StepFailed(f"tools/eval.py printed no result; see {log}")
    return {k: res[k] for k in ("precision", "recall", "hmean")}


def label_sets(args) -> Dict:
    """The validation labels (the config's Eval set) and the test labels (``--test``, or
    ``test_icdar2015_label.txt`` beside the first Eval label file), checked before anything runs."""
    cfg = load_config(args.config, args.opt)
    dataset = ((cfg.get("Eval") or {}).get("dataset") or {})
    val = [str(Path(f).resolve()) for f in dataset.get("label_file_list") or []]
    if not val:
        raise UsageError(f"{args.config}: no Eval.dataset.label_file_list (the validation set that chooses the "
                         f"checkpoint)")
    missing = [f for f in val if not Path(f).is_file()]
    if missing:
        raise UsageError(f"validation label file not found: {missing[0]} (Eval.dataset.label_file_list); for "
                         f"ICDAR2015 make it with: bash scripts/prepare_icdar2015.sh --src DIR --dst "
                         f"{Path(missing[0]).parent} --val 100")
    test = str(Path(args.test or Path(val[0]).parent / "test_icdar2015_label.txt").resolve())
    if not Path(test).is_file():
        raise UsageError(f"test label file not found: {test} (--test)")
    return {"val": val, "test": test, "test_chose_checkpoint": test in val,
            "resize_key": _resize_key(cfg) if args.test_scales else None}


def score_test(args, work: Path, evals: List[Dict], labels: Dict) -> Optional[Dict]:
    """The test set scored once on the checkpoint the validation chose (``best_accuracy``; with PaddleOCR's
    loop, the checkpoint of the best evaluation) -> the test figures with checkpoint, step and minutes, and
    with ``--test-scales`` the same checkpoint at each long side under ``scales``."""
    if not evals:
        return None
    best = max(evals, key=lambda e: (e["hmean"], e["global_step"]))  # a tie: the later, as the trainer keeps it
    ckpt = Path(best.get("checkpoint") or work / "best_accuracy")
    test = [f"Eval.dataset.label_file_list=[{labels['test']}]"]
    start = time.time()
    deadline = start + max(60.0, args.minutes) * 60
    res = score_checkpoint(args, ckpt, work / "test", deadline, test)
    if res is None:
        return None
    out = {**res, "checkpoint": str(ckpt), "step": best["global_step"], "minutes": round((time.time() - start) / 60, 2)}
    if args.test_scales:
        out["scales"] = []
        for side in args.test_scales:
            t0 = time.time()
            res = score_checkpoint(args, ckpt, work / f"test_long{side}", t0 + 120 * 60,
                                   [*test, f"{labels['resize_key']}={{resize_long: {side}}}"])
            if res is None:
                return None
            out["scales"].append({"long_side": side, **res, "minutes": round((time.time() - t0) / 60, 2)})
    return out


def _resize_key(cfg: Dict) -> str:
    """The ``-o`` key of the Eval set's DetResizeForTest (replaced by ``--test-scales``)."""
    transforms = ((cfg.get("Eval") or {}).get("dataset") or {}).get("transforms") or []
    for i, item in enumerate(transforms):
        if isinstance(item, dict) and "DetResizeForTest" in item:
            return f"Eval.dataset.transforms.{i}.DetResizeForTest"
    raise UsageError("--test-scales needs a DetResizeForTest in Eval.dataset.transforms")


def samples_per_s(args, costs: List[float]) -> Optional[float]:
    """Total batch / median seconds per step of the logged windows (a window holding an evaluation is an outlier
    the median ignores)."""
    if not costs:
        return None
    cfg = load_config(args.config, args.opt)
    total = int(cfg["Train"]["loader"]["batch_size_per_card"]) * args.procs
    ordered = sorted(costs)
    return round(total / ordered[len(ordered) // 2], 3)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    sigterm_as_interrupt()
    return run_tool("benchmarks/finetune.py", lambda: _main(args))


def _main(args) -> int:
    name = Path(args.config).stem
    work = Path(args.work or ROOT / "output" / "bench_finetune" / name).resolve()
    if work.exists() and any(work.iterdir()):
        raise UsageError(f"{work} is not empty (a previous run?); choose another --work or remove it")
    labels = label_sets(args)
    total = load_config(args.config, args.opt)["Train"]["loader"]["batch_size_per_card"]
    args.opt = [*args.opt, f"Train.loader.batch_size_per_card={split_batch(total, args.procs)}"]
    if labels["test_chose_checkpoint"]:
        print(f"warning: the Eval set is the test set ({labels['test']}): the test score chose the checkpoint; "
              f"evaluate a validation split instead (prepare_icdar2015 --val 100)", file=sys.stderr)
    work.mkdir(parents=True, exist_ok=True)
    print(f"fine-tuning {args.config} with {args.procs} process(es), limit {args.minutes:g} min; "
          f"log {work / 'train.log'}", flush=True)
    res = run(args, work)
    test = score_test(args, work, res["evals"], labels) if res["reason"] != "interrupted" else None
    return report(args, work, res, test, labels)


def report(args, work: Path, res: Dict, test: Optional[Dict], labels: Dict) -> int:
    """The validation curve, the test line and the JSON object -> the exit code."""
    curve = [{"minutes": round((e["time"] - res["start"]) / 60, 2), "step": e["global_step"],
              "epoch": e.get("epoch"), "precision": e["precision"], "recall": e["recall"], "hmean": e["hmean"],
              **({"source": e["source"]} if "source" in e else {})}
             for e in res["evals"]]
    for c in curve:
        print(f"val {c['minutes']:7.2f} min  step {c['step']:>6}  epoch {c['epoch']}  precision {c['precision']:.4f}  "
              f"recall {c['recall']:.4f}  hmean {c['hmean']:.4f}", flush=True)
    if not curve:
        print(f"error: no evaluation ran ({res['reason']}; see {res['log']})", file=sys.stderr)
        return 130 if res["reason"] == "interrupted" else 1
    best = max(curve, key=lambda c: (c["hmean"], c["step"]))
    print(f"{res['reason']}: best validation hmean {best['hmean']:.4f} at step {best['step']} "
          f"({best['minutes']:.1f} min)")
    if test is None:
        print("error: the test set was not scored (interrupted)", file=sys.stderr)
        return 130
    print(f"test  {Path(test['checkpoint']).name} (step {test['step']}, chosen on validation): precision "
          f"{test['precision']:.4f}  recall {test['recall']:.4f}  hmean {test['hmean']:.4f}", flush=True)
    for sc in test.get("scales", []):
        print(f"test  long side {sc['long_side']:>5}: precision {sc['precision']:.4f}  recall {sc['recall']:.4f}  "
              f"hmean {sc['hmean']:.4f}  ({sc['minutes']:.1f} min)", flush=True)
    print(json.dumps({"precision": test["precision"], "recall": test["recall"], "hmean": test["hmean"], "test": test,
                      "val_best": best, "minutes": round((res["end"] - res["start"]) / 60, 2),
                      "minutes_to_best": best["minutes"], "best_step": best["step"], "steps": res["steps"],
                      "last": curve[-1], "curve": curve, "val_labels": labels["val"], "test_labels": labels["test"],
                      "test_chose_checkpoint": labels["test_chose_checkpoint"],
                      "train_samples_per_s": samples_per_s(args, res["batch_costs"]), "engine": args.engine,
                      "reason": res["reason"], "procs": args.procs, "config": args.config, "overrides": args.opt,
                      "save_model_dir": str(work)}))
    if res["reason"] == "interrupted":
        return 130
    return 0 if res["reason"] == "finished" else 1


if __name__ == "__main__":
    sys.exit(main())
