"""Gradient-averaging check: data-parallel training on N CPU processes matches one process.

    python benchmarks/dist_equivalence.py [-c configs/det/cpu/demo_mv3_db.yml] [--procs 2]
        [--batch 4] [--steps 5] [--size 128] [--tol 1e-4]

Trains the config's model, loss and optimizer (the project's builders, ``paddle.DataParallel`` and
the project's sharded data loader, as ``tools/train.py`` does) for ``--steps`` steps with a total
batch of ``--batch`` images, three ways, from the same initial weights and data:

* ``dist``:  ``--procs`` processes (``paddle.distributed.launch``, gloo), ``batch / procs`` images each;
  the logged loss is the mean of the ranks' losses;
* ``accum``: one process; each batch is split into the same ``procs`` shards the ranks get and the
  gradients of ``loss_shard / procs`` are accumulated before one update.  Data-parallel training with
  gradient averaging computes exactly this, so ``dist`` must match it up to float rounding;
* ``full``:  one process, one forward of the whole batch.  Shown for information only: BatchNorm
  statistics and the batch-level normalisation of the DB loss (OHEM count, Dice sums) are per rank
  in data-parallel training, so this differs by design.

The data is a small synthetic dataset (tools/make_synth_dataset.py) without random augmentation and
without shuffling.  The per-step losses are printed side by side; the last line is one JSON object
with ``max_abs_diff`` / ``max_rel_diff`` (dist vs accum) and ``passed`` (``max_rel_diff <= --tol``).
Exit code 0 when passed, 1 when not, 2 when a step failed (its log's last lines are shown).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Dict, List, Optional

from dbnetpp.cli import positive_float, run_tool
from dbnetpp.errors import StepFailed
from dbnetpp.launch import cpu_launch_prefix

ROOT = Path(__file__).resolve().parents[1]
DETERMINISTIC = ("DecodeImage", "DetLabelEncode", "MakeBorderMap", "MakeShrinkMap", "NormalizeImage",
                 "ToCHWImage", "KeepKeys")


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-c", "--config", default=str(ROOT / "configs/det/cpu/demo_mv3_db.yml"))
    ap.add_argument("--procs", type=int, default=2, help="data-parallel CPU processes (default 2)")
    ap.add_argument("--batch", type=int, default=4, help="total batch per step (default 4)")
    ap.add_argument("--steps", type=int, default=5, help="training steps compared (default 5)")
    ap.add_argument("--size", type=int, default=128, help="synthetic image side in pixels (default 128)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--tol", type=positive_float, default=1e-4, help="pass if max relative loss difference <= tol")
    ap.add_argument("--role", choices=("main", "dist", "accum", "full"), default="main", help=argparse.SUPPRESS)
    ap.add_argument("--data", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.procs < 2 or args.batch % args.procs or args.steps < 1 or args.size < 64 or args.size % 32:
        ap.error("need --procs >= 2, --batch a multiple of --procs, --steps >= 1, --size a multiple of 32 >= 64")
    return args


# ----------------------------------------------------------------------------- one run (worker side)
def _config(args, data: str, batch_per_proc: int) -> Dict:
    from dbnetpp.config import load_config, transform_items

    cfg = load_config(args.config)
    items = transform_items(cfg["Train"]["dataset"]["transforms"], "Train.dataset.transforms", args.config)
    cfg["Train"]["dataset"].update(
        data_dir=data, label_file_list=[os.path.join(data, "train_icdar2015_label.txt")], ratio_list=[1.0],
        transforms=[{name: kw} for name, kw in items if name in DETERMINISTIC])
    cfg["Train"]["loader"] = {"shuffle": False, "drop_last": True, "batch_size_per_card": batch_per_proc,
                              "num_workers": 0}
    return cfg


def _shard(batch: Dict, index: int, procs: int) -> Dict:
    """The samples of ``batch`` a data-parallel rank ``index`` of ``procs`` gets: its block of the global
    batch, as ``paddle.io.DistributedBatchSampler`` (and so the project's sampler) shares it out."""
    import paddle

    out = {}
    for key, value in batch.items():
        if isinstance(value, paddle.Tensor) and value.ndim > 0:
            block = value.shape[0] // procs
            out[key] = value[index * block:(index + 1) * block]
        else:
            out[key] = value
    return out


def run_worker(args) -> None:
    import paddle

    from dbnetpp import dist as D
    from dbnetpp.data import build_dataloader
    from dbnetpp.engine import build_optimizer
    from dbnetpp.modeling import build_model
    from dbnetpp.registry import LOSSES

    env = D.setup(False, log=lambda *_: None)
    per_proc = args.batch // args.procs if args.role == "dist" else args.batch
    cfg = _config(args, args.data, per_proc)
    loader = build_dataloader(cfg, "Train", rank=env.rank, world_size=env.world_size, seed=args.seed)
    paddle.seed(args.seed)
    model = build_model(cfg["Architecture"])
    loss_fn = LOSSES.build(cfg["Loss"], where="Loss")
    optimizer, scheduler = build_optimizer(cfg["Optimizer"], model, len(loader), args.steps, log=lambda *_: None)
    if env.distributed:
        model = paddle.DataParallel(model)
    model.train()
    losses: List[float] = []
    for batch in loader:
        if len(losses) == args.steps:
            break
        if args.role == "accum":
            parts = []
            for r in range(args.procs):
                shard = _shard(batch, r, args.procs)
                loss = loss_fn(model(shard["image"]), shard)["loss"]
                (loss / args.procs).backward()
                parts.append(float(loss))
            value = sum(parts) / args.procs
        else:
            loss = loss_fn(model(batch["image"]), batch)["loss"]
            loss.backward()
            value = D.all_reduce_sum([float(loss)], env.distributed)[0] / env.world_size
        optimizer.step()
        optimizer.clear_grad()
        scheduler.step()
        losses.append(value)
    if env.is_main:
        with open(args.out, "w", encoding="utf-8") as f:
            json.dump(losses, f)


# ----------------------------------------------------------------------------- orchestration
def _run(cmd: List[str], what: str, log: Path) -> None:
    with open(log, "w", encoding="utf-8") as f:
        try:
            proc = subprocess.run(cmd, cwd=ROOT, stdout=f, stderr=subprocess.STDOUT, timeout=1800)
        except subprocess.TimeoutExpired:
            raise StepFailed(f"{what} did not finish within 30 minutes; see {log}") from None
    if proc.returncode != 0:
        raise StepFailed.from_log(what, proc.returncode, log)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    return run_tool("benchmarks/dist_equivalence.py", lambda: _main(args))


def _main(args) -> int:
    if args.role != "main":
        run_worker(args)
        return 0
    py = sys.executable
    me = str(Path(__file__).resolve())
    common = ["-c", args.config, "--procs", str(args.procs), "--batch", str(args.batch), "--steps", str(args.steps),
              "--size", str(args.size), "--seed", str(args.seed)]
    with tempfile.TemporaryDirectory(prefix="dist_equiv_") as tmp:
        t = Path(tmp)
        _run([py, str(ROOT / "tools/make_synth_dataset.py"), "--dst", str(t / "raw"), "--train",
              str(args.batch * args.steps), "--test", "1", "--size", str(args.size), "--seed", str(args.seed)],
             "tools/make_synth_dataset.py", t / "synth.log")
        _run([py, str(ROOT / "tools/prepare_icdar2015.py"), "--src", str(t / "raw"), "--dst", str(t / "data"),
              "--splits", "train", "--no-progress"], "tools/prepare_icdar2015.py", t / "prepare.log")
        data = str(t / "data")
        results = {}
        for role in ("dist", "accum", "full"):
            out = t / f"{role}.json"
            worker = [me, *common, "--role", role, "--data", data, "--out", str(out)]
            prefix = cpu_launch_prefix(args.procs, str(t / "launch_logs")) if role == "dist" else [py]
            cmd = prefix + worker
            _run(cmd, f"the {role} run", t / f"{role}.log")
            results[role] = json.loads(out.read_text())
    dist, accum, full = results["dist"], results["accum"], results["full"]
    if len(dist) != args.steps or len(accum) != args.steps:
        raise StepFailed(f"expected {args.steps} steps, got dist {len(dist)} / accum {len(accum)}")
    print(f"total batch {args.batch}: {args.procs} processes x {args.batch // args.procs} vs 1 process; "
          f"config {args.config}")
    print(f"{'step':>4}  {'dist':>12}  {'accum':>12}  {'|diff|':>10}  {'full (info)':>12}")
    diffs, rels = [], []
    for i, (a, b, c) in enumerate(zip(dist, accum, full), 1):
        d = abs(a - b)
        diffs.append(d)
        rels.append(d / max(abs(b), 1e-12))
        print(f"{i:>4}  {a:>12.7f}  {b:>12.7f}  {d:>10.2e}  {c:>12.7f}")
    full_rel = max(abs(a - c) / max(abs(c), 1e-12) for a, c in zip(dist, full))
    passed = max(rels) <= args.tol
    print(f"dist vs accum: max |diff| {max(diffs):.3g}, max relative {max(rels):.3g} -> "
          f"{'PASS' if passed else 'FAIL'} (tol {args.tol:g}); dist vs full batch (per-rank BN / loss "
          f"normalisation, not expected to match): max relative {full_rel:.3g}")
    print(json.dumps({"procs": args.procs, "total_batch": args.batch, "steps": args.steps,
                      "dist": [round(v, 7) for v in dist], "accum": [round(v, 7) for v in accum],
                      "full": [round(v, 7) for v in full], "max_abs_diff": max(diffs), "max_rel_diff": max(rels),
                      "max_rel_diff_vs_full": full_rel, "tol": args.tol, "passed": passed}))
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
