"""Learning-rate schedules under PaddleOCR's ``Optimizer.lr`` names and keys.

Every schedule is stepped once per training iteration (global step ``t``) and
computes its rate in closed form from ``t`` alone, so resuming only needs ``t``.
``epochs`` and ``step_each_epoch`` are injected by :func:`build_lr_scheduler`
(``Global.epoch_num`` and the loader length), as PaddleOCR does: a YAML
``Optimizer.lr.epochs`` is overridden.

Warm-up (``warmup_epoch``, possibly fractional) follows PaddleOCR's
``LinearWarmup`` wrapping: for ``t < W`` (``W = round(warmup_epoch * step_each_epoch)``)

    lr(t) = warmup_start_lr + (lr_0 - warmup_start_lr) * t / W

and afterwards the decay runs on ``t - W``, its length unchanged (so the decay
is not finished by the last step when warm-up is used, as upstream).

Decays (``T = epochs * step_each_epoch``, ``s = min(t, T)``):

- ``Const``:               ``lr_0``
- ``Cosine``:              ``end_lr + (lr_0 - end_lr) * (1 + cos(pi * s / T)) / 2``
- ``Linear`` / ``Polynomial``, ``DecayLearningRate``:
                           ``(lr_0 - end_lr) * (1 - s / T) ** power + end_lr``
  (``DecayLearningRate`` is DB++'s schedule: power = ``factor`` = 0.9, end_lr 0)
- ``Step``:                ``lr_0 * gamma ** floor(t / (step_size * step_each_epoch))``
- ``Piecewise``:           ``values[i]``, ``i`` = number of boundaries
                           ``decay_epochs[j] * step_each_epoch`` that are ``<= t``
"""
from __future__ import annotations

import math
from typing import List, Optional, Sequence

from paddle.optimizer.lr import LRScheduler

from ..registry import LR_SCHEDULERS


def _positive_int(value, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0 or int(value) != value:
        raise ValueError(f"'{key}' must be a positive integer, got {value!r}")
    return int(value)


def _non_negative(value, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise ValueError(f"'{key}' must be a number >= 0, got {value!r}")
    return float(value)


class WarmupSchedule(LRScheduler):
    """Base class: linear warm-up then ``decay_lr(t - W)``.  Not a YAML name.

    Subclasses set their fields and then call ``super().__init__``; they
    implement :meth:`decay_lr`.  ``state_dict`` holds ``last_epoch`` (the number
    of steps taken) and ``last_lr``; loading recomputes ``last_lr`` from the
    schedule, so an edited schedule takes effect on resume.
    """

    def __init__(self, learning_rate: float, epochs: int, step_each_epoch: int,
                 warmup_epoch: float = 0, warmup_start_lr: float = 0.0, last_epoch: int = -1):
        self.peak_lr = _non_negative(learning_rate, "learning_rate")
        self.epochs = _positive_int(epochs, "epochs")
        self.step_each_epoch = _positive_int(step_each_epoch, "step_each_epoch")
        self.total_steps = self.epochs * self.step_each_epoch
        self.warmup_steps = int(round(_non_negative(warmup_epoch, "warmup_epoch") * self.step_each_epoch))
        self.warmup_start_lr = _non_negative(warmup_start_lr, "warmup_start_lr")
        if isinstance(last_epoch, bool) or not isinstance(last_epoch, int) or last_epoch < -1:
            raise ValueError(f"'last_epoch' must be an integer >= -1, got {last_epoch!r}")
        super().__init__(learning_rate=float(self.peak_lr), last_epoch=last_epoch)

    def decay_lr(self, t: int) -> float:  # pragma: no cover - abstract
        raise NotImplementedError

    def lr_at(self, t: int) -> float:
        """Learning rate used for global step ``t`` (0-based)."""
        if t < self.warmup_steps:
            return self.warmup_start_lr + (self.peak_lr - self.warmup_start_lr) * t / self.warmup_steps
        return float(self.decay_lr(t - self.warmup_steps))

    def get_lr(self) -> float:
        return self.lr_at(max(self.last_epoch, 0))

    def set_state_dict(self, state_dict):
        if "last_epoch" not in state_dict:
            raise RuntimeError("learning-rate state has no 'last_epoch'")
        self.last_epoch = int(state_dict["last_epoch"])
        self.last_lr = self.get_lr()

    set_dict = set_state_dict

    def describe(self) -> str:
        warm = f", warm-up {self.warmup_steps} steps from {self.warmup_start_lr:g}" if self.warmup_steps else ""
        return f"{type(self).__name__}(lr={self.peak_lr:g}, {self.total_steps} steps{warm})"


@LR_SCHEDULERS.register()
class Const(WarmupSchedule):
    """Constant rate (also what an ``lr`` section without ``name`` builds)."""

    def __init__(self, learning_rate: float, epochs: int, step_each_epoch: int, warmup_epoch: float = 0,
                 warmup_start_lr: float = 0.0, last_epoch: int = -1):
        super().__init__(learning_rate, epochs, step_each_epoch, warmup_epoch, warmup_start_lr, last_epoch)

    def decay_lr(self, t: int) -> float:
        return self.peak_lr


@LR_SCHEDULERS.register()
class Cosine(WarmupSchedule):
    """Cosine annealing from ``learning_rate`` to ``end_lr`` over ``epochs * step_each_epoch`` steps."""

    def __init__(self, learning_rate: float, epochs: int, step_each_epoch: int, warmup_epoch: float = 0,
                 end_lr: float = 0.0, warmup_start_lr: float = 0.0, last_epoch: int = -1):
        self.end_lr = _non_negative(end_lr, "end_lr")
        super().__init__(learning_rate, epochs, step_each_epoch, warmup_epoch, warmup_start_lr, last_epoch)

    def decay_lr(self, t: int) -> float:
        s = min(t, self.total_steps)
        return self.end_lr + (self.peak_lr - self.end_lr) * 0.5 * (1.0 + math.cos(math.pi * s / self.total_steps))


class _Polynomial(WarmupSchedule):
    power = 1.0
    end_lr = 0.0

    def decay_lr(self, t: int) -> float:
        s = min(t, self.total_steps)
        return (self.peak_lr - self.end_lr) * (1.0 - s / self.total_steps) ** self.power + self.end_lr


@LR_SCHEDULERS.register(aliases=("Polynomial",))
class Linear(_Polynomial):
    """Polynomial decay (PaddleOCR ``Linear``; power 1 by default) to ``end_lr``."""

    def __init__(self, learning_rate: float, epochs: int, step_each_epoch: int, end_lr: float = 0.0,
                 power: float = 1.0, warmup_epoch: float = 0, warmup_start_lr: float = 0.0, last_epoch: int = -1):
        self.end_lr = _non_negative(end_lr, "end_lr")
        self.power = _non_negative(power, "power")
        super().__init__(learning_rate, epochs, step_each_epoch, warmup_epoch, warmup_start_lr, last_epoch)


@LR_SCHEDULERS.register()
class DecayLearningRate(_Polynomial):
    """DB++'s polynomial decay: ``factor`` is the power (0.9), ``end_lr`` 0.

    ``power`` is accepted as a synonym of ``factor``.  Unlike upstream, a
    non-zero ``end_lr`` is honoured (upstream always decays to 0).
    """

    def __init__(self, learning_rate: float, epochs: int, step_each_epoch: int, factor: Optional[float] = None,
                 power: Optional[float] = None, end_lr: float = 0.0, warmup_epoch: float = 0,
                 warmup_start_lr: float = 0.0, last_epoch: int = -1):
        if factor is not None and power is not None and float(factor) != float(power):
            raise ValueError(f"'factor' ({factor}) and 'power' ({power}) are the same setting; give one")
        chosen = factor if factor is not None else power
        self.power = _non_negative(0.9 if chosen is None else chosen, "factor")
        self.end_lr = _non_negative(end_lr, "end_lr")
        super().__init__(learning_rate, epochs, step_each_epoch, warmup_epoch, warmup_start_lr, last_epoch)


@LR_SCHEDULERS.register()
class Step(WarmupSchedule):
    """Multiply by ``gamma`` every ``step_size`` epochs."""

    def __init__(self, learning_rate: float, epochs: int, step_each_epoch: int, step_size: float,
                 gamma: float = 0.1, warmup_epoch: float = 0, warmup_start_lr: float = 0.0, last_epoch: int = -1):
        self.gamma = _non_negative(gamma, "gamma")
        step_each = _positive_int(step_each_epoch, "step_each_epoch")
        self.step_size_steps = max(1, int(round(_non_negative(step_size, "step_size") * step_each)))
        super().__init__(learning_rate, epochs, step_each_epoch, warmup_epoch, warmup_start_lr, last_epoch)

    def decay_lr(self, t: int) -> float:
        return self.peak_lr * self.gamma ** (t // self.step_size_steps)


@LR_SCHEDULERS.register()
class Piecewise(WarmupSchedule):
    """``values[i]`` between epoch boundaries ``decay_epochs``; warm-up goes to ``values[0]``.

    ``learning_rate``, when given, must equal ``values[0]`` (upstream ignores it).
    """

    def __init__(self, decay_epochs: Sequence[float], values: Sequence[float], epochs: int, step_each_epoch: int,
                 learning_rate: Optional[float] = None, warmup_epoch: float = 0, warmup_start_lr: float = 0.0,
                 last_epoch: int = -1):
        if not isinstance(decay_epochs, (list, tuple)) or not isinstance(values, (list, tuple)):
            raise ValueError("'decay_epochs' and 'values' must be lists")
        if len(values) != len(decay_epochs) + 1:
            raise ValueError(f"'values' needs one more entry than 'decay_epochs' "
                             f"(got {len(values)} values for {len(decay_epochs)} boundaries)")
        if list(decay_epochs) != sorted(decay_epochs):
            raise ValueError(f"'decay_epochs' must be increasing, got {list(decay_epochs)}")
        self.values: List[float] = [_non_negative(v, "values") for v in values]
        step_each = _positive_int(step_each_epoch, "step_each_epoch")
        self.boundaries = [int(round(_non_negative(e, "decay_epochs") * step_each)) for e in decay_epochs]
        if learning_rate is not None and float(learning_rate) != self.values[0]:
            raise ValueError(f"'learning_rate' ({learning_rate}) differs from values[0] ({self.values[0]}); "
                             f"Piecewise starts at values[0], drop 'learning_rate' or make them equal")
        super().__init__(self.values[0], epochs, step_each_epoch, warmup_epoch, warmup_start_lr, last_epoch)

    def decay_lr(self, t: int) -> float:
        i = sum(1 for b in self.boundaries if t >= b)
        return self.values[i]
