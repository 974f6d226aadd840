"""Inference engines: a callable ``engine(x [N, 3, H, W] float32) -> P [N, 1, H, W] float32``.

* :class:`PaddleEngine`: Paddle Inference (``paddle.inference.Config`` + predictor) on CPU
  (thread count, oneDNN/MKLDNN on or off) or GPU (TensorRT when the build has it).
* :class:`OrtEngine`: ONNX Runtime (graph optimisation level, intra/inter-op threads).
"""
from __future__ import annotations

import os
import warnings
from typing import Dict, Optional, Sequence

import numpy as np

from ..errors import ConfigError

__all__ = ["PaddleEngine", "OrtEngine", "ORT_LEVELS"]

ORT_LEVELS = ("disable", "basic", "extended", "all")
# TensorRT needs the range of every input shape; these cover DetResizeForTest's usual outputs.
_TRT_SHAPES = {"min": [1, 3, 32, 32], "opt": [1, 3, 736, 1280], "max": [1, 3, 2048, 2048]}


def _call_first(obj, names: Sequence[str], *args):
    """Call the first method of ``names`` that ``obj`` has (API names differ across Paddle versions)."""
    for name in names:
        fn = getattr(obj, name, None)
        if fn is not None:
            return fn(*args)
    raise AttributeError(f"{type(obj).__name__} has none of {', '.join(names)}")


def _has_op(program_file: str, op: str) -> bool:
    """Whether a Paddle 3 PIR program (``inference.json``) holds an op named ``op`` (e.g. ``pd_op.nearest_interp``)."""
    with open(program_file, encoding="utf-8", errors="replace") as f:
        return op in f.read()


class PaddleEngine:
    """Paddle Inference predictor of ``model_dir/<model_file>`` + ``<params_file>``.

    Args:
        model_file, params_file: paths of the exported program and weights.
        device: ``cpu`` or ``gpu``.
        threads: CPU math-library threads.
        mkldnn: use oneDNN (MKLDNN) kernels on CPU.
        tensorrt: on GPU, use TensorRT subgraphs when the Paddle build supports them (otherwise a
            warning and plain CUDA kernels).
        shape_file: TensorRT shape-range file (collected on first use when missing).
    """

    def __init__(self, model_file: str, params_file: str, device: str = "cpu", threads: int = 2,
                 mkldnn: bool = True, tensorrt: bool = False, shape_file: Optional[str] = None):
        from paddle import inference

        for path in (model_file, params_file):
            if not os.path.isfile(path):
                raise ConfigError(f"model file not found: {path}")
        if device not in ("cpu", "gpu"):
            raise ConfigError(f"device must be 'cpu' or 'gpu', got {device!r}")
        self.model_file, self.params_file = model_file, params_file
        self.device, self.threads, self.mkldnn = device, int(threads), bool(mkldnn)
        self.tensorrt = False
        config = self._base_config(inference)
        if device == "gpu":
            import paddle

            if not paddle.device.is_compiled_with_cuda():
                raise ConfigError("device 'gpu' requested but this Paddle build has no CUDA support "
                                  "(install paddlepaddle-gpu, or use --device cpu)")
            config.enable_use_gpu(256, 0)
            if tensorrt:
                self.tensorrt = self._setup_tensorrt(inference, config, shape_file)
        else:
            config.disable_gpu()
            config.set_cpu_math_library_num_threads(self.threads)
            if self.mkldnn:
                # a bounded cache of per-shape oneDNN primitives (inputs of varying size)
                config.set_mkldnn_cache_capacity(10)
                _call_first(config, ("enable_onednn", "enable_mkldnn"))
                if self.model_file.endswith(".json") and _has_op(self.model_file, "nearest_interp"):
                    # Paddle 3.x: the pass that moves every op to oneDNN also moves nearest_interp,
                    # whose float-list ``scale`` the oneDNN instruction cannot convert (Unimplemented
                    # error at run time); without it the oneDNN fusion passes still apply, but the
                    # program runs ~3.5x slower on CPU.  Our exports upsample by pixel repeat and have
                    # no nearest_interp, so only older or PaddleOCR-made programs take this path.
                    config.delete_pass("onednn_placement_pass")
            else:
                _call_first(config, ("disable_onednn", "disable_mkldnn"))
        self.predictor = inference.create_predictor(config)
        self.input_name = self.predictor.get_input_names()[0]
        self.output_name = self.predictor.get_output_names()[0]
        self._input = self.predictor.get_input_handle(self.input_name)
        self._output = self.predictor.get_output_handle(self.output_name)

    def _base_config(self, inference):
        config = inference.Config(self.model_file, self.params_file)
        if self.model_file.endswith(".json"):  # Paddle 3.x PIR program: PIR passes and executor
            if hasattr(config, "enable_new_ir"):
                config.enable_new_ir(True)
            if hasattr(config, "enable_new_executor"):
                config.enable_new_executor(True)
        config.switch_ir_optim(True)
        config.enable_memory_optim()
        config.disable_glog_info()
        return config

    def _setup_tensorrt(self, inference, config, shape_file: Optional[str]) -> bool:
        try:
            precision = inference.PrecisionType.Float32
            config.enable_tensorrt_engine(workspace_size=1 << 30, max_batch_size=1, min_subgraph_size=3,
                                          precision_mode=precision, use_static=False, use_calib_mode=False)
            shape_file = shape_file or os.path.join(os.path.dirname(self.model_file), "trt_shape_range.pbtxt")
            if not os.path.isfile(shape_file):
                self._collect_shapes(inference, shape_file)
            config.enable_tuned_tensorrt_dynamic_shape(shape_file, True)
            return True
        except (AttributeError, RuntimeError, ValueError) as exc:  # build without TensorRT, old API
            warnings.warn(f"TensorRT not used ({type(exc).__name__}: {exc}); running plain GPU kernels")
            return False

    def _collect_shapes(self, inference, shape_file: str) -> None:
        config = self._base_config(inference)
        config.enable_use_gpu(256, 0)
        config.collect_shape_range_info(shape_file)
        predictor = inference.create_predictor(config)
        handle = predictor.get_input_handle(predictor.get_input_names()[0])
        for key in ("min", "opt", "max"):
            x = np.zeros(_TRT_SHAPES[key], dtype=np.float32)
            handle.reshape(x.shape)
            handle.copy_from_cpu(x)
            predictor.run()

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x, dtype=np.float32)
        self._input.reshape(list(x.shape))
        self._input.copy_from_cpu(x)
        self.predictor.run()
        return self._output.copy_to_cpu()

    def describe(self) -> Dict[str, object]:
        if self.device == "gpu":
            return {"backend": "paddle", "device": "gpu", "tensorrt": self.tensorrt}
        return {"backend": "paddle", "device": "cpu", "threads": self.threads, "mkldnn": self.mkldnn}


class OrtEngine:
    """ONNX Runtime session of an ``.onnx`` file.

    Args:
        opt_level: graph optimisation level, one of ``disable``, ``basic``, ``extended``, ``all``.
        threads: intra-op threads (0 = ONNX Runtime's default, one per core).
        inter_threads: inter-op threads (used with ``parallel`` execution mode only).
        spinning: let idle intra-op threads spin (ONNX Runtime's default); off yields the core,
            which can help on a loaded machine.
        device: ``cpu``, or ``gpu`` (CUDA execution provider when onnxruntime-gpu is installed).
    """

    def __init__(self, onnx_file: str, threads: int = 2, opt_level: str = "all", inter_threads: int = 1,
                 parallel: bool = False, spinning: bool = True, device: str = "cpu"):
        import onnxruntime as ort

        if not os.path.isfile(onnx_file):
            raise ConfigError(f"ONNX model not found: {onnx_file} (create it with tools/export_onnx.py)")
        if opt_level not in ORT_LEVELS:
            raise ConfigError(f"ONNX Runtime optimisation level must be one of {', '.join(ORT_LEVELS)}, "
                              f"got {opt_level!r}")
        levels = {"disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
                  "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
                  "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
                  "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL}
        so = ort.SessionOptions()
        so.graph_optimization_level = levels[opt_level]
        so.intra_op_num_threads = int(threads)
        so.inter_op_num_threads = int(inter_threads)
        so.execution_mode = ort.ExecutionMode.ORT_PARALLEL if parallel else ort.ExecutionMode.ORT_SEQUENTIAL
        so.log_severity_level = 3
        if not spinning:
            so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        providers = ["CPUExecutionProvider"]
        if device == "gpu":
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise ConfigError("device 'gpu' requested but onnxruntime has no CUDAExecutionProvider "
                                  "(install onnxruntime-gpu)")
            providers.insert(0, "CUDAExecutionProvider")
        self.onnx_file, self.threads, self.opt_level = onnx_file, int(threads), opt_level
        self.inter_threads, self.parallel, self.device = int(inter_threads), bool(parallel), device
        self.spinning = bool(spinning)
        self.session = ort.InferenceSession(onnx_file, so, providers=providers)
        self.input_name = self.session.get_inputs()[0].name
        self.output_name = self.session.get_outputs()[0].name

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x, dtype=np.float32)
        return self.session.run([self.output_name], {self.input_name: x})[0]

    def describe(self) -> Dict[str, object]:
        return {"backend": "onnxruntime", "device": self.device, "threads": self.threads,
                "opt_level": self.opt_level, "inter_threads": self.inter_threads, "parallel": self.parallel,
                "spinning": self.spinning}
