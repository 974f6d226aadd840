"""Python API for exported detectors::

    from dbnetpp.deploy import Detector
    det = Detector("inference/det_mv3_db", threads=2)            # Paddle Inference, CPU
    boxes, scores = det.detect(cv2.imread("img_10.jpg"))          # [K, 4, 2] int32, list[float]

Pre-processing (resize rule, channel order, mean/std/scale) and post-processing settings come
from the model's ``inference.yml``; ``resize=`` and ``postprocess=`` override them.  Boxes are
in source-image pixels, finished as PaddleOCR's ``predict_det`` does: corners ordered clockwise
from the top-left, clipped to the image, and quads with a side of 3 px or less dropped.
"""
from __future__ import annotations

import os
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..errors import ConfigError
from ..registry import POSTPROCESSES
from ..postprocess import DBPostProcess  # noqa: F401  (registers DBPostProcess)
from .engines import OrtEngine, PaddleEngine
from .preprocess import Preprocessor, pad_batch
from .settings import InferenceSettings

__all__ = ["Detector", "boxes_from_map", "order_points_clockwise", "finish_quads"]

ONNX_FILE = "inference.onnx"


def order_points_clockwise(pts: np.ndarray) -> np.ndarray:
    """[4, 2] corners -> top-left, top-right, bottom-right, bottom-left (by x+y and y-x extremes;
    the rule of PaddleOCR's ``predict_det``)."""
    pts = np.asarray(pts, dtype=np.float32)
    s = pts.sum(axis=1)
    d = np.diff(pts, axis=1)[:, 0]
    return np.stack([pts[np.argmin(s)], pts[np.argmin(d)], pts[np.argmax(s)], pts[np.argmax(d)]])


def finish_quads(boxes: np.ndarray, scores: Sequence[float], src_h: int, src_w: int
                 ) -> Tuple[np.ndarray, List[float]]:
    """Order, clip to ``[0, w-1] x [0, h-1]`` and drop quads whose sides are <= 3 px."""
    out_b, out_s = [], []
    for box, score in zip(boxes, scores):
        box = order_points_clockwise(box)
        box[:, 0] = np.clip(box[:, 0], 0, src_w - 1).astype(np.int32)
        box[:, 1] = np.clip(box[:, 1], 0, src_h - 1).astype(np.int32)
        if int(np.linalg.norm(box[0] - box[1])) <= 3 or int(np.linalg.norm(box[0] - box[3])) <= 3:
            continue
        out_b.append(box.astype(np.int32))
        out_s.append(float(score))
    if not out_b:
        return np.zeros((0, 4, 2), np.int32), []
    return np.stack(out_b), out_s


def boxes_from_map(post, prob: np.ndarray, shape: np.ndarray) -> Tuple[Any, List[float]]:
    """``post`` (a DBPostProcess) on one ``[h, w]`` map of an image with ``shape`` = [src_h, src_w, rh, rw]:
    quads ordered, clipped and filtered (:func:`finish_quads`), or polygons clipped to the image."""
    src_h, src_w = int(shape[0]), int(shape[1])
    res = post.process_map(prob, src_h, src_w)
    if post.box_type == "poly":
        polys = [np.stack([np.clip(p[:, 0], 0, src_w - 1), np.clip(p[:, 1], 0, src_h - 1)], 1)
                 for p in res["points"]]
        return polys, list(res["scores"])
    return finish_quads(res["points"], res["scores"], src_h, src_w)


class Detector:
    """Text detector over an exported model directory.

    Args:
        model_dir: folder written by ``tools/export_model.py``.
        backend: ``paddle`` (Paddle Inference) or ``onnx`` (ONNX Runtime on
            ``model_dir/inference.onnx``, or ``onnx_file``).
        device: ``cpu`` or ``gpu``.
        threads: CPU threads; mkldnn: oneDNN kernels for Paddle on CPU; tensorrt: TensorRT on GPU.
        ort_opt_level: ONNX Runtime graph optimisation level.
        resize: ``DetResizeForTest`` arguments replacing the exported ones.
        postprocess: ``PostProcess`` entries replacing the exported ones (e.g. ``{"box_thresh": 0.5}``).
    """

    def __init__(self, model_dir: str, backend: str = "paddle", device: str = "cpu", threads: int = 2,
                 mkldnn: bool = True, tensorrt: bool = False, ort_opt_level: str = "all",
                 onnx_file: Optional[str] = None, resize: Optional[Dict[str, Any]] = None,
                 postprocess: Optional[Dict[str, Any]] = None):
        if not os.path.isdir(model_dir):
            raise ConfigError(f"model directory not found: {model_dir}")
        self.model_dir = model_dir
        self.settings = InferenceSettings.load(model_dir)
        if resize is not None:
            self.settings.resize = dict(resize)
        if postprocess:
            self.settings.postprocess.update(postprocess)
        self.preprocess = Preprocessor(self.settings)
        self.postprocess = POSTPROCESSES.build(self.settings.postprocess, where="PostProcess")
        self.pad_value = float(self.settings.deploy.get("pad_value", 0.0))
        if backend == "paddle":
            dep = self.settings.deploy
            if not dep.get("model_file"):
                raise ConfigError(f"no inference.pdmodel / inference.json in {model_dir}")
            self.engine = PaddleEngine(os.path.join(model_dir, dep["model_file"]),
                                       os.path.join(model_dir, dep.get("params_file", "inference.pdiparams")),
                                       device=device, threads=threads, mkldnn=mkldnn, tensorrt=tensorrt)
        elif backend == "onnx":
            self.engine = OrtEngine(onnx_file or os.path.join(model_dir, ONNX_FILE), threads=threads,
                                    opt_level=ort_opt_level, device=device)
        else:
            raise ConfigError(f"backend must be 'paddle' or 'onnx', got {backend!r}")
        self.backend = backend

    # ------------------------------------------------------------------ steps
    def prepare(self, imgs: Sequence[np.ndarray]):
        """Images -> (batch ``[N, 3, H, W]``, shapes ``[N, 4]``, valid sizes ``[(h, w)]``)."""
        chws, shapes = [], []
        for img in imgs:
            chw, shape = self.preprocess(img)
            chws.append(chw)
            shapes.append(shape)
        sizes = [(c.shape[1], c.shape[2]) for c in chws]
        return pad_batch(chws, self.pad_value), np.stack(shapes), sizes

    def predict_maps(self, imgs: Sequence[np.ndarray]) -> Tuple[List[np.ndarray], np.ndarray]:
        """Probability maps, each cropped to its image's resized size ``[h_i, w_i]``, and shapes."""
        batch, shapes, sizes = self.prepare(imgs)
        maps = self.engine(batch)
        return [maps[i, 0, :h, :w] for i, (h, w) in enumerate(sizes)], shapes

    def boxes_from_map(self, prob: np.ndarray, shape: np.ndarray) -> Tuple[Any, List[float]]:
        """Post-process one ``[h, w]`` map of an image with ``shape`` = [src_h, src_w, rh, rw]."""
        return boxes_from_map(self.postprocess, prob, shape)

    # ------------------------------------------------------------------ API
    def detect_batch(self, imgs: Sequence[np.ndarray]) -> List[Tuple[Any, List[float]]]:
        """Detect text in several BGR images at once (padded to a common size)."""
        maps, shapes = self.predict_maps(imgs)
        return [self.boxes_from_map(m, s) for m, s in zip(maps, shapes)]

    def detect(self, img: np.ndarray) -> Tuple[Any, List[float]]:
        """``img`` BGR uint8 ``[H, W, 3]`` -> (boxes ``[K, 4, 2]`` int32, scores)."""
        return self.detect_batch([img])[0]

    __call__ = detect
