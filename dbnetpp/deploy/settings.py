"""Inference settings of an exported model: ``<model_dir>/inference.yml``.

The file follows the layout PaddleOCR's exporter writes (``Global``, ``PreProcess.transform_ops``,
``PostProcess``), so the pre- and post-processing a model was trained and evaluated with travel
with it, plus a ``Deploy`` section describing the model files::

    Global:    {model_name: PP-OCRv3_mobile_det, model_type: det, algorithm: DB}   # a PaddleX-registered name
    PreProcess:
      transform_ops:
        - DecodeImage: {img_mode: BGR, channel_first: false}     # channel order fed to the network
        - DetResizeForTest: {image_shape: [736, 1280]}           # or {limit_side_len: 960, limit_type: max}
        - NormalizeImage: {scale: 1./255., mean: [...], std: [...], order: hwc}
        - ToCHWImage: null
        - KeepKeys: {keep_keys: [image, shape]}
    PostProcess: {name: DBPostProcess, thresh: 0.3, box_thresh: 0.6, ...}
    Deploy:    {model_file, params_file, input_name, input_shape, size_multiple, pad_value, ...}

Every consumer (``tools/infer_det.py``, :class:`dbnetpp.deploy.Detector`, the benchmark) builds
its pre-processing from this file, so the same normalisation is used everywhere.
``inference.yml`` files written by PaddleOCR's own exporter load as well (the ``Deploy`` section
is then inferred from the files present; label-only ops such as ``DetLabelEncode`` are skipped).
"""
from __future__ import annotations

import copy
import os
import re
from dataclasses import dataclass, field
from typing import Any, Dict, Mapping, Optional

import yaml

from ..errors import ConfigError

SETTINGS_FILE = "inference.yml"
FORMAT_VERSION = 1
# Used when the training config has no Eval DetResizeForTest: PaddleOCR's inference default.
DEFAULT_RESIZE = {"limit_side_len": 960, "limit_type": "max"}
DEFAULT_NORMALIZE = {"scale": "1./255.", "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225],
                     "order": "hwc"}
DEFAULT_POSTPROCESS = {"name": "DBPostProcess", "thresh": 0.3, "box_thresh": 0.6, "max_candidates": 1000,
                       "unclip_ratio": 1.5}
# ops that only matter for labelled data or that the pre-processor applies implicitly
_IMPLICIT_OPS = ("DetLabelEncode", "ToCHWImage", "KeepKeys")

__all__ = ["InferenceSettings", "SETTINGS_FILE", "DEFAULT_RESIZE", "settings_from_config",
           "parse_resize", "describe_resize", "find_model_files"]


@dataclass
class InferenceSettings:
    """Parsed ``inference.yml``.

    Attributes:
        img_mode: channel order the network expects, ``BGR`` (OpenCV's) or ``RGB``.
        resize: ``DetResizeForTest`` arguments.
        normalize: ``NormalizeImage`` arguments (``scale``, ``mean``, ``std``, ``order``).
        postprocess: ``PostProcess`` section (``name`` + arguments).
        algorithm, model_name: from ``Global``.
        deploy: the ``Deploy`` section (model file names, input name, ...).
    """

    img_mode: str = "BGR"
    resize: Dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_RESIZE))
    normalize: Dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_NORMALIZE))
    postprocess: Dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_POSTPROCESS))
    algorithm: str = "DB"
    model_name: str = ""
    deploy: Dict[str, Any] = field(default_factory=dict)

    # ------------------------------------------------------------ (de)serialise
    def to_dict(self) -> Dict[str, Any]:
        return {
            "Global": {"model_name": self.model_name, "model_type": "det", "algorithm": self.algorithm},
            "PreProcess": {"transform_ops": [
                {"DecodeImage": {"img_mode": self.img_mode, "channel_first": False}},
                {"DetResizeForTest": copy.deepcopy(self.resize)},
                {"NormalizeImage": copy.deepcopy(self.normalize)},
                {"ToCHWImage": None},
                {"KeepKeys": {"keep_keys": ["image", "shape"]}},
            ]},
            "PostProcess": copy.deepcopy(self.postprocess),
            "Deploy": copy.deepcopy(self.deploy),
        }

    def save(self, model_dir: str) -> str:
        path = os.path.join(model_dir, SETTINGS_FILE)
        tmp = f"{path}.tmp{os.getpid()}"
        with open(tmp, "w", encoding="utf-8") as f:
            yaml.safe_dump(self.to_dict(), f, sort_keys=False, allow_unicode=True)
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, model_dir: str) -> "InferenceSettings":
        """Read ``model_dir/inference.yml`` (raises :class:`ConfigError` naming the file)."""
        path = os.path.join(model_dir, SETTINGS_FILE)
        if not os.path.isfile(path):
            raise ConfigError(f"{SETTINGS_FILE} not found in {model_dir} (export the model with "
                              f"tools/export_model.py, which writes it)", file=path)
        try:
            with open(path, "r", encoding="utf-8") as f:
                raw = yaml.safe_load(f)
        except yaml.YAMLError as exc:
            raise ConfigError(f"invalid YAML: {exc}", file=path) from exc
        if not isinstance(raw, Mapping):
            raise ConfigError("top level must be a mapping", file=path)
        return cls.from_dict(raw, file=path, model_dir=model_dir)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], file: Optional[str] = None,
                  model_dir: Optional[str] = None) -> "InferenceSettings":
        out = cls()
        glob = raw.get("Global") or {}
        out.algorithm = str(glob.get("algorithm", "DB"))
        out.model_name = str(glob.get("model_name") or "")
        ops = (raw.get("PreProcess") or {}).get("transform_ops")
        if not isinstance(ops, list):
            raise ConfigError("missing list PreProcess.transform_ops", key="PreProcess.transform_ops", file=file)
        seen = set()
        for i, item in enumerate(ops):
            where = f"PreProcess.transform_ops.{i}"
            if not isinstance(item, Mapping) or len(item) != 1:
                raise ConfigError("each op must be a one-key mapping {Name: args}", key=where, file=file)
            (name, args), = item.items()
            args = dict(args or {})
            if name == "DecodeImage":
                out.img_mode = str(args.get("img_mode", "BGR"))
                if out.img_mode not in ("BGR", "RGB"):
                    raise ConfigError(f"img_mode must be BGR or RGB, got {out.img_mode!r}",
                                      key=f"{where}.DecodeImage.img_mode", file=file)
            elif name == "DetResizeForTest":
                out.resize = args
            elif name == "NormalizeImage":
                out.normalize = args
            elif name not in _IMPLICIT_OPS:
                raise ConfigError(f"unsupported pre-processing op '{name}' (supported: DecodeImage, "
                                  f"DetResizeForTest, NormalizeImage, {', '.join(_IMPLICIT_OPS)})",
                                  key=where, file=file)
            seen.add(name)
        for required in ("DetResizeForTest", "NormalizeImage"):
            if required not in seen:
                raise ConfigError(f"PreProcess.transform_ops has no {required}", key="PreProcess", file=file)
        post = raw.get("PostProcess")
        if not isinstance(post, Mapping) or "name" not in post:
            raise ConfigError("missing PostProcess section with a 'name'", key="PostProcess", file=file)
        out.postprocess = dict(post)
        out.deploy = dict(raw.get("Deploy") or {})
        if model_dir is not None and not out.deploy.get("model_file"):
            out.deploy.update(find_model_files(model_dir))
        out.validate(file)
        return out

    def validate(self, file: Optional[str] = None) -> None:
        """Build the pre/post-processing once so bad values fail here, naming the key."""
        from .preprocess import Preprocessor  # local: avoids an import cycle
        from ..registry import POSTPROCESSES

        try:
            Preprocessor(self)
        except ConfigError as exc:
            raise exc.with_context(file=file) from None
        try:
            POSTPROCESSES.build(self.postprocess, where="PostProcess")
        except ConfigError as exc:
            raise exc.with_context(file=file) from None


def find_model_files(model_dir: str) -> Dict[str, str]:
    """``{"model_file", "params_file", "model_format"}`` of the Paddle model in ``model_dir``:
    ``inference.pdmodel`` (Paddle 2.x program) or ``inference.json`` (Paddle 3.x PIR program)."""
    for name, fmt in (("inference.pdmodel", "pdmodel"), ("inference.json", "pir-json")):
        if os.path.isfile(os.path.join(model_dir, name)):
            return {"model_file": name, "params_file": "inference.pdiparams", "model_format": fmt}
    return {}


# ---------------------------------------------------------------------------- from a config
def _find_op(transforms: Any, name: str) -> Optional[Dict[str, Any]]:
    for item in transforms or []:
        if isinstance(item, Mapping) and name in item:
            return dict(item[name] or {})
    return None


def _section_transforms(cfg: Mapping[str, Any], mode: str) -> list:
    sec = cfg.get(mode) or {}
    return ((sec.get("dataset") or {}).get("transforms")) or []


# PaddleX 3.x's text-detection predictor only loads an inference.yml whose Global.model_name is one of
# its registered detection models (and equal to the name it is called with); the name picks nothing but
# defaults, the network and its processing come from the files.  Closest registered model per backbone:
PADDLEX_DET_NAMES = {"MobileNetV3": "PP-OCRv3_mobile_det", "ResNet_vd": "PP-OCRv3_server_det"}


def paddlex_model_name(cfg: Mapping[str, Any]) -> str:
    """``Global.model_name`` of the export: the config's own (as PaddleOCR 3.x's exporter does), else the
    registered PaddleX detection model closest to the architecture (:data:`PADDLEX_DET_NAMES`)."""
    name = (cfg.get("Global") or {}).get("model_name")
    if name:
        return str(name)
    backbone = ((cfg.get("Architecture") or {}).get("Backbone") or {}).get("name")
    return PADDLEX_DET_NAMES.get(str(backbone), "PP-OCRv3_mobile_det")


def settings_from_config(cfg: Mapping[str, Any], resize: Optional[Dict[str, Any]] = None) -> InferenceSettings:
    """Inference settings a model was trained/evaluated with, taken from its config.

    * resize: the Eval ``DetResizeForTest`` (``resize`` overrides it); without one the deploy
      default ``limit_side_len 960, limit_type max``;
    * normalisation and channel order: the Eval ``NormalizeImage``/``DecodeImage`` (else Train's;
      else ImageNet statistics and BGR, the values of every DB recipe);
    * post-processing: the ``PostProcess`` section (else DB defaults of the recipes).
    """
    arch = cfg.get("Architecture") or {}
    out = InferenceSettings()
    out.algorithm = str(arch.get("algorithm") or "DB")
    src = cfg.get("__file__") or ""
    out.model_name = paddlex_model_name(cfg)
    ev, tr = _section_transforms(cfg, "Eval"), _section_transforms(cfg, "Train")
    if resize is not None:
        out.resize = dict(resize)
    else:
        found = _find_op(ev, "DetResizeForTest")
        out.resize = found if found else dict(DEFAULT_RESIZE)
    norm = _find_op(ev, "NormalizeImage") or _find_op(tr, "NormalizeImage")
    if norm is not None:
        merged = dict(DEFAULT_NORMALIZE)
        merged.update(norm)
        out.normalize = merged
    decode = _find_op(ev, "DecodeImage") or _find_op(tr, "DecodeImage")
    if decode is not None:
        out.img_mode = str(decode.get("img_mode", "RGB"))  # DecodeImage's own default
    if cfg.get("PostProcess"):
        out.postprocess = dict(cfg["PostProcess"])
    out.validate(src or None)
    return out


_SHAPE_RE = re.compile(r"^\s*(\d+)\s*[xX]\s*(\d+)\s*$")
_LIMIT_RE = re.compile(r"^\s*(max|min|resize_long|long)\s*[:=]\s*(\d+)\s*$")


def parse_resize(text: str) -> Dict[str, Any]:
    """``"736x1280"`` -> ``{"image_shape": [736, 1280]}``; ``"max:960"`` / ``"min:736"`` ->
    ``{"limit_side_len": N, "limit_type": ...}``; ``"long:960"`` -> ``{"resize_long": 960}``."""
    m = _SHAPE_RE.match(text)
    if m:
        h, w = int(m.group(1)), int(m.group(2))
        if h <= 0 or w <= 0 or h % 32 or w % 32:
            raise ValueError(f"resize {text!r}: height and width must be positive multiples of 32")
        return {"image_shape": [h, w]}
    m = _LIMIT_RE.match(text)
    if m:
        kind, n = m.group(1), int(m.group(2))
        if n <= 0:
            raise ValueError(f"resize {text!r}: the side length must be positive")
        if kind == "long":
            return {"resize_long": n}
        return {"limit_side_len": n, "limit_type": kind}
    raise ValueError(f"resize {text!r}: expected HxW (736x1280), max:N, min:N, resize_long:N or long:N")


def describe_resize(resize: Mapping[str, Any]) -> str:
    if resize.get("image_shape"):
        h, w = resize["image_shape"]
        return f"{h}x{w}" + (" keep_ratio" if resize.get("keep_ratio") else "")
    if resize.get("limit_side_len") is not None:
        return f"{resize.get('limit_type', 'min')}:{resize['limit_side_len']}"
    if resize.get("resize_long") is not None:
        return f"long:{resize['resize_long']}"
    return "min:736"


def rapidocr_params(model_dir: str, onnx_file: str = "inference.onnx") -> Dict[str, Any]:
    """RapidOCR 3.x ``params`` that run the ONNX export in ``model_dir`` as our predictor does: the file, the
    normalisation, the resize limit (when the export has one; RapidOCR has no fixed ``image_shape``) and the
    post-processing of ``inference.yml``.  Dilation and score mode are stated because RapidOCR's defaults
    differ from PaddleOCR's (it dilates the map by default, which merges neighbouring words)."""
    s = InferenceSettings.load(model_dir)
    params: Dict[str, Any] = {"Det.model_path": os.path.join(model_dir, onnx_file),
                              "Det.mean": s.normalize["mean"], "Det.std": s.normalize["std"]}
    if "limit_side_len" in s.resize:
        params["Det.limit_side_len"] = s.resize["limit_side_len"]
        params["Det.limit_type"] = s.resize.get("limit_type", "min")  # DetResizeForTest's default
    post = s.postprocess
    params.update({"Det.thresh": post["thresh"], "Det.box_thresh": post["box_thresh"],
                   "Det.unclip_ratio": post["unclip_ratio"], "Det.use_dilation": bool(post.get("use_dilation")),
                   "Det.score_mode": post.get("score_mode", "fast")})
    return params
