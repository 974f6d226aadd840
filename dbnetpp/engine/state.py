"""Training position saved in ``.states`` and restored by ``Global.checkpoints``.

PaddleOCR's ``.states`` pickle holds ``best_model_dict``, ``epoch`` (the last
*completed* epoch; training resumes at ``epoch + 1``) and ``global_step``.  We
keep those names and meanings and add what an exact resume needs:

- ``iter_in_epoch``: iterations already done in epoch ``epoch + 1`` (a stop in
  the middle of an epoch); those batches are skipped on resume without loading
- ``steps_per_epoch``, ``world_size``: to detect a resume with another set-up
- ``lr_last_epoch``: position of the learning-rate schedule
- ``rng``: Python / NumPy / Paddle generator states
- ``amp_scaler``: dynamic loss-scaling state

Checkpoints in the output folder: :data:`LATEST` (end of each epoch, a graceful
stop, a data error), :data:`BEST` (best evaluation) and ``iter_epoch_N``
(:func:`epoch_checkpoint`, every ``save_epoch_step`` epochs).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterator, List, Optional

from ..metrics.samples import METRIC_KEYS

LATEST = "latest"
BEST = "best_accuracy"


def epoch_checkpoint(epoch: int) -> str:
    """Name of the checkpoint saved after ``epoch`` (``save_epoch_step``)."""
    return f"iter_epoch_{epoch}"


@dataclass
class TrainState:
    epoch: int = 0  # last completed epoch
    iter_in_epoch: int = 0  # iterations done in epoch + 1
    global_step: int = 0
    best: Dict[str, Any] = field(default_factory=dict)

    def to_states(self, **extra: Any) -> Dict[str, Any]:
        states = {"best_model_dict": dict(self.best), "epoch": self.epoch, "global_step": self.global_step,
                  "iter_in_epoch": self.iter_in_epoch}
        states.update(extra)
        return states

    def record_eval(self, metrics: Dict[str, Any], main_indicator: str, epoch: int) -> bool:
        """Keep ``metrics`` as the best result when its ``main_indicator`` is at least the best so far
        (a tie counts: the later weights are kept); returns whether it did."""
        improved = metrics[main_indicator] >= self.best.get(main_indicator, 0.0)
        if improved:
            self.best.update({k: metrics[k] for k in METRIC_KEYS if k in metrics})
            self.best.update(best_epoch=epoch, best_step=self.global_step)
        return improved

    def summary(self, save_dir: str, last_eval: Optional[Dict[str, Any]]) -> Dict[str, Any]:
        """Best precision / recall / hmean with where they were reached, steps and epochs done, the
        output folder and (when there was an evaluation) the last result."""
        evaluated = self.best.get("best_step") is not None  # the initial {main_indicator: 0.0} is no result
        out: Dict[str, Any] = {k: self.best.get(k) if evaluated else None for k in METRIC_KEYS}
        out.update(best_epoch=self.best.get("best_epoch"), best_step=self.best.get("best_step"),
                   steps=self.global_step, epochs=self.epoch, save_model_dir=os.path.abspath(save_dir))
        if last_eval is not None:
            out["last"] = {k: last_eval.get(k) for k in METRIC_KEYS}
        return out

    @classmethod
    def from_states(cls, states: Dict[str, Any]) -> "TrainState":
        best = dict(states.get("best_model_dict") or {})
        for k in ("start_epoch", "acc", "is_float16"):  # keys PaddleOCR adds at load time
            best.pop(k, None)
        return cls(epoch=int(states.get("epoch", 0)), iter_in_epoch=int(states.get("iter_in_epoch", 0) or 0),
                   global_step=int(states.get("global_step", 0) or 0), best=best)


def resume_state(states: Dict[str, Any], steps_per_epoch: int, world_size: int, main_indicator: str,
                 warn: Callable[[str], Any] = print) -> TrainState:
    """Where a run resumes from a checkpoint's ``.states`` with ``steps_per_epoch`` iterations per
    epoch on ``world_size`` ranks.  A stop in the middle of an epoch, written with another set-up,
    resumes at the start of that epoch (with a warning); a completed epoch at the next one."""
    st = TrainState.from_states(states)
    if "global_step" not in states and "epoch" in states:  # older PaddleOCR checkpoints
        st.global_step = int(states["epoch"]) * steps_per_epoch
    # only the step count is known (PaddleOCR's latest): the position is counted in this set-up's epochs
    from_steps = "epoch" not in states and st.global_step > 0
    if from_steps:
        st.epoch, st.iter_in_epoch = divmod(st.global_step, steps_per_epoch)
    st.best = {main_indicator: 0.0, **st.best}
    saved_spe, saved_world = states.get("steps_per_epoch"), states.get("world_size")
    if st.iter_in_epoch and not from_steps and (saved_spe != steps_per_epoch or saved_world != world_size):
        warn(f"checkpoint was written with {saved_spe} iterations/epoch on {saved_world} rank(s), now "
             f"{steps_per_epoch} on {world_size}: resuming at the start of epoch {st.epoch + 1} instead of "
             f"iteration {st.iter_in_epoch}")
        st.iter_in_epoch = 0
    if st.iter_in_epoch >= steps_per_epoch:
        st.epoch, st.iter_in_epoch = st.epoch + 1, 0
    return st


class SkipFirstBatches:
    """Batch-sampler wrapper that drops the first ``skip`` batches of its next pass only.

    Resuming in the middle of an epoch skips the batches already trained on
    without loading them; later passes are untouched.
    """

    def __init__(self, batch_sampler, skip: int):
        self.inner = batch_sampler
        self.skip = int(skip)

    def __iter__(self) -> Iterator[List[Any]]:
        skip, self.skip = self.skip, 0
        for i, batch in enumerate(self.inner):
            if i >= skip:
                yield batch

    def __len__(self) -> int:
        return len(self.inner)

    def __getattr__(self, name: str):
        return getattr(self.inner, name)


def batch_locations(loader, epoch: int, iteration: int) -> List[str]:
    """``label_file:line`` of the samples of ``iteration`` in ``epoch`` on this rank, if the loader tells."""
    sampler = getattr(loader, "batch_sampler", None)
    dataset = getattr(loader, "dataset", None)
    local_indices = getattr(sampler, "local_indices", None)
    location = getattr(dataset, "location", None)
    bs = getattr(sampler, "batch_size", None)
    if not (callable(local_indices) and callable(location) and bs):
        return []
    indices = local_indices(epoch)[iteration * bs:(iteration + 1) * bs]
    return [f"{f}:{line}" for f, line in (location(i) for i in indices)]


def set_sampler_epoch(loader, epoch: int) -> Optional[int]:
    sampler = getattr(loader, "batch_sampler", None)
    if sampler is not None and hasattr(sampler, "set_epoch"):
        sampler.set_epoch(epoch)
        return epoch
    return None
