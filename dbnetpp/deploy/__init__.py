"""Deployment: export to Paddle inference models / ONNX, inference engines and the ``Detector`` API.

* :func:`export_model` (``tools/export_model.py``): Paddle inference model + ``inference.yml``;
* :func:`export_onnx` (``tools/export_onnx.py``): ``inference.onnx`` through paddle2onnx;
* :class:`Detector`: pre-process -> Paddle Inference or ONNX Runtime -> DB post-process.
"""
from .engines import OrtEngine, PaddleEngine
from .export import ExportResult, export_model
from .onnx_export import export_onnx
from .predictor import Detector
from .preprocess import Preprocessor, pad_batch
from .settings import InferenceSettings, parse_resize, settings_from_config

__all__ = ["Detector", "ExportResult", "InferenceSettings", "OrtEngine", "PaddleEngine", "Preprocessor",
           "export_model", "export_onnx", "pad_batch", "parse_resize", "settings_from_config"]
