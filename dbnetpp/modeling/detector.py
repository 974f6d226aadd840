"""``DetModel`` (backbone -> neck -> head) and ``build_model`` from a PaddleOCR ``Architecture`` section."""
from __future__ import annotations

import inspect
from typing import Any, Dict, Mapping, Optional, Sequence

import paddle
from paddle import nn

from ..errors import ConfigError
from ..registry import BACKBONES, HEADS, NECKS, _suggest

__all__ = ["DetModel", "build_model", "check_architecture", "ARCH_KEYS", "ALGORITHMS", "TRAINING_ONLY_PREFIXES",
           "training_only", "static_graph"]

ARCH_KEYS = ("model_type", "algorithm", "Transform", "Backbone", "Neck", "Head")
ALGORITHMS = ("DB", "DB++")  # PaddleOCR's names for DBNet and DBNet++
_MODULES = (("Backbone", BACKBONES), ("Neck", NECKS), ("Head", HEADS))

TRAINING_ONLY_PREFIXES = ("head.thresh.",)
"""State-dict prefixes that the eval-mode network never uses: DBHead's threshold branch feeds only
the training loss, so inference exports (PaddleOCR's, and ONNX files made from them) do not hold it."""


def training_only(name: str) -> bool:
    """Whether the state-dict entry ``name`` is used only in training (see :data:`TRAINING_ONLY_PREFIXES`)."""
    return name.startswith(TRAINING_ONLY_PREFIXES)


class DetModel(nn.Layer):
    """Text detector ``head(neck(backbone(x)))``.

    Sub-layers are named ``backbone``, ``neck`` and ``head`` (as in PaddleOCR's ``BaseModel``),
    so state-dict names are PaddleOCR's.  ``neck`` may be ``None``.

    ``forward(x [N, 3, H, W] float32)`` with ``H, W`` multiples of 32 returns the head's dict,
    for DBHead ``{"maps": [N, 3, H, W]}`` in train mode (P, T, B) and ``{"maps": [N, 1, H, W]}``
    in eval mode (P).
    """

    def __init__(self, backbone: nn.Layer, neck: Optional[nn.Layer], head: nn.Layer):
        super().__init__()
        self.backbone = backbone
        self.neck = neck
        self.head = head

    def forward(self, x: paddle.Tensor) -> Dict[str, paddle.Tensor]:
        feats = self.backbone(x)
        if self.neck is not None:
            feats = self.neck(feats)
        return self.head(feats)


def _section(arch: Mapping[str, Any], key: str, required: bool) -> Optional[Dict[str, Any]]:
    sec = arch.get(key)
    if sec is None:
        if required:
            raise ConfigError(f"missing '{key}'", key=f"Architecture.{key}")
        return None
    if not isinstance(sec, Mapping):
        raise ConfigError(f"must be a mapping with a 'name' key, got {type(sec).__name__}",
                          key=f"Architecture.{key}")
    return dict(sec)


def check_architecture(arch_cfg: Any) -> None:
    """Every rule of the ``Architecture`` section, without building anything: known keys,
    ``model_type: det``, ``algorithm`` DB or DB++, no ``Transform``, a ``Backbone``, and each of
    Backbone / Neck / Head a registered name with arguments its class accepts (``in_channels`` is
    injected).  Raises :class:`ConfigError` naming ``Architecture.<key>``."""
    if not isinstance(arch_cfg, Mapping):
        raise ConfigError(f"must be a mapping, got {type(arch_cfg).__name__}", key="Architecture")
    for key in arch_cfg:
        if key not in ARCH_KEYS:
            raise ConfigError(f"unknown key '{key}'.{_suggest(str(key), ARCH_KEYS)} Valid keys: {', '.join(ARCH_KEYS)}",
                              key=f"Architecture.{key}")
    model_type = arch_cfg.get("model_type", "det")
    if model_type != "det":
        raise ConfigError(f"only model_type 'det' is supported, got {model_type!r}", key="Architecture.model_type")
    if arch_cfg.get("algorithm", "DB") not in ALGORITHMS:
        raise ConfigError(f"must be one of {', '.join(ALGORITHMS)} (this project trains DBNet and DBNet++; the "
                          f"ASF neck is DBFPN's use_asf), got {arch_cfg.get('algorithm')!r}",
                          key="Architecture.algorithm")
    if arch_cfg.get("Transform") is not None:
        raise ConfigError("Transform modules are not supported for detection; leave it empty",
                          key="Architecture.Transform")
    for key, registry in _MODULES:
        sec = _section(arch_cfg, key, required=key == "Backbone")
        if sec is None:
            continue
        if "name" not in sec:
            raise ConfigError(f"needs a 'name' key (one of: {', '.join(registry.names())})", key=f"Architecture.{key}")
        registry.check_kwargs(sec["name"], {k: v for k, v in sec.items() if k != "name"},
                              where=f"Architecture.{key}", injected=("in_channels",))


def build_model(arch_cfg: Mapping[str, Any]) -> DetModel:
    """Build a :class:`DetModel` from the YAML ``Architecture`` section (checked by
    :func:`check_architecture` first).

    Each module's ``in_channels`` is injected from the previous module's ``out_channels``
    (3 for the backbone), as PaddleOCR does.  Unknown names or keys raise :class:`ConfigError`
    naming ``Architecture.<Section>.<key>``.  ``arch_cfg`` is not modified.
    """
    check_architecture(arch_cfg)
    backbone = BACKBONES.build(_section(arch_cfg, "Backbone", True), where="Architecture.Backbone", in_channels=3)
    channels = backbone.out_channels
    neck_cfg = _section(arch_cfg, "Neck", False)
    neck = None
    if neck_cfg is not None:
        neck = NECKS.build(neck_cfg, where="Architecture.Neck", in_channels=channels)
        channels = neck.out_channels
    head = HEADS.build(_section(arch_cfg, "Head", True), where="Architecture.Head", in_channels=channels)
    return DetModel(backbone, neck, head)



def static_graph(model: nn.Layer, input_spec: Optional[Sequence[Any]] = None) -> nn.Layer:
    """``model`` with its forward translated from its Python source into a static graph (``paddle.jit.to_static``
    with ``full_graph=True``, the AST converter, which honours ``input_spec``; Paddle >= 2.6), same parameters
    and buffers.  Exports use it, and training with ``Global.to_static``."""
    params = inspect.signature(paddle.jit.to_static).parameters
    kwargs = {"full_graph": True} if "full_graph" in params or "kwargs" in params else {}
    return paddle.jit.to_static(model, input_spec=input_spec, **kwargs)
