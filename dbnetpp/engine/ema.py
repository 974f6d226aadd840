"""``Global.use_ema``: an exponential moving average of the weights, evaluated and kept as ``best_accuracy``.

After every update ``avg = d * avg + (1 - d) * w`` for every float entry of the model's state dict (the
parameters and the BatchNorm statistics), the average starting from the weights the training starts
from.  ``d`` follows ``Global.ema_decay_type`` (PaddleOCR's keys and PaddleDetection's ``ModelEMA`` rules):

- ``threshold`` (default): ``min(ema_decay, (1 + n) / (10 + n))`` after ``n`` earlier updates, so the
  first updates forget the start quickly (TensorFlow's ``ExponentialMovingAverage`` with ``num_updates``);
- ``exponential``: ``ema_decay * (1 - exp(-(n + 1) / 2000))``;
- ``normal``: ``ema_decay`` throughout.

Unlike PaddleDetection's, the average starts from the weights rather than from zeros, so no bias
correction is needed.  Evaluations score the average (:meth:`WeightAverage.applied`); ``latest`` holds the
trained weights and the average in its ``.states``, so a resume continues both.
"""
from __future__ import annotations

import contextlib
import math
from typing import Any, Dict, Iterator, Mapping, Optional

import numpy as np
import paddle

from .amp import FLOAT_DTYPES

DECAY_TYPES = ("threshold", "exponential", "normal")
_GAMMA = 2000  # steps of the exponential warm-up


def decay_at(decay: float, kind: str, updates: int) -> float:
    """The decay of the update that follows ``updates`` earlier ones."""
    if kind == "threshold":
        return min(decay, (1.0 + updates) / (10.0 + updates))
    if kind == "exponential":
        return decay * (1.0 - math.exp(-(updates + 1) / _GAMMA))
    return decay


class WeightAverage:
    """The moving average of ``model``'s float state-dict entries (the model unwrapped from DataParallel)."""

    def __init__(self, model: paddle.nn.Layer, decay: float, kind: str = "threshold"):
        if kind not in DECAY_TYPES:
            raise ValueError(f"ema_decay_type must be one of {', '.join(DECAY_TYPES)}, got {kind!r}")
        if not 0.0 < decay < 1.0:
            raise ValueError(f"ema_decay must be in (0, 1), got {decay!r}")
        self.decay, self.kind, self.updates = float(decay), kind, 0
        self.shadow: Dict[str, paddle.Tensor] = {}
        self.reset(model)

    def reset(self, model: paddle.nn.Layer) -> None:
        """Start the average from ``model``'s current weights."""
        self.updates = 0
        with paddle.no_grad():
            self.shadow = {k: v.detach().clone() for k, v in model.state_dict().items() if v.dtype in FLOAT_DTYPES}

    def update(self, model: paddle.nn.Layer) -> None:
        d = decay_at(self.decay, self.kind, self.updates)
        with paddle.no_grad():
            current = model.state_dict()
            for k, avg in self.shadow.items():
                avg.set_value(avg * d + current[k].detach() * (1.0 - d))
        self.updates += 1

    @contextlib.contextmanager
    def applied(self, model: paddle.nn.Layer) -> Iterator[None]:
        """``model`` holds the average inside the block and its own weights again after it."""
        with paddle.no_grad():
            current = model.state_dict()
            own = {k: current[k].detach().clone() for k in self.shadow}
            for k, avg in self.shadow.items():
                current[k].set_value(avg)
        try:
            yield
        finally:
            with paddle.no_grad():
                for k, value in own.items():
                    current[k].set_value(value)

    def state(self) -> Dict[str, Any]:
        """What ``.states`` keeps: the settings, the update count and the average as NumPy arrays."""
        return {"decay": self.decay, "type": self.kind, "updates": self.updates,
                "weights": {k: v.numpy() for k, v in self.shadow.items()}}

    def load_state(self, state: Optional[Mapping[str, Any]]) -> bool:
        """Continue the average of a checkpoint's ``.states``; False (the average restarts from the current
        weights) when it has none or it does not fit the model."""
        weights = (state or {}).get("weights")
        if not isinstance(weights, Mapping) or set(weights) != set(self.shadow) or any(
                tuple(np.shape(weights[k])) != tuple(self.shadow[k].shape) for k in self.shadow):
            return False
        with paddle.no_grad():
            for k, avg in self.shadow.items():
                avg.set_value(np.asarray(weights[k], dtype=avg.numpy().dtype))
        self.updates = int(state.get("updates", 0))
        return True


__all__ = ["DECAY_TYPES", "WeightAverage", "decay_at"]
