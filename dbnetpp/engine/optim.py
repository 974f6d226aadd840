"""Optimizers under PaddleOCR's ``Optimizer`` section names and keys.

YAML::

    Optimizer:
      name: Adam | Momentum | AdamW | SGD
      beta1: 0.9            # Adam, AdamW
      beta2: 0.999          # Adam, AdamW
      epsilon: 1.0e-8       # Adam, AdamW
      momentum: 0.9         # Momentum
      use_nesterov: false   # Momentum
      lr: {name: Cosine, learning_rate: 0.001, warmup_epoch: 2}   # see dbnetpp.engine.lr
      regularizer: {name: L2, factor: 0.0}    # or L1; or instead:
      weight_decay: 1.0e-4  # L2 coefficient (AdamW: decoupled decay, default 0.01)
      clip_norm: 10.0       # per-tensor gradient-norm clipping, or
      clip_norm_global: 10.0  # clipping by the global norm of all gradients
      lr_mult:              # per-part rates: the schedule's rate times the factor of the longest
        backbone: 0.1       # prefix (on '.' boundaries) of the parameter's name; parts not named: 1
        neck.asf: 1.0

As in PaddleOCR, an L2 ``regularizer`` adds ``factor * w`` to each gradient
(coupled decay); with AdamW its factor becomes AdamW's decoupled coefficient.
Unlike PaddleOCR, a key that the chosen optimizer does not use (``momentum``
for Adam, ...) is an error, and ``regularizer`` together with ``weight_decay``
is rejected as ambiguous.  ``lr_mult`` (our key, mmengine's ``paramwise_cfg`` idea) gives parts of
the model their own multiple of the rate, e.g. a converted backbone trained slower than a new block; a
prefix that names no parameter is an error listing the model's parts.
"""
from __future__ import annotations

import copy
import math
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

import paddle

from ..errors import ConfigError
from ..registry import LR_SCHEDULERS, OPTIMIZERS
from .lr import WarmupSchedule

# keys handled here for every optimizer (the rest go to the optimizer factory)
_GENERIC_KEYS = ("name", "lr", "regularizer", "weight_decay", "clip_norm", "clip_norm_global", "lr_mult")
_INJECTED = ("parameters", "learning_rate", "weight_decay", "grad_clip")


@OPTIMIZERS.register()
def Adam(parameters, learning_rate, beta1: float = 0.9, beta2: float = 0.999, epsilon: float = 1e-8,
         weight_decay=None, grad_clip=None):
    """Adam (Kingma & Ba 2015); ``weight_decay`` is a coupled L1/L2 regulariser."""
    return paddle.optimizer.Adam(learning_rate=learning_rate, beta1=beta1, beta2=beta2, epsilon=epsilon,
                                 parameters=parameters, weight_decay=weight_decay, grad_clip=grad_clip)


@OPTIMIZERS.register()
def AdamW(parameters, learning_rate, beta1: float = 0.9, beta2: float = 0.999, epsilon: float = 1e-8,
          weight_decay=0.01, grad_clip=None):
    """AdamW (Loshchilov & Hutter 2019): decoupled weight decay ``weight_decay`` (float)."""
    return paddle.optimizer.AdamW(learning_rate=learning_rate, beta1=beta1, beta2=beta2, epsilon=epsilon,
                                  parameters=parameters, weight_decay=weight_decay, grad_clip=grad_clip)


@OPTIMIZERS.register()
def Momentum(parameters, learning_rate, momentum: float = 0.9, use_nesterov: bool = False,
             weight_decay=None, grad_clip=None):
    """SGD with momentum (DB++ recipe: 0.9); ``weight_decay`` is a coupled regulariser."""
    return paddle.optimizer.Momentum(learning_rate=learning_rate, momentum=momentum, use_nesterov=use_nesterov,
                                     parameters=parameters, weight_decay=weight_decay, grad_clip=grad_clip)


@OPTIMIZERS.register()
def SGD(parameters, learning_rate, weight_decay=None, grad_clip=None):
    """Plain stochastic gradient descent."""
    return paddle.optimizer.SGD(learning_rate=learning_rate, parameters=parameters,
                                weight_decay=weight_decay, grad_clip=grad_clip)


def _number(value, key: str, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (value <= 0 if positive else value < 0):
        raise ConfigError(f"must be a number {'> 0' if positive else '>= 0'}, got {value!r}", key=key)
    return float(value)


def check_optimizer_config(opt_cfg: Optional[Mapping[str, Any]], where: str = "Optimizer") -> None:
    """Validate an ``Optimizer`` section completely without building anything.

    Raises :class:`ConfigError` naming the dotted key.
    """
    if not isinstance(opt_cfg, Mapping):
        raise ConfigError("missing or not a mapping (needs at least 'name' and 'lr')", key=where)
    if "name" not in opt_cfg:
        raise ConfigError(f"needs a 'name' (one of: {', '.join(OPTIMIZERS.names())})", key=where)
    specific = {k: v for k, v in opt_cfg.items() if k not in _GENERIC_KEYS}
    OPTIMIZERS.check_kwargs(opt_cfg["name"], specific, where=where, injected=_INJECTED)
    if opt_cfg.get("regularizer") is not None and opt_cfg.get("weight_decay") is not None:
        raise ConfigError("give either 'regularizer' or 'weight_decay', not both", key=f"{where}.weight_decay")
    if opt_cfg.get("clip_norm") is not None and opt_cfg.get("clip_norm_global") is not None:
        raise ConfigError("give either 'clip_norm' (per tensor) or 'clip_norm_global', not both",
                          key=f"{where}.clip_norm_global")
    for k in ("clip_norm", "clip_norm_global"):
        if opt_cfg.get(k) is not None:
            _number(opt_cfg[k], f"{where}.{k}", positive=True)
    if opt_cfg.get("weight_decay") is not None:
        _number(opt_cfg["weight_decay"], f"{where}.weight_decay")
    reg = opt_cfg.get("regularizer")
    if reg is not None:
        if not isinstance(reg, Mapping):
            raise ConfigError("must be a mapping {name: L2|L1, factor: float}", key=f"{where}.regularizer")
        name = _regularizer_name(reg, f"{where}.regularizer.name")
        _number(reg.get("factor", 0.0), f"{where}.regularizer.factor")
        if name == "L1" and opt_cfg["name"] == "AdamW":
            raise ConfigError("AdamW decays weights itself (decoupled L2); an L1 regularizer is not supported",
                              key=f"{where}.regularizer.name")
    for k in ("beta1", "beta2"):
        if opt_cfg.get(k) is not None and not 0.0 <= _number(opt_cfg[k], f"{where}.{k}") < 1.0:
            raise ConfigError(f"must be in [0, 1), got {opt_cfg[k]!r}", key=f"{where}.{k}")
    if opt_cfg.get("epsilon") is not None:
        _number(opt_cfg["epsilon"], f"{where}.epsilon", positive=True)
    if opt_cfg.get("momentum") is not None:
        _number(opt_cfg["momentum"], f"{where}.momentum")
    _check_lr_mult(opt_cfg.get("lr_mult"), f"{where}.lr_mult")
    lr = opt_cfg.get("lr")
    if not isinstance(lr, Mapping):
        raise ConfigError("missing 'lr' section (at least {learning_rate: 0.001})", key=f"{where}.lr")
    if lr.get("learning_rate") is not None:
        _number(lr["learning_rate"], f"{where}.lr.learning_rate", positive=True)
    lr_args = {k: v for k, v in lr.items() if k != "name"}
    LR_SCHEDULERS.check_kwargs(lr.get("name") or "Const", lr_args, where=f"{where}.lr",
                               injected=("epochs", "step_each_epoch"))
    # the values (warmup_epoch >= 0, ...): a schedule is cheap to build
    build_lr_scheduler(lr, epochs=1, steps_per_epoch=1, log=lambda msg: None, where=f"{where}.lr")


def _check_lr_mult(mult: Any, key: str) -> None:
    if mult is None:
        return
    if not isinstance(mult, Mapping) or not mult:
        raise ConfigError(f"must be a mapping of parameter-name prefixes to factors, e.g. {{backbone: 0.1}}; "
                          f"got {mult!r}", key=key)
    for prefix, factor in mult.items():
        if not isinstance(prefix, str) or not prefix or prefix.startswith(".") or prefix.endswith("."):
            raise ConfigError(f"{prefix!r} is not a parameter-name prefix such as backbone or neck.asf", key=key)
        if not math.isfinite(_number(factor, f"{key}.{prefix}", positive=True)):
            raise ConfigError(f"must be a finite number > 0, got {factor!r}", key=f"{key}.{prefix}")


def _lr_factor(name: str, mult: Mapping[str, float]) -> float:
    """The factor of the longest prefix of ``name`` in ``mult`` (on '.' boundaries); 1.0 when none."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        prefix = ".".join(parts[:end])
        if prefix in mult:
            return float(mult[prefix])
    return 1.0


def param_groups(model: paddle.nn.Layer, mult: Optional[Mapping[str, float]],
                 log: Callable[[str], None] = print) -> List[Any]:
    """The trainable parameters of ``model``, as one list, or with ``Optimizer.lr_mult`` as Paddle's parameter
    groups (``learning_rate`` there scales the schedule's rate) in the model's parameter order."""
    named = [(n, p) for n, p in model.named_parameters() if getattr(p, "trainable", not p.stop_gradient)]
    if not mult:
        return [p for _, p in named]
    for prefix in mult:
        if not any(n == prefix or n.startswith(prefix + ".") for n, _ in named):
            parts = sorted({n.split(".")[0] for n, _ in named})
            raise ConfigError(f"{prefix!r} names no trainable parameter of the model (its parts: "
                              f"{', '.join(parts)}; sub-parts are dotted, e.g. neck.asf)",
                              key=f"Optimizer.lr_mult.{prefix}")
    groups: Dict[float, List[Any]] = {}
    for n, p in named:
        groups.setdefault(_lr_factor(n, mult), []).append(p)
    log("learning-rate factors (Optimizer.lr_mult): " + ", ".join(
        f"x{f:g} for {sum(int(p.numel()) for p in ps)} weights" for f, ps in groups.items()))
    return [{"params": ps, "learning_rate": f} for f, ps in groups.items()]


def _regularizer_name(reg: Mapping[str, Any], key: str) -> str:
    name = str(reg.get("name", "L2"))
    name = name[:-5] if name.endswith("Decay") else name  # PaddleOCR accepts L2Decay as well
    if name not in ("L1", "L2"):
        raise ConfigError(f"must be L2 or L1, got {reg.get('name')!r}", key=key)
    return name


def build_lr_scheduler(lr_cfg: Mapping[str, Any], epochs: int, steps_per_epoch: int,
                       log: Callable[[str], None] = print, where: str = "Optimizer.lr") -> WarmupSchedule:
    """Build the schedule of ``Optimizer.lr`` (no ``name``: constant rate)."""
    cfg = dict(lr_cfg)
    for key, value in (("epochs", epochs), ("step_each_epoch", steps_per_epoch)):
        if cfg.get(key) is not None and cfg[key] != value:
            log(f"note: {where}.{key}={cfg[key]} is replaced by {value} (the schedule spans Global.epoch_num "
                f"epochs of {steps_per_epoch} iterations, as in PaddleOCR)")
    cfg["name"] = cfg.get("name") or "Const"
    schedule = LR_SCHEDULERS.build(cfg, where=where, epochs=epochs, step_each_epoch=steps_per_epoch)
    warmup, total = getattr(schedule, "warmup_steps", 0), getattr(schedule, "total_steps", 0)
    if total and warmup >= total:
        log(f"warning: {where}.warmup_epoch={cfg.get('warmup_epoch')} is {warmup} steps, not shorter than the "
            f"whole schedule ({total} steps = {epochs} epochs x {steps_per_epoch}): the learning rate never "
            f"reaches {cfg.get('learning_rate')}")
    return schedule


def _weight_decay(opt_cfg: Mapping[str, Any]):
    """The ``weight_decay`` argument for the optimizer factory."""
    reg = opt_cfg.get("regularizer")
    adamw = opt_cfg["name"] == "AdamW"
    if reg is not None:
        name = _regularizer_name(reg, "Optimizer.regularizer.name")
        factor = float(reg.get("factor", 0.0))
        if adamw:
            return factor
        if factor == 0.0:
            return None
        return paddle.regularizer.L2Decay(factor) if name == "L2" else paddle.regularizer.L1Decay(factor)
    wd = opt_cfg.get("weight_decay")
    if wd is None:
        return 0.01 if adamw else None
    if adamw:
        return float(wd)
    return paddle.regularizer.L2Decay(float(wd)) if wd else None


def _grad_clip(opt_cfg: Mapping[str, Any]):
    if opt_cfg.get("clip_norm") is not None:
        return paddle.nn.ClipGradByNorm(clip_norm=float(opt_cfg["clip_norm"]))
    if opt_cfg.get("clip_norm_global") is not None:
        return paddle.nn.ClipGradByGlobalNorm(clip_norm=float(opt_cfg["clip_norm_global"]))
    return None


def build_optimizer(opt_cfg: Mapping[str, Any], model: paddle.nn.Layer, steps_per_epoch: int, epochs: int,
                    log: Callable[[str], None] = print) -> Tuple[paddle.optimizer.Optimizer, WarmupSchedule]:
    """``Optimizer`` section -> ``(optimizer, lr_scheduler)``.

    The scheduler is stepped once per iteration by the trainer.  Only trainable
    parameters are optimised.
    """
    check_optimizer_config(opt_cfg)
    opt_cfg = copy.deepcopy(dict(opt_cfg))
    scheduler = build_lr_scheduler(opt_cfg["lr"], epochs, steps_per_epoch, log=log)
    params = param_groups(model, opt_cfg.get("lr_mult"), log=log)
    if not params:
        raise ConfigError("the model has no trainable parameters", key="Optimizer")
    specific: Dict[str, Any] = {k: v for k, v in opt_cfg.items() if k not in _GENERIC_KEYS}
    factory = OPTIMIZERS.get(opt_cfg["name"], where="Optimizer.name")
    optimizer = factory(parameters=params, learning_rate=scheduler, weight_decay=_weight_decay(opt_cfg),
                        grad_clip=_grad_clip(opt_cfg), **specific)
    return optimizer, scheduler
