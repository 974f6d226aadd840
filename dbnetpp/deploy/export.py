"""Export a trained model as a Paddle inference model plus its ``inference.yml`` settings.

The network is traced in eval mode (DBHead returns only the probability map P) with input
spec ``x: [-1, 3, -1, -1]`` float32, so batch, height and width stay dynamic; ``paddle.jit.save``
writes ``inference.pdmodel`` + ``inference.pdiparams`` on Paddle 2.x and ``inference.json`` (PIR
program) + ``inference.pdiparams`` on Paddle 3.x.  Optionally the BatchNorm layers are folded
into their convolutions first (:mod:`.fuse`); the folded network is checked against the original
on a random input before anything is written.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional

import numpy as np
import paddle

from .. import __version__
from ..errors import ConfigError, DBNetError
from ..modeling import static_graph
from ..output_lock import LOCK_NAME
from .fuse import fold_batch_norms
from .settings import find_model_files, settings_from_config

__all__ = ["ExportResult", "export_model", "FUSE_TOLERANCE"]

# max |P_folded - P| allowed on the check input: the deployment tolerance of this project (ONNX Runtime vs
# Paddle Inference is held to the same).  Folding is exact in real arithmetic; float32 rounding moves P by
# < 1e-5 for the plain recipes and by ~2e-5 for DBNet++ with Neck.asf_gate_norm (the gate's BatchNorm
# divides by a small standard deviation, so its folded 1x1 conv has large weights).
FUSE_TOLERANCE = 1e-4
_CHECK_SHAPE = (1, 3, 320, 448)


@dataclass
class ExportResult:
    save_dir: str
    model_file: str
    params_file: str
    model_format: str  # "pdmodel" (Paddle 2.x program) or "pir-json" (Paddle 3.x)
    settings_file: str
    folded_bn: int
    fold_max_diff: Optional[float]


def _probability(model, x: np.ndarray) -> np.ndarray:
    with paddle.no_grad():
        return model(paddle.to_tensor(x))["maps"].numpy()


# Every file an export folder can hold: the Paddle program (.pdmodel before Paddle 3, .json since) and its
# weights, the settings, the ONNX model (tools/export_onnx.py or --onnx).
EXPORT_FILES = ("inference.pdmodel", "inference.json", "inference.pdiparams", "inference.pdiparams.info",
                "inference.yml", "inference.onnx")


def clear_earlier_export(save_dir: str) -> List[str]:
    """An export folder holds one export: the files of an earlier export are removed before a new one is
    written (a kept ``inference.onnx`` would be run as if it were the new model); a folder holding anything
    else is refused (``ConfigError``), so no file of the user's is ever removed.  Returns the removed names."""
    others = sorted(f for f in os.listdir(save_dir) if f not in EXPORT_FILES and f != LOCK_NAME)
    if others:
        shown = ", ".join(others[:5]) + (" ..." if len(others) > 5 else "")
        raise ConfigError(f"{os.path.abspath(save_dir)} holds files that are not part of an export ({shown}); an "
                          f"export folder holds one export only: choose a new or empty folder",
                          key="Global.save_inference_dir")
    removed = [f for f in EXPORT_FILES if os.path.isfile(os.path.join(save_dir, f))]
    for f in removed:
        os.remove(os.path.join(save_dir, f))
    return removed


def export_model(model: paddle.nn.Layer, cfg: Mapping[str, Any], save_dir: str, *,
                 fuse_bn: bool = True, resize: Optional[Dict[str, Any]] = None,
                 source: Optional[Dict[str, str]] = None) -> ExportResult:
    """Export ``model`` (weights already loaded) to ``save_dir``.

    Args:
        cfg: the training config (``Eval`` pre-processing and ``PostProcess`` are recorded).
        fuse_bn: fold BatchNorm into convolutions; raises if the probability map moves by more
            than :data:`FUSE_TOLERANCE`.
        resize: ``DetResizeForTest`` arguments overriding the config's.
        source: free-form provenance recorded under ``Deploy.source`` (config, weights paths).
    """
    settings = settings_from_config(cfg, resize=resize)  # validates before any work
    os.makedirs(save_dir, exist_ok=True)
    clear_earlier_export(save_dir)
    model.eval()
    folded, diff = 0, None
    if fuse_bn:
        rng = np.random.default_rng(0)
        x = rng.standard_normal(_CHECK_SHAPE).astype(np.float32)
        before = _probability(model, x)
        folded = fold_batch_norms(model, paddle.to_tensor(x))
        diff = float(np.abs(_probability(model, x) - before).max())
        if diff > FUSE_TOLERANCE:
            raise DBNetError(f"folding BatchNorm changed the probability map by {diff:.3g} "
                               f"(> {FUSE_TOLERANCE}); export with fusion off (--no-fuse-bn)")
    spec = [paddle.static.InputSpec(shape=[None, 3, None, None], dtype="float32", name="x")]
    prefix = os.path.join(save_dir, "inference")
    paddle.jit.save(static_graph(model, spec), prefix)
    files = find_model_files(save_dir)
    if not files:
        raise DBNetError(f"paddle.jit.save wrote no inference.pdmodel / inference.json in {save_dir}")
    settings.deploy = {
        "format_version": 1,
        **files,
        "input_name": "x",
        "input_shape": [-1, 3, -1, -1],
        "output": "probability map P, float32 [N, 1, H, W] (eval mode)",
        "size_multiple": 32,
        "pad_value": 0.0,
        "folded_batch_norm": folded,
        "exported_with": {"paddle": paddle.__version__, "dbnetpp": __version__},
    }
    if source:
        settings.deploy["source"] = dict(source)
    settings_file = settings.save(save_dir)
    return ExportResult(save_dir, os.path.join(save_dir, files["model_file"]),
                        os.path.join(save_dir, files["params_file"]), files["model_format"],
                        settings_file, folded, diff)
