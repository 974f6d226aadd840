"""Run PaddleOCR release/2.5's own entry points with the compatibility shims installed.

Usage (arguments after the command are upstream's own: ``-c CONFIG``, ``-o key=value ...``)::

    python -m ppocr_patches.run train  -c CONFIG [-o Global.epoch_num=10 ...]
    python -m ppocr_patches.run eval   -c CONFIG -o Global.checkpoints=output/db/best_accuracy
    python -m ppocr_patches.run export -c CONFIG -o Global.pretrained_model=... Global.save_inference_dir=...
    python -m ppocr_patches.run check            # import the det path and build a DBNet++ neck

``train CONFIG`` (config without ``-c``) is accepted too.  Multi-process, exactly like upstream's
``tools/train.py`` (paddle's launcher starts files, not modules)::

    python -m paddle.distributed.launch --devices 0,1 ppocr_patches/run.py train -c CONFIG

The checkout is ``$PADDLEOCR_DIR`` (default ``third_party/PaddleOCR``), prepared once with
``bash scripts/setup_paddleocr.sh`` or ``python -m ppocr_patches.apply DIR``.
"""
from __future__ import annotations

import os
import sys

if __package__ in (None, ""):
    # Started as a file (``python ppocr_patches/run.py``, which is how paddle.distributed.launch
    # starts scripts): make the package importable and stop this folder shadowing top-level names.
    _here = os.path.dirname(os.path.abspath(__file__))
    if sys.path and os.path.abspath(sys.path[0] or ".") == _here:
        sys.path.pop(0)
    sys.path.insert(0, os.path.dirname(_here))
    __package__ = "ppocr_patches"  # noqa: A001

import runpy  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import List, Optional  # noqa: E402

from ppocr_patches import OVERLAY_VERSION, shims  # noqa: E402
from ppocr_patches.checkout import ENTRY_POINTS, commit_of, read_stamp, resolve_dir  # noqa: E402
from ppocr_patches.importhooks import HookFinder  # noqa: E402
from ppocr_patches.shims.base import PatchError  # noqa: E402

COMMANDS = (*ENTRY_POINTS, "check")


def _is_rank0() -> bool:
    return os.environ.get("PADDLE_TRAINER_ID", "0") in ("", "0")


def _say(msg: str) -> None:
    if _is_rank0():
        print(f"ppocr_patches: {msg}", file=sys.stderr, flush=True)


def prepare(root: Optional[str] = None, require_stamp: bool = True) -> Path:
    """Locate and verify the checkout, install the shims; returns the checkout path.

    After this, ``import ppocr`` / ``import tools.program`` resolve to the checkout."""
    checkout = resolve_dir(root)
    if require_stamp:
        stamp = read_stamp(checkout)
        if stamp is None:
            raise PatchError(f"{checkout}: the overlay has not been applied there; run "
                             f"bash scripts/setup_paddleocr.sh (or python -m ppocr_patches.apply {checkout})")
        if stamp.get("overlay_version") != OVERLAY_VERSION:
            raise PatchError(f"{checkout / '.ppocr_patches.json'}: applied by overlay version "
                             f"{stamp.get('overlay_version')}, this is {OVERLAY_VERSION}; re-run "
                             f"python -m ppocr_patches.apply {checkout}")
    shims.verify(checkout)
    finder = HookFinder()
    changed = shims.install_all(finder)
    finder.install()
    sys.path.insert(0, str(checkout))
    done = "; ".join(f"{k}: {', '.join(v)}" for k, v in changed.items() if v) or "nothing needed"
    _say(f"PaddleOCR {checkout} (commit {commit_of(checkout)}); shims: {done}")
    return checkout


def smoke_check() -> None:
    """Import everything the det route imports and build a DBNet++ model (no data needed)."""
    import paddle

    import tools.program  # noqa: F401
    from ppocr.data import build_dataloader  # noqa: F401
    from ppocr.losses import build_loss
    from ppocr.metrics import build_metric
    from ppocr.modeling.architectures import build_model
    from ppocr.postprocess import build_post_process
    from ppocr.utils.save_load import load_model  # noqa: F401

    arch = {"model_type": "det", "algorithm": "DB++", "Transform": None,
            "Backbone": {"name": "MobileNetV3", "scale": 0.5, "model_name": "large"},
            "Neck": {"name": "DBFPN", "out_channels": 256, "use_asf": True},
            "Head": {"name": "DBHead", "k": 50}}
    model = build_model(arch)
    if not any(k.startswith("neck.asf.") for k in model.state_dict()):
        raise PatchError("DBFPN(use_asf=True) built no neck.asf.* parameters: the DBNet++ shim is not active")
    model.eval()
    out = model(paddle.zeros([1, 3, 64, 64]))
    build_loss({"name": "DBLoss", "balance_loss": True, "main_loss_type": "DiceLoss", "alpha": 5, "beta": 10,
                "ohem_ratio": 3})
    build_post_process({"name": "DBPostProcess", "thresh": 0.3, "box_thresh": 0.6})
    build_metric({"name": "DetMetric", "main_indicator": "hmean"})
    _say(f"check ok: det imports fine, DBNet++ MobileNetV3 output {list(out['maps'].shape)}")


def normalize_args(args: List[str]) -> List[str]:
    """``CONFIG -o ...`` -> ``-c CONFIG -o ...`` (upstream requires -c)."""
    if args and not args[0].startswith("-") and args[0].endswith((".yml", ".yaml")):
        return ["-c", *args]
    return list(args)


def main(argv: Optional[List[str]] = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        print(__doc__, file=sys.stderr)
        if argv and argv[0] not in ("-h", "--help"):
            sys.exit(f"ppocr_patches.run: unknown command '{argv[0]}' (one of: {', '.join(COMMANDS)})")
        sys.exit(0 if argv else 2)
    command, rest = argv[0], normalize_args(argv[1:])
    try:
        checkout = prepare()
    except PatchError as exc:
        sys.exit(f"ppocr_patches.run: error: {exc}")
    if command == "check":
        smoke_check()
        return
    script = checkout / ENTRY_POINTS[command]
    sys.argv = [str(script), *rest]
    runpy.run_path(str(script), run_name="__main__")


if __name__ == "__main__":
    main()
