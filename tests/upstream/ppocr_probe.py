"""Upstream side of the equivalence tests, run in its own interpreter (the overlay's shims and
upstream's top-level ``ppocr`` package must not leak into the pytest process).

    PADDLEOCR_DIR=... PYTHONPATH=<repo> python tests/upstream/ppocr_probe.py JOBS.json

``JOBS.json`` is a list of ``{"config": yml, "weights": pdparams, "out": npz}``.  For each job,
with upstream's own code: build the model from the config, load ``weights`` (every name must
match), take the first training batch of the config's Train pipeline, then write to ``out``:
the batch, the eval-mode and train-mode ``maps``, the DBLoss values, the state-dict names in
order and the BN running statistics after the train-mode forward.
"""
from __future__ import annotations

import json
import sys

import numpy as np


def run_job(job: dict) -> None:
    import paddle

    from ppocr.data import build_dataloader
    from ppocr.losses import build_loss
    from ppocr.modeling.architectures import build_model
    from ppocr.utils.logging import get_logger
    from tools.program import load_config

    config = load_config(job["config"])
    np.random.seed(0)
    loader = build_dataloader(config, "Train", paddle.CPUPlace(), get_logger())
    batch = next(iter(loader))
    keys = config["Train"]["dataset"]["transforms"][-1]["KeepKeys"]["keep_keys"]

    model = build_model(config["Architecture"])
    weights = paddle.load(job["weights"])
    own = model.state_dict()
    if list(own) != list(weights):
        missing = sorted(set(own) - set(weights))
        extra = sorted(set(weights) - set(own))
        raise SystemExit(f"state-dict names differ: missing {missing[:5]}, unexpected {extra[:5]}, "
                         f"or a different order")
    model.set_state_dict(weights)

    model.eval()
    with paddle.no_grad():
        eval_maps = model(batch[0])["maps"].numpy()
    model.train()
    preds = model(batch[0])
    loss = build_loss(config["Loss"])(preds, batch)
    result = {f"batch.{k}": t.numpy() for k, t in zip(keys, batch)}
    result.update({"eval_maps": eval_maps, "train_maps": preds["maps"].numpy(),
                   "names": np.array(list(own))})
    result.update({f"loss.{k}": np.asarray(v.numpy(), dtype=np.float64).reshape(-1)[0] for k, v in loss.items()})
    result.update({f"bn.{k}": v.numpy() for k, v in model.state_dict().items()
                   if k.endswith(("._mean", "._variance"))})
    np.savez(job["out"], **result)


def main() -> None:
    from ppocr_patches.run import prepare

    prepare()
    with open(sys.argv[1], encoding="utf-8") as f:
        jobs = json.load(f)
    for job in jobs:
        run_job(job)
    print(f"probe: {len(jobs)} job(s) done")


if __name__ == "__main__":
    main()
