"""Automatic mixed precision under PaddleOCR's Global keys.

``use_amp``, ``amp_level`` (O1: per-op casting; O2: half-precision weights
with float32 master copies; default O2 as PaddleOCR), ``amp_dtype`` (float16
or bfloat16), ``scale_loss`` (initial loss scale, default 1.0),
``use_dynamic_loss_scaling`` (default false), ``amp_custom_black_list`` /
``amp_custom_white_list``.  AMP needs a GPU: on CPU the keys are ignored with
one warning.  Predictions are cast back to float32 before the loss.

Gradient overflow: after the backward pass the gradients are unscaled and
checked; with inf/nan gradients the update is skipped (and a dynamic loss scale
lowered).  :meth:`Amp.backward_and_step` returns an :class:`AmpOverflow` for
such a step so that the trainer reports and counts it (:class:`~dbnetpp.engine.guard.Faults`);
``Amp.skipped`` is this object's own running total.
"""
from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import Any, Callable, ContextManager, Mapping, Optional

import paddle

from ..errors import ConfigError
from ..global_schema import global_value


FLOAT_DTYPES = (paddle.float32, paddle.float16, paddle.bfloat16, paddle.float64)


@dataclass
class AmpOverflow:
    """A step whose gradients were not finite under AMP: no update was made."""

    scale: float  # loss scale the step ran with
    next_scale: float  # loss scale for the next step (lower after an overflow under dynamic scaling)
    grad_norm: float  # global norm of the unscaled gradients (inf or nan)
    dynamic: bool  # dynamic loss scaling on


def grad_norm(parameters) -> float:
    """Global L2 norm of the parameters' gradients, as float32 (0.0 without gradients)."""
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return 0.0
    return float(paddle.linalg.norm(paddle.concat([g.reshape([-1]).astype("float32") for g in grads])))


class Amp:
    def __init__(self, g: Mapping[str, Any], device: str, warn: Callable[[str], None]):
        self.enabled = bool(global_value(g, "use_amp"))
        self.level = global_value(g, "amp_level")
        self.dtype = global_value(g, "amp_dtype")
        self.black = list(global_value(g, "amp_custom_black_list"))
        self.white = list(global_value(g, "amp_custom_white_list"))
        self.scaler: Optional[paddle.amp.GradScaler] = None
        self.skipped = 0  # steps without an update because of inf/nan gradients
        if not self.enabled:
            return
        if not device.startswith("gpu"):
            warn("=" * 72)
            warn("Global.use_amp is true but training runs on CPU: mixed precision is IGNORED, "
                 "training in float32")
            warn("=" * 72)
            self.enabled = False
            return
        if self.dtype not in ("float16", "bfloat16"):
            raise ConfigError(f"must be float16 or bfloat16, got {self.dtype!r}", key="Global.amp_dtype")
        if self.dtype == "bfloat16" and hasattr(paddle.amp, "is_bfloat16_supported") \
                and not paddle.amp.is_bfloat16_supported():
            warn("Global.amp_dtype bfloat16 is not supported by this GPU; using float16")
            self.dtype = "float16"
        self.scaler = paddle.amp.GradScaler(
            init_loss_scaling=float(global_value(g, "scale_loss")),
            use_dynamic_loss_scaling=bool(global_value(g, "use_dynamic_loss_scaling")))

    def describe(self) -> str:
        if not self.enabled:
            return "off"
        return (f"{self.level} {self.dtype}, loss scale {self.scaler.get_init_loss_scaling()}, "
                f"dynamic {self.scaler.is_use_dynamic_loss_scaling()}")

    def decorate(self, model, optimizer):
        if self.enabled and self.level == "O2":
            model, optimizer = paddle.amp.decorate(models=model, optimizers=optimizer, level="O2",
                                                   dtype=self.dtype, master_weight=True)
        return model, optimizer

    def autocast(self) -> ContextManager:
        if not self.enabled:
            return contextlib.nullcontext()
        return paddle.amp.auto_cast(enable=True, custom_white_list=self.white, custom_black_list=self.black,
                                    level=self.level, dtype=self.dtype)

    def loss_scale(self) -> float:
        """The current loss scale (1.0 without a scaler)."""
        if self.scaler is None:
            return 1.0
        scale = getattr(self.scaler, "_scale", None)  # a 1-element tensor while the scaler is active
        return float(scale.item()) if scale is not None else float(self.scaler.get_init_loss_scaling())

    def _scaler_active(self) -> bool:
        # paddle's GradScaler switches itself off for bfloat16 with dynamic scaling (it then neither
        # scales nor checks the gradients)
        return self.scaler is not None and bool(getattr(self.scaler, "_enable", True))

    def backward_and_step(self, loss: paddle.Tensor, optimizer, parameters=None) -> Optional[AmpOverflow]:
        """Backward pass and parameter update; the gradients are cleared afterwards.

        Returns ``None`` after an update, or an :class:`AmpOverflow` when the unscaled gradients
        held inf/nan and the update was skipped (a dynamic loss scale is lowered by the scaler).
        ``parameters``: those whose gradients to check (default: the optimizer's).
        """
        if self.scaler is None:
            loss.backward()
            optimizer.step()
            optimizer.clear_grad()
            return None
        scale = self.loss_scale()
        active = self._scaler_active()
        self.scaler.scale(loss).backward()
        self.scaler.unscale_(optimizer)
        params = list(parameters) if parameters is not None else list(getattr(optimizer, "_parameter_list", []))
        if active and hasattr(self.scaler, "_found_inf"):
            found_inf = bool(self.scaler._found_inf.item())  # the scaler's own decision, set by unscale_()
            norm = grad_norm(params) if found_inf else 0.0
        else:
            norm = grad_norm(params)
            found_inf = not math.isfinite(norm)
        if active or not found_inf:  # an inactive scaler would apply a non-finite update: skipped here
            self.scaler.step(optimizer)  # an active scaler skips the update when the gradients are not finite
            self.scaler.update()
        optimizer.clear_grad()
        if not found_inf:
            return None
        self.skipped += 1
        return AmpOverflow(scale=scale, next_scale=self.loss_scale(), grad_norm=norm,
                           dynamic=bool(self.scaler.is_use_dynamic_loss_scaling()))

    @staticmethod
    def overflow_is_expected(overflow: AmpOverflow) -> bool:
        """A dynamic loss scale above 1 overflowing is the scaler adjusting, not a fault; with a
        static scale, or a scale already at or below 1, the gradients themselves are not finite."""
        return overflow.dynamic and overflow.scale > 1.0

    def state_dict(self) -> dict:
        return self.scaler.state_dict() if self.scaler is not None else {}

    def load_state_dict(self, state: Optional[dict]) -> None:
        if self.scaler is not None and state:
            self.scaler.load_state_dict(state)
