"""Automatic mixed precision under PaddleOCR's Global keys.

``use_amp``, ``amp_level`` (O1: per-op casting; O2: half-precision weights
with float32 master copies; default O2 as PaddleOCR), ``amp_dtype`` (float16
or bfloat16), ``scale_loss`` (initial loss scale, default 1.0),
``use_dynamic_loss_scaling`` (default false), ``amp_custom_black_list`` /
``amp_custom_white_list``.  AMP needs a GPU: on CPU the keys are ignored with
one warning.  Predictions are cast back to float32 before the loss.
"""
from __future__ import annotations

import contextlib
from typing import Any, Callable, ContextManager, Mapping, Optional

import paddle

from ..errors import ConfigError


class Amp:
    def __init__(self, g: Mapping[str, Any], device: str, warn: Callable[[str], None]):
        self.enabled = bool(g.get("use_amp"))
        self.level = g.get("amp_level") or "O2"
        self.dtype = g.get("amp_dtype") or "float16"
        self.black = list(g.get("amp_custom_black_list") or [])
        self.white = list(g.get("amp_custom_white_list") or [])
        self.scaler: Optional[paddle.amp.GradScaler] = None
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
            init_loss_scaling=float(g.get("scale_loss") or 1.0),
            use_dynamic_loss_scaling=bool(g.get("use_dynamic_loss_scaling", False)))

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

    def backward_and_step(self, loss: paddle.Tensor, optimizer) -> None:
        """Backward pass and parameter update (loss-scaled under AMP; scaler skips inf/nan gradients)."""
        if self.scaler is None:
            loss.backward()
            optimizer.step()
        else:
            scaled = self.scaler.scale(loss)
            scaled.backward()
            self.scaler.minimize(optimizer, scaled)
        optimizer.clear_grad()

    def state_dict(self) -> dict:
        return self.scaler.state_dict() if self.scaler is not None else {}

    def load_state_dict(self, state: Optional[dict]) -> None:
        if self.scaler is not None and state:
            self.scaler.load_state_dict(state)
