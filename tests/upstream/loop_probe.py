"""One training run of the whole-loop parity test: our ``Trainer`` or PaddleOCR release/2.5's
``tools/train.py`` (through ``ppocr_patches``), fed the same fixed batches from the same start weights.

    PYTHONPATH=<repo> python tests/upstream/loop_probe.py --engine dbnetpp|paddleocr \
        --config CFG.yml --work DIR [--steps-per-epoch 4]
    # two processes (gloo): python -m paddle.distributed.launch --nproc_per_node 2 tests/upstream/loop_probe.py ...

``CFG.yml`` is the full config of the run (epochs, batch size, ``Global.pretrained_model`` = the start
weights, ``save_model_dir`` = ``DIR/out``); the paddleocr engine reads the same file without our own keys
(:func:`ppocr_patches.config.paddleocr_config`).  Both loops run unchanged; only where their batches come
from is replaced (our ``build_parts`` / upstream's ``build_dataloader`` for Train): batch ``k`` of the run on
rank ``r`` is :func:`fixed_batch` ``(k, r)``, made from a seeded NumPy generator, so it is the same on
every machine and in both engines, with no data pipeline in between.  There is no evaluation.

Rank 0 writes ``DIR/steps.json``: per global step the learning rate the step used and the four DB loss
terms of rank 0's batch (ours: read back from the trainer's own ``metrics.jsonl`` with
``print_batch_step=1``, ``log_smooth_window=1``; upstream: recorded around its loss and optimizer, which
run unchanged).  Both loops save ``DIR/out/latest.pdparams`` at the end of the last epoch.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Dict, List

import numpy as np

BATCH_KEYS = ("image", "threshold_map", "threshold_mask", "shrink_map", "shrink_mask")
BATCH_SEED = 20261207


def fixed_batch(step: int, rank: int, batch_size: int, size: int) -> Dict[str, np.ndarray]:
    """Batch ``step`` (0-based global step) of ``rank``: a normalised-looking image and DB label maps with
    a few text-like rectangles, a don't-care region and a border band, from ``default_rng((seed, step, rank))``."""
    rng = np.random.default_rng([BATCH_SEED, step, rank])
    image = rng.standard_normal((batch_size, 3, size, size)).astype(np.float32)
    maps = {k: np.zeros((batch_size, size, size), np.float32) for k in BATCH_KEYS[1:]}
    maps["shrink_mask"][:] = 1.0
    maps["threshold_map"][:] = 0.3
    for i in range(batch_size):
        for _ in range(int(rng.integers(1, 4))):
            h, w = (int(v) for v in rng.integers(6, size // 2, 2))
            y, x = int(rng.integers(0, size - h)), int(rng.integers(0, size - w))
            maps["shrink_map"][i, y + 2:y + h - 2, x + 2:x + w - 2] = 1.0
            maps["threshold_mask"][i, max(0, y - 3):y + h + 3, max(0, x - 3):x + w + 3] = 1.0
            band = rng.uniform(0.3, 0.7, (h, w)).astype(np.float32)
            maps["threshold_map"][i, y:y + h, x:x + w] = band
            image[i, :, y:y + h, x:x + w] += 1.5
        y, x = (int(v) for v in rng.integers(0, size - 8, 2))
        maps["shrink_mask"][i, y:y + 8, x:x + 8] = 0.0  # an ignored ('###') region
    return {"image": image, **maps}


class FixedBatches:
    """A stand-in for a training data loader: each pass (epoch) yields the next ``steps_per_epoch`` fixed
    batches of this rank, as dicts of tensors (ours) or lists in ``KeepKeys`` order (PaddleOCR's)."""

    def __init__(self, steps_per_epoch: int, rank: int, batch_size: int, size: int, as_list: bool):
        self.steps_per_epoch, self.rank, self.batch_size, self.size = steps_per_epoch, rank, batch_size, size
        self.as_list = as_list
        self.passes = 0
        self.dataset = self  # PaddleOCR's loop reads train_dataloader.dataset.need_reset
        self.need_reset = False

    def __len__(self) -> int:
        return self.steps_per_epoch

    def __iter__(self):
        import paddle

        first, self.passes = self.passes * self.steps_per_epoch, self.passes + 1
        for step in range(first, first + self.steps_per_epoch):
            batch = {k: paddle.to_tensor(v) for k, v in fixed_batch(step, self.rank, self.batch_size,
                                                                    self.size).items()}
            yield [batch[k] for k in BATCH_KEYS] if self.as_list else batch


class _NoBatches(list):
    """PaddleOCR's Eval loader here: empty, so its loop disables evaluation."""


def _write(path: str, data) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f)


def _rank() -> int:
    return int(os.environ.get("PADDLE_TRAINER_ID", "0") or 0)


def run_dbnetpp(args) -> None:
    import cv2  # noqa: F401  (before paddle, as the tools do)

    from dbnetpp.config import load_config
    from dbnetpp.engine import build as build_module
    from dbnetpp.engine import trainer as trainer_module
    from dbnetpp.jsonline import read_events

    def fixed_parts(cfg, env, seed, policy):
        import paddle

        from dbnetpp.modeling import build_model
        from dbnetpp.registry import LOSSES

        with paddle.utils.unique_name.guard():  # as build_parts: names independent of what was built before
            model = build_model(cfg["Architecture"])
        bs = int(cfg["Train"]["loader"]["batch_size_per_card"])
        loader = FixedBatches(args.steps_per_epoch, env.rank, bs, args.size, as_list=False)
        return build_module.Parts(train_loader=loader, eval_loader=None, model=model,
                                  loss_fn=LOSSES.build(cfg["Loss"], where="Loss"), post_process=None, metric=None)

    trainer_module.build_parts = fixed_parts
    cfg = load_config(args.config)
    trainer_module.Trainer(cfg).train()
    if _rank() == 0:
        events = read_events(os.path.join(cfg["Global"]["save_model_dir"], "metrics.jsonl"), "train")
        steps = [{"step": e["global_step"], "lr": e["lr"], **{k: e[k] for k in e if k.startswith("loss")}}
                 for e in events]
        _write(os.path.join(args.work, "steps.json"), steps)


def run_paddleocr(args) -> None:
    import runpy

    from dbnetpp.config import load_config
    from ppocr_patches.config import write_paddleocr_config
    from ppocr_patches.run import prepare

    cfg = load_config(args.config)
    upstream_cfg = os.path.join(args.work, "paddleocr_config.yml")
    if _rank() == 0:
        write_paddleocr_config(cfg, upstream_cfg)
    else:
        import time

        while not os.path.exists(upstream_cfg):
            time.sleep(0.1)
    checkout = prepare()
    import ppocr.data
    import ppocr.losses
    import ppocr.optimizer

    records: List[dict] = []
    holder = {}

    def build_dataloader(config, mode, device, logger, seed=None):
        if mode != "Train":
            return _NoBatches()
        import paddle.distributed as dist

        bs = int(config["Train"]["loader"]["batch_size_per_card"])
        return FixedBatches(args.steps_per_epoch, dist.get_rank(), bs, args.size, as_list=True)

    real_build_loss, real_build_optimizer = ppocr.losses.build_loss, ppocr.optimizer.build_optimizer

    def build_loss(config):
        loss = real_build_loss(config)

        def recorded(preds, batch):
            out = loss(preds, batch)
            records.append({"step": len(records) + 1, "lr": float(holder["optimizer"].get_lr()),
                            **{k: float(v.numpy().mean()) for k, v in out.items()}})
            return out
        return recorded

    def build_optimizer(config, epochs, step_each_epoch, model):
        optimizer, lr = real_build_optimizer(config, epochs, step_each_epoch, model)
        holder["optimizer"] = optimizer
        return optimizer, lr

    if args.parts in ("model", "both"):
        _use_our_model()
    if args.parts in ("loss", "both"):
        real_build_loss = _our_loss
    ppocr.data.build_dataloader = build_dataloader
    ppocr.losses.build_loss = build_loss
    ppocr.optimizer.build_optimizer = build_optimizer
    script = str(checkout / "tools" / "train.py")
    sys.argv = [script, "-c", upstream_cfg]
    runpy.run_path(script, run_name="__main__")
    if _rank() == 0:
        _write(os.path.join(args.work, "steps.json"), records)


def _use_our_model() -> None:
    """PaddleOCR's loop with our model (``ppocr.modeling.architectures.build_model`` -> ours)."""
    import paddle
    import ppocr.modeling.architectures as arch

    from dbnetpp.modeling import build_model

    def build(config):
        with paddle.utils.unique_name.guard():
            return build_model({k: v for k, v in config.items()})
    arch.build_model = build


def _our_loss(config):
    """Our DBLoss on PaddleOCR's list batches."""
    from dbnetpp.registry import LOSSES

    loss = LOSSES.build(dict(config), where="Loss")

    def call(preds, batch):
        return loss(preds, dict(zip(BATCH_KEYS, batch)))
    return call


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--engine", choices=("dbnetpp", "paddleocr"), required=True)
    ap.add_argument("--config", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--steps-per-epoch", type=int, default=4)
    ap.add_argument("--size", type=int, default=64, help="image side of the fixed batches")
    ap.add_argument("--parts", choices=("upstream", "model", "loss", "both"), default="upstream",
                    help="paddleocr engine: which of model and loss are ours instead of PaddleOCR's")
    args = ap.parse_args()
    (run_dbnetpp if args.engine == "dbnetpp" else run_paddleocr)(args)


if __name__ == "__main__":
    main()
