"""How DBNet and DBNet++ (ASF) start learning from scratch: losses, gradient norms and ASF statistics.

    python benchmarks/asf.py [--data-dir train_data/icdar2015/text_localization] [--images 10] \\
        [--steps 300] [--every 25] [--size 544x960] [--variants dbnet,dbnet++,dbnet++zero]

Trains each variant of ``--config`` (default the tiny DBNet recipe, MobileNetV3 x0.5 from scratch,
DBFPN 96) on the first ``--images`` lines of the training label file, whole images resized to ``--size``
(no augmentation, the overfit setting of ``benchmarks/learning.py``), batch 2, Adam at ``--lr``,
same seed for every variant:

* ``dbnet``: ``use_asf: False``;  ``dbnet++``: ASF with PaddleOCR's init;  ``dbnet++zero``: ASF with
  ``asf_gate_init: zeros``;  ``dbnet++norm``: ASF with ``asf_gate_norm: True``.

Every ``--every`` steps it records, on the training images in eval mode: the loss terms; the gradient norm
of each module group (backbone, FPN convs, ASF, probability branch, threshold branch); for ASF, the
pre-sigmoid gate (std, share with ``sigmoid' < 0.01``), the mean weight of each pyramid level, the
spatial attention's std and the share of its ReLU input <= 0 (a dead spatial branch); for the head, the
share of saturated probabilities (P < 0.01 or > 0.99).  One line per record, then one JSON object with
every record.  Exit codes follow dbnetpp.errors' table: 0 done, 2 bad arguments or config, 1 a bad or unreadable
file.
"""
from __future__ import annotations

import dbnetpp  # noqa: F401  isort: skip  (before paddle: it loads OpenCV first, see dbnetpp/__init__.py)
import argparse
import json
import os
import sys
import tempfile
from typing import Dict, List, Optional

import numpy as np
import paddle

from dbnetpp.cli import add_config_args, positive_float, run_tool, tool_parser
from dbnetpp.config import load_config
from dbnetpp.data import SimpleDataSet
from dbnetpp.errors import UsageError
from dbnetpp.losses import DBLoss
from dbnetpp.modeling import build_model

VARIANTS = {"dbnet": {"use_asf": False}, "dbnet++": {"use_asf": True},
            "dbnet++zero": {"use_asf": True, "asf_gate_init": "zeros"},
            "dbnet++norm": {"use_asf": True, "asf_gate_norm": True}}
GROUPS = (("backbone", "backbone."), ("neck.asf", "neck.asf."), ("neck.fpn", "neck."),
          ("head.binarize", "head.binarize."), ("head.thresh", "head.thresh."))


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    ap = tool_parser(__doc__)
    add_config_args(ap, default="configs/det/cpu/det_mv3_db_tiny.yml", example="Architecture.Neck.out_channels=256")
    ap.add_argument("--data-dir", default="train_data/icdar2015/text_localization",
                    help="prepared ICDAR2015 (tools/prepare_icdar2015.py output)")
    ap.add_argument("--label-file", default=None, help="default: DATA_DIR/train_icdar2015_label.txt")
    ap.add_argument("--images", type=int, default=10)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--every", type=int, default=25)
    ap.add_argument("--size", default="544x960", help="HxW, multiples of 32")
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--lr", type=positive_float, default=0.002)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--variants", default="dbnet,dbnet++,dbnet++zero")
    args = ap.parse_args(argv)
    try:
        args.hw = [int(v) for v in args.size.lower().split("x")]
    except ValueError:
        ap.error(f"--size must look like 544x960, got {args.size!r}")
    if len(args.hw) != 2 or any(v <= 0 or v % 32 for v in args.hw):
        ap.error(f"--size: height and width must be positive multiples of 32, got {args.size!r}")
    args.variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [v for v in args.variants if v not in VARIANTS]
    if unknown or not args.variants:
        ap.error(f"--variants: choose from {', '.join(VARIANTS)} (got {', '.join(unknown) or 'none'})")
    if min(args.images, args.steps, args.every, args.batch) < 1:
        ap.error("--images, --steps, --every and --batch must be >= 1")
    return args


def load_images(args) -> Dict[str, paddle.Tensor]:
    """The first ``--images`` training samples, resized, with their DB label maps, stacked."""
    label = args.label_file or os.path.join(args.data_dir, "train_icdar2015_label.txt")
    if not os.path.isfile(label):
        raise UsageError(f"{label}: label file not found (prepare ICDAR2015 with tools/prepare_icdar2015.py, "
                         "or pass --data-dir / --label-file)")
    with open(label, encoding="utf-8") as f:
        lines = [line for line in f if line.strip()][: args.images]
    if len(lines) < args.images:
        raise UsageError(f"{label}: {len(lines)} lines, fewer than --images {args.images}")
    norm = {"scale": "1./255.", "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225], "order": "hwc"}
    keys = ["image", "threshold_map", "threshold_mask", "shrink_map", "shrink_mask"]
    transforms = [{"DecodeImage": {"img_mode": "BGR", "channel_first": False}}, {"DetLabelEncode": None},
                  {"Resize": {"size": list(args.hw)}},
                  {"MakeBorderMap": {"shrink_ratio": 0.4, "thresh_min": 0.3, "thresh_max": 0.7}},
                  {"MakeShrinkMap": {"shrink_ratio": 0.4, "min_text_size": 8}},
                  {"NormalizeImage": norm}, {"ToCHWImage": None}, {"KeepKeys": {"keep_keys": keys}}]
    with tempfile.TemporaryDirectory() as tmp:
        subset = os.path.join(tmp, "subset.txt")
        with open(subset, "w", encoding="utf-8") as f:
            f.writelines(lines)
        ds = SimpleDataSet(args.data_dir, [subset], transforms=transforms, mode="Train", seed=args.seed)
        samples = [ds[i] for i in range(len(ds))]
    return {k: paddle.to_tensor(np.stack([np.asarray(s[k], dtype=np.float32) for s in samples])) for k in keys}


def group_grad_norms(model) -> Dict[str, float]:
    sums = {name: 0.0 for name, _ in GROUPS}
    for pname, p in model.named_parameters():
        if p.grad is None:
            continue
        for name, prefix in GROUPS:  # first match wins: neck.asf before neck
            if pname.startswith(prefix):
                sums[name] += float((p.grad.astype("float32") ** 2).sum())
                break
    return {k: round(v ** 0.5, 6) for k, v in sums.items()}


def probe(model, images: paddle.Tensor) -> Dict[str, float]:
    """ASF and head statistics on ``images`` in eval mode."""
    out: Dict[str, float] = {}
    asf = getattr(model.neck, "asf", None)
    cap = {}
    hook = None
    if asf is not None:
        def _hook(layer, inputs, output):
            z = layer.conv(inputs[0])
            mean_z = paddle.mean(z, axis=1, keepdim=True)
            relu_in = layer.spatial_scale[0](mean_z)
            spatial = layer.spatial_scale(mean_z)
            cap.update(pre=layer.gate_logits(z, spatial).numpy(), spatial=spatial.numpy(),
                       relu_in=relu_in.numpy())
        hook = asf.register_forward_post_hook(_hook)
    model.eval()
    with paddle.no_grad():
        prob = model(images)["maps"].numpy()
    model.train()
    if hook is not None:
        hook.remove()
        pre = cap["pre"]
        weights = 0.5 * (1.0 + np.tanh(0.5 * pre))  # sigmoid without overflow
        out.update(gate_std=float(pre.std()), gate_saturated=float((np.abs(pre) > 4.6).mean()),
                   spatial_std=float(cap["spatial"].std()), spatial_dead=float((cap["relu_in"] <= 0).mean()))
        for i, w in enumerate(weights.mean(axis=(0, 2, 3))):
            out[f"level{i}_weight"] = float(w)
    out["prob_saturated"] = float(((prob < 0.01) | (prob > 0.99)).mean())
    out["prob_mean"] = float(prob.mean())
    return {k: round(v, 5) for k, v in out.items()}


def run_variant(args, cfg, name: str, data: Dict[str, paddle.Tensor]) -> List[Dict]:
    arch = json.loads(json.dumps(cfg["Architecture"]))
    arch["Neck"].update(VARIANTS[name])
    for key in ("asf_gate_init", "asf_gate_norm"):
        if key not in VARIANTS[name]:
            arch["Neck"].pop(key, None)
    paddle.seed(args.seed)
    np.random.seed(args.seed)
    model = build_model(arch)
    model.train()
    loss_fn = DBLoss(**{k: v for k, v in cfg["Loss"].items() if k != "name"})
    opt = paddle.optimizer.Adam(learning_rate=args.lr, parameters=model.parameters())
    n = data["image"].shape[0]
    order = np.random.default_rng(args.seed).permutation(np.arange(n).repeat(args.steps * args.batch // n + 1))
    records = []
    for step in range(1, args.steps + 1):
        idx = paddle.to_tensor(order[(step - 1) * args.batch: step * args.batch])
        batch = {k: paddle.index_select(v, idx) for k, v in data.items()}
        losses = loss_fn(model(batch["image"]), batch)
        losses["loss"].backward()
        if step == 1 or step % args.every == 0 or step == args.steps:
            rec = {"variant": name, "step": step,
                   **{k: round(float(v), 5) for k, v in losses.items()},
                   **{f"grad_{k}": v for k, v in group_grad_norms(model).items()},
                   **probe(model, data["image"][: min(n, 4)])}
            records.append(rec)
            print(f"{name:12s} step {step:4d}  loss {rec['loss']:.3f}  shrink {rec.get('loss_shrink_maps', 0):.3f}  "
                  f"grad bb {rec['grad_backbone']:.3g} fpn {rec['grad_neck.fpn']:.3g} asf {rec['grad_neck.asf']:.3g} "
                  f"head {rec['grad_head.binarize']:.3g}  gate sat {rec.get('gate_saturated', float('nan')):.3f}  "
                  f"spatial dead {rec.get('spatial_dead', float('nan')):.3f}  P sat {rec['prob_saturated']:.3f}",
                  flush=True)
        opt.step()
        opt.clear_grad()
    return records


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    return run_tool("benchmarks/asf.py", lambda: _main(args))


def _main(args) -> int:
    cfg = load_config(args.config, args.opt, validate=False)
    data = load_images(args)
    records = []
    for name in args.variants:
        records += run_variant(args, cfg, name, data)
    final = {r["variant"]: r for r in records}
    print(json.dumps({"config": args.config, "images": args.images, "steps": args.steps, "size": args.hw,
                      "lr": args.lr, "final": final, "records": records}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
