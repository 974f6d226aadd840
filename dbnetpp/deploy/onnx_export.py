"""Convert an exported Paddle inference model to ONNX with paddle2onnx, and check it.

paddle2onnx 1.x reads Paddle 2.x programs (``inference.pdmodel``); Paddle 3.x writes PIR programs
(``inference.json``), which need paddle2onnx >= 2.0.  Tested pairs: Paddle 2.6.2 + paddle2onnx 1.3.1 and
Paddle 3.3.1 + paddle2onnx 2.1.0 (the FPN upsamples by a pixel repeat, so the networks hold no
``nearest_interp``, whose float64 ``scale`` paddle2onnx 2.1.0 rejects).  The check runs one random input through
Paddle Inference and ONNX Runtime and reports the largest difference of the probability maps.
"""
from __future__ import annotations

import inspect
import os
from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np

from ..errors import ConfigError, DBNetError
from .settings import InferenceSettings

__all__ = ["OnnxExportResult", "export_onnx", "compare_backends"]

DEFAULT_OPSET = 11


@dataclass
class OnnxExportResult:
    onnx_file: str
    opset: int  # the opset the file declares
    paddle2onnx_version: str
    max_abs_diff: Optional[float]  # Paddle Inference vs ONNX Runtime on the check input


def _paddle2onnx():
    try:
        import paddle2onnx
    except ImportError as exc:
        raise ConfigError("paddle2onnx is not installed: pip install paddle2onnx==1.3.1 (Paddle 2.6) "
                          "or paddle2onnx>=2.0 (Paddle 3.x); see requirements-dev.txt") from exc
    return paddle2onnx


def export_onnx(model_dir: str, onnx_file: Optional[str] = None, opset: int = DEFAULT_OPSET,
                check_shape: Optional[Tuple[int, int, int, int]] = (1, 3, 320, 480)) -> OnnxExportResult:
    """Write ``model_dir/inference.onnx`` (or ``onnx_file``) from the model in ``model_dir``.

    ``opset`` is the lowest opset requested; paddle2onnx raises it when an op needs a newer one
    (MobileNetV3's ``HardSwish``: 14).  With ``check_shape`` set, both runtimes are run on one random input of that shape.
    """
    settings = InferenceSettings.load(model_dir)
    dep = settings.deploy
    if not dep.get("model_file"):
        raise ConfigError(f"no inference.pdmodel / inference.json in {model_dir}")
    model_file = os.path.join(model_dir, dep["model_file"])
    params_file = os.path.join(model_dir, dep.get("params_file", "inference.pdiparams"))
    p2o = _paddle2onnx()
    version = str(getattr(p2o, "__version__", "unknown"))
    if model_file.endswith(".json") and version.split(".")[0] in ("0", "1"):
        raise ConfigError(f"{model_file} is a Paddle 3.x (PIR) program: paddle2onnx {version} reads only "
                          f".pdmodel files; install paddle2onnx>=2.0")
    onnx_file = onnx_file or os.path.join(model_dir, "inference.onnx")
    accepted = inspect.signature(p2o.export).parameters
    kwargs = {"save_file": onnx_file, "opset_version": int(opset), "verbose": False,
              "enable_onnx_checker": True, "auto_upgrade_opset": True}
    try:
        p2o.export(model_file, params_file, **{k: v for k, v in kwargs.items() if k in accepted})
    except SystemExit as exc:  # paddle2onnx 2.x logs the reason and calls exit() on a failed conversion
        raise ConfigError(f"paddle2onnx {version} could not convert {model_file} (exit status {exc.code}; its "
                          f"log above names the op)") from None
    if not os.path.isfile(onnx_file):
        raise DBNetError(f"paddle2onnx {version} did not write {onnx_file}")
    diff = compare_backends(model_dir, onnx_file, check_shape) if check_shape else None
    return OnnxExportResult(onnx_file, _written_opset(onnx_file, int(opset)), version, diff)


def _written_opset(onnx_file: str, requested: int) -> int:
    try:
        import onnx
    except ImportError:
        return requested
    model = onnx.load(onnx_file, load_external_data=False)
    return max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=requested)


def compare_backends(model_dir: str, onnx_file: str, shape=(1, 3, 640, 640), seed: int = 0) -> float:
    """Max |P_paddle - P_onnxruntime| on a random normalised input of ``shape``."""
    from .engines import OrtEngine, PaddleEngine

    dep = InferenceSettings.load(model_dir).deploy
    x = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    paddle_engine = PaddleEngine(os.path.join(model_dir, dep["model_file"]),
                                 os.path.join(model_dir, dep.get("params_file", "inference.pdiparams")),
                                 threads=2, mkldnn=True)
    ort_engine = OrtEngine(onnx_file, threads=2)
    return float(np.abs(paddle_engine(x) - ort_engine(x)).max())
