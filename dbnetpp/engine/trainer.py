"""The training loop behind ``tools/train.py`` (PaddleOCR ``tools/program.py:train`` semantics).

Per iteration: forward under optional AMP, DB loss, non-finite loss check,
backward, non-finite gradient check, optimizer update, one learning-rate
schedule step; how the step ended is a :class:`~dbnetpp.engine.guard.StepOutcome`,
and steps without an update are counted and reported by
:class:`~dbnetpp.engine.guard.Faults`.  Every
``print_batch_step`` global steps rank 0 logs smoothed losses, costs, ips and
ETA.  Evaluation runs on all ranks (each on its shard of the Eval set, with
rank 0's BatchNorm statistics; the evaluation of ``tools/eval.py``, counts
all-reduced) when ``global_step > start and (global_step - start) % every == 0``
for ``Global.eval_batch_step = [start, every]``; the best result by the metric's
``main_indicator`` is saved as ``best_accuracy`` (with ``Global.use_ema``, the moving
average of the weights is what is evaluated and saved there: :mod:`~dbnetpp.engine.ema`).  ``latest`` is saved at the
end of each epoch (and on a graceful stop), ``iter_epoch_N`` every
``save_epoch_step`` epochs; only rank 0 writes files.
"""
from __future__ import annotations

import contextlib
import dataclasses
import math
import os
from typing import Any, Dict, Optional

import paddle

from .. import dist as D
from ..checkpoint import load_checkpoint, save_checkpoint
from ..data import num_samples
from ..data.loader import SKIPPED_KEY
from ..errors import ConfigError, DataError, LoaderError
from ..evaluation import EvaluationInterrupted, evaluate_in_training
from ..global_schema import with_defaults
from ..output_lock import OutputLock, lock_output
from .amp import Amp, grad_norm
from .build import (build_parts, eval_schedule, forward_state, log_header, prepare_output, start_weights,
                    to_static_model)
from .checks import check_output_dir, check_train_config
from .ema import WeightAverage
from .guard import (Faults, NonFiniteLossError, NonFiniteWeightsError, StepKind, StepOutcome, StopFlag,
                    TrainingInterrupted, batch_paths, batches_until_stop, non_finite_input, non_finite_parameters)
from .logger import MetricsWriter, SmoothedStats, StepTimes, VisualDLWriter, format_metrics, train_line
from .optim import build_optimizer
from .plot import plot_metrics
from .rng import capture_rng, restore_rng, seed_everything
from .state import (BEST, LATEST, SkipFirstBatches, TrainState, batch_locations, epoch_checkpoint, resume_state,
                    set_sampler_epoch)


class Trainer:
    """Builds everything from a validated config (see :func:`dbnetpp.config.load_config`) and trains."""

    def __init__(self, cfg: Dict[str, Any]):
        check_train_config(cfg)
        self.cfg = cfg
        g = self.g = with_defaults(cfg.get("Global"))
        self.env = D.setup(bool(g["use_gpu"]), log=print)
        self.main = self.env.is_main
        self.save_dir = str(g["save_model_dir"])
        self.epochs = int(g["epoch_num"])
        cfg.setdefault("Global", {})["distributed"] = self.env.distributed
        seed_everything(int(g["seed"]) + self.env.rank, bool(g["deterministic"]))
        paddle.seed(int(g["seed"]))  # identical initial weights on every rank
        self._lock: Optional[OutputLock] = None
        try:
            self._build()
        except ConfigError as exc:  # name the config file in errors found while building
            self._release()
            raise exc.with_context(file=exc.file or cfg.get("__file__")) from None
        except BaseException:
            self._release()
            raise

    def _release(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    # ------------------------------------------------------------------ build
    def _build(self) -> None:
        """The parts (see :mod:`~dbnetpp.engine.build`) before any output is written, then the output folder,
        optimizer and schedule, AMP, the weights to start from, data parallelism and the log writers."""
        cfg, g, env = self.cfg, self.g, self.env
        parts = build_parts(cfg, env, int(g["seed"]), g["bad_sample_policy"])
        self.train_loader, self.eval_loader, self.model = parts.train_loader, parts.eval_loader, parts.model
        self.loss_fn, self.post_process, self.metric = parts.loss_fn, parts.post_process, parts.metric
        self.main_indicator, self.steps_per_epoch = parts.main_indicator, len(parts.train_loader)
        if env.is_main:  # one run per output folder; the earlier-run check again, now that no other run can start
            self._lock = lock_output(self.save_dir, "training", key="Global.save_model_dir")
            check_output_dir(g)
        self.log = prepare_output(cfg, self.save_dir, env)
        if self._lock is not None and self._lock.stale:
            self.log.warning(f"took over the lock of {self.save_dir} left by {self._lock.stale}, which is no "
                             f"longer running")
        log_header(self.log, cfg, g, env, self.save_dir)

        self.optimizer, self.scheduler = build_optimizer(cfg["Optimizer"], self.model, self.steps_per_epoch,
                                                         self.epochs, log=self.log.info)
        self.amp = Amp(g, env.device, warn=self.log.warning)
        self.model, self.optimizer = self.amp.decorate(self.model, self.optimizer)
        self._running_stats, self._trainable, self._trainable_names = forward_state(self.model)
        self.state = TrainState(best={self.main_indicator: 0.0})
        resume = g.get("checkpoints")
        states = self._resume(str(resume)) if resume else start_weights(self.model, g.get("pretrained_model"), self.log)
        self.ema = self._weight_average(states if resume else None)
        if g["to_static"]:
            self.model = to_static_model(self.model, self.log)
        if env.distributed:
            self.model = paddle.DataParallel(self.model)

        self.metrics_out = MetricsWriter(os.path.join(self.save_dir, "metrics.jsonl") if self.main else None,
                                         self.state.global_step if resume else None)
        self.vdl = VisualDLWriter(bool(g["use_visualdl"]) and self.main,
                                  g.get("log_dir") or os.path.join(self.save_dir, "vdl"), self.log)
        self.faults = Faults(int(g["max_bad_steps"]), self.log, self.metrics_out, save_dir=self.save_dir,
                             main=self.main, distributed=env.distributed)
        self.stats = SmoothedStats(int(g["log_smooth_window"]))
        self._schedule = eval_schedule(g, self.eval_loader is not None)
        self.last_eval: Optional[Dict[str, Any]] = None
        self.last_eval_step = -1

    # ------------------------------------------------------------------ resume / save
    def _resume(self, ckpt: str) -> Dict[str, Any]:
        """Weights, optimizer, schedule, loss scaler, random generators and position from ``ckpt``
        (``Global.pretrained_model`` is not loaded then: the checkpoint holds the weights)."""
        pretrained = self.g.get("pretrained_model")
        if pretrained:
            self.log.info(f"Global.checkpoints is set: Global.pretrained_model ({pretrained}) is not loaded")
        states = load_checkpoint(ckpt, self.model, self.optimizer, log=self.log.info,
                                 partial=bool(self.g["allow_partial_resume"])) or {}
        st = self.state = resume_state(states, self.steps_per_epoch, self.env.world_size, self.main_indicator,
                                       warn=self.log.warning)
        self.scheduler.set_state_dict({"last_epoch": int(states.get("lr_last_epoch", st.global_step))})
        self.amp.load_state_dict(states.get("amp_scaler"))
        restore_rng(states.get("rng") or {})
        if st.iter_in_epoch:
            self.train_loader.batch_sampler = SkipFirstBatches(self.train_loader.batch_sampler, st.iter_in_epoch)
        self.log.info(f"resumed from {ckpt}: global step {st.global_step}, epoch {st.epoch + 1} iteration "
                      f"{st.iter_in_epoch}, lr {self.scheduler.last_lr:.6g}, best {st.best}")
        return states

    def _weight_average(self, states: Optional[Dict[str, Any]]) -> Optional[WeightAverage]:
        """``Global.use_ema``: the average of the weights, continued from a resumed checkpoint's ``.states``."""
        if not self.g["use_ema"]:
            return None
        ema = WeightAverage(self.model, float(self.g["ema_decay"]), str(self.g["ema_decay_type"]))
        if states is not None and not ema.load_state(states.get("ema")):
            self.log.warning("Global.use_ema: the checkpoint holds no weight average for this model; the average "
                             "restarts from the resumed weights")
        self.log.info(f"Global.use_ema: evaluations score the moving average of the weights (decay {ema.decay:g}, "
                      f"{ema.kind}); best_accuracy holds it, latest the trained weights")
        return ema

    def _save(self, name: str) -> None:
        """Checkpoint ``name`` in the output folder (rank 0): weights, optimizer, training position."""
        if not self.main:
            return
        st = self.state
        states = st.to_states(steps_per_epoch=self.steps_per_epoch, world_size=self.env.world_size,
                              lr_last_epoch=self.scheduler.last_epoch, rng=capture_rng(),
                              amp_scaler=self.amp.state_dict(), **({"ema": self.ema.state()} if self.ema else {}))
        prefix = os.path.join(self.save_dir, name)
        save_checkpoint(prefix, D.unwrap(self.model), self.optimizer, states)
        self.log.info(f"saved {prefix} (global step {st.global_step})")
        if name == LATEST:
            self._latest_step = st.global_step

    # ------------------------------------------------------------------ the loop
    def train(self) -> Dict[str, Any]:
        """Run the training; returns the summary printed by ``tools/train.py``."""
        try:
            self._latest_step = self.state.global_step  # what a resume from Global.checkpoints starts at
            # fresh name scope for the optimizer accumulators created at the first step, so that their names
            # match the restored optimizer state even when this process trained before
            with StopFlag(log=self.log.warning) as stop, paddle.utils.unique_name.guard():
                self._loop(stop)
        except (DataError, LoaderError) as exc:  # a bad sample (policy fail) or a batch the loader cannot make
            if self.state.global_step != self._latest_step:
                self._save(LATEST)  # the steps done so far are not lost
            self.faults.stopped(exc, self.state.global_step)
            raise
        except NonFiniteLossError as exc:
            self.faults.stopped(exc, self.state.global_step)
            raise
        finally:
            self._finish_outputs()
            self._release()
        return self.summary()

    def _loop(self, stop: StopFlag) -> None:
        st, plan = self.state, self._plan_steps()
        print_every = int(self.g["print_batch_step"])
        self.model.train()
        self.times = StepTimes()
        for epoch in range(st.epoch + 1, self.epochs + 1):
            if st.global_step >= plan:
                break
            set_sampler_epoch(self.train_loader, epoch)
            self.times.start()
            for batch in batches_until_stop(self.train_loader, stop, warn=self.log.warning):
                self.times.loaded()
                lr = self.optimizer.get_lr()  # the rate this step uses
                samples = num_samples(batch)
                self.faults.batch_loaded(batch.get(SKIPPED_KEY) or [], samples)
                outcome = self._step(batch, stop, epoch, st.iter_in_epoch)
                st.iter_in_epoch += 1
                self.times.stepped(samples)
                if outcome.updated:
                    self.stats.update(outcome.losses)
                last_of_epoch, stop_now = st.iter_in_epoch >= self.steps_per_epoch, outcome.stop
                if st.global_step % print_every == 0 or last_of_epoch or st.global_step >= plan or stop_now:
                    self._log_train(epoch, lr, plan)
                if self._schedule and self._schedule.due(st.global_step):
                    stop_now = self._evaluate(epoch, stop) is None or stop_now
                    self.model.train()
                if stop_now:
                    self._save_latest_and_stop(stop, epoch)
                if st.global_step >= plan and not last_of_epoch:
                    break
                self.times.start()
            if stop.requested and st.iter_in_epoch < self.steps_per_epoch:
                self._save_latest_and_stop(stop, epoch)  # data loading ended early because of the signal
            self._end_epoch(epoch)
        if self.eval_loader is not None and self.g["eval_at_end"] and self.last_eval_step != st.global_step:
            if self._evaluate(st.epoch if st.iter_in_epoch == 0 else st.epoch + 1, stop) is None:
                self._stop_saved(stop)  # 'latest' was saved at the end of the last epoch
        D.barrier(self.env.distributed)

    def _plan_steps(self) -> int:
        """Global steps this run ends at (``max_steps`` caps the epochs); logs the plan."""
        total = self.epochs * self.steps_per_epoch
        max_steps = self.g.get("max_steps")
        if self._schedule:
            self.log.info(f"evaluation after global step {self._schedule.start}, every {self._schedule.every} steps "
                          f"(global steps count all {self.env.world_size} rank(s) together)")
        elif self.g.get("eval_batch_step") is not None and self.eval_loader is None:
            self.log.warning("Global.eval_batch_step is set but the config has no Eval section: no evaluation, no "
                             "best_accuracy (the final line's precision / recall / hmean are null)")
        bs = (self.cfg["Train"].get("loader") or {}).get("batch_size_per_card", 1)
        self.log.info(f"{self.steps_per_epoch} iterations/epoch, {self.epochs} epochs, total batch "
                      f"{bs} x {self.env.world_size}; lr {self.scheduler.describe()}; AMP {self.amp.describe()}")
        return min(total, int(max_steps)) if max_steps else total

    def _log_train(self, epoch: int, lr: float, plan: int) -> None:
        step = self.state.global_step
        samples = D.all_reduce_sum([self.times.samples], self.env.distributed)[0]
        cost = self.times.report(samples, plan - step)
        means = {"lr": lr, **self.stats.means()}
        self.log.info(train_line(epoch, self.epochs, step, lr, self.stats.format(), cost))
        self.metrics_out.write("train", epoch=epoch, global_step=step, **means,
                               **{k: v for k, v in cost.items() if k != "avg_samples"})
        self.vdl.scalars("TRAIN", means, step)

    def _end_epoch(self, epoch: int) -> None:
        """Skipped samples reported, ``latest`` saved, ``iter_epoch_N`` every ``save_epoch_step`` epochs."""
        st = self.state
        finished = st.iter_in_epoch >= self.steps_per_epoch
        if finished:
            st.epoch, st.iter_in_epoch = epoch, 0
        self.faults.end_epoch(epoch, st.global_step)
        self._save(LATEST)
        if finished and epoch % int(self.g["save_epoch_step"]) == 0:
            self._save(epoch_checkpoint(epoch))

    def _save_latest_and_stop(self, stop: StopFlag, epoch: int) -> None:
        """Stop on a signal in the middle of ``epoch``: its skipped samples reported, ``latest`` saved, then
        :meth:`_stop_saved`."""
        self.faults.end_epoch(epoch, self.state.global_step, check=False)
        self._save(LATEST)
        self._stop_saved(stop)

    def _stop_saved(self, stop: StopFlag) -> None:
        """Stop on a signal with ``latest`` already saved: a ``stop`` event, :class:`TrainingInterrupted` on
        every rank."""
        signum = stop.signum or 15  # another rank was signalled
        self.metrics_out.write("stop", reason="signal", signal=signum, global_step=self.state.global_step)
        D.barrier(self.env.distributed)
        raise TrainingInterrupted(signum)

    # ------------------------------------------------------------------ one step
    def _step(self, batch, stop: StopFlag, epoch: int, iteration: int) -> StepOutcome:
        """One iteration on every rank.  A step without an update restores the BatchNorm running
        statistics (the forward pass changed them); the step counts and the schedule advances either way."""
        saved = [(b, b.clone()) for b in self._running_stats]
        outcome = self._forward_backward(batch, stop)
        if not outcome.updated:
            self.optimizer.clear_grad()  # all ranks skip the update together, so no gradient sync is pending
            with paddle.no_grad():
                for buf, value in saved:
                    buf.set_value(value)
        elif self.ema is not None:
            self.ema.update(D.unwrap(self.model))
        samples = (batch_paths(batch) or batch_locations(self.train_loader, epoch, iteration)) if outcome.bad else ()
        self.faults.record(outcome, epoch=epoch, step=self.state.global_step + 1, samples=samples,
                           reasons=batch.get(SKIPPED_KEY) or ())
        self.scheduler.step()
        self.state.global_step += 1
        return outcome

    def _forward_backward(self, batch, stop: StopFlag) -> StepOutcome:
        """Forward pass and loss on every rank; backward pass and update only when no rank's loss is
        non-finite and no rank's batch is empty."""
        losses = self._forward_loss(batch)
        values = {k: float(v) for k, v in losses.items()} if losses is not None else {}
        own_bad = any(not math.isfinite(v) for v in values.values())
        flags = D.all_reduce_sum([float(own_bad), float(stop.requested), float(losses is None)], self.env.distributed)
        any_bad, any_stop, any_empty = (v > 0 for v in flags)
        if any_bad:
            return StepOutcome(StepKind.NON_FINITE_LOSS, values, local=own_bad, stop=any_stop)
        if any_empty:
            return StepOutcome(StepKind.EMPTY_BATCH, values, stop=any_stop)
        outcome = self._backward_and_step(losses["loss"])
        local = outcome.kind is not StepKind.NON_FINITE_GRADIENT or non_finite_input(batch, self.env.distributed)
        return dataclasses.replace(outcome, losses=values, local=local, stop=any_stop)

    def _forward_loss(self, batch) -> Optional[Dict[str, paddle.Tensor]]:
        if num_samples(batch) == 0 or batch.get("image") is None:
            return None
        with self.amp.autocast():
            preds = self.model(batch["image"])
        if self.amp.enabled:
            preds = {k: v.astype("float32") for k, v in preds.items()}
        return self.loss_fn(preds, batch)

    def _backward_and_step(self, loss: paddle.Tensor) -> StepOutcome:
        """Backward pass and update: ``UPDATED``; otherwise no update was made and the outcome says why:
        ``NON_FINITE_GRADIENT`` with the (non-finite) global gradient norm, or under AMP what the loss
        scaler found (:meth:`StepOutcome.after_amp`).

        Under ``paddle.DataParallel`` the backward pass all-reduces the gradients, and a NaN/inf on
        one rank makes the sum non-finite on every rank: all ranks see the same norm and skip
        together without another collective.
        """
        if self.amp.enabled:
            outcome = StepOutcome.after_amp(self.amp.backward_and_step(loss, self.optimizer, self._trainable))
        else:
            loss.backward()
            norm = grad_norm(self._trainable)  # one fused norm over all gradients (a few ms for DBNet++ MobileNetV3 on CPU)
            if not math.isfinite(norm):
                return StepOutcome(StepKind.NON_FINITE_GRADIENT, grad_norm=norm)
            self.optimizer.step()
            self.optimizer.clear_grad()
            outcome = StepOutcome(StepKind.UPDATED)
        if outcome.updated:
            self._check_weights()
        return outcome

    def _check_weights(self) -> None:
        """After an update: parameters holding NaN / infinity stop the run at once (every rank made the same
        update, so every rank stops), before those weights reach a checkpoint."""
        bad = non_finite_parameters(list(zip(self._trainable_names, self._trainable)))
        if bad:
            lr = self.optimizer.get_lr()
            raise NonFiniteWeightsError(
                f"global step {self.state.global_step + 1}: the update left {len(bad)} parameter(s) holding NaN or "
                f"infinity ({', '.join(bad[:6])}{' ...' if len(bad) > 6 else ''}) at learning rate {lr:.6g}; "
                f"training stopped and nothing was saved from these weights (latest, if any, is from global step "
                f"{self._latest_step}). Lower Optimizer.lr.learning_rate or add Optimizer.clip_norm_global")

    # ------------------------------------------------------------------ evaluation
    def _evaluate(self, epoch: int, stop: StopFlag) -> Optional[Dict[str, Any]]:
        """Evaluate, keep ``best_accuracy``; ``None`` when a signal stopped the evaluation."""
        st = self.state
        self.log.info(f"evaluating at global step {st.global_step} "
                      f"({getattr(self.eval_loader.dataset, 'num_samples', '?')} images)")
        averaged = self.ema.applied(D.unwrap(self.model)) if self.ema else contextlib.nullcontext()
        with averaged:  # Global.use_ema: the average is scored and saved as best_accuracy
            cur = self._score(stop)
            if cur is None:
                return None
            improved = st.record_eval(cur, self.main_indicator, epoch)
            if improved:
                self._save(BEST)
        self.log.info("best metric, " + format_metrics(st.best))
        self.metrics_out.write("eval", epoch=epoch, global_step=st.global_step, improved=improved,
                               **{f"best_{self.main_indicator}": st.best.get(self.main_indicator)}, **cur)
        self.vdl.scalars("EVAL", cur, st.global_step)
        return cur

    def _score(self, stop: StopFlag) -> Optional[Dict[str, Any]]:
        """The metrics of the model's current weights on the Eval set; ``None`` when a signal stopped it."""
        D.sync_buffers(self.model, self.env.distributed)  # every shard scores the weights rank 0 saves
        try:
            cur = evaluate_in_training(self.model, self.eval_loader, self.post_process, self.metric, self.env,
                                       autocast=self.amp.autocast, should_stop=lambda: stop.requested,
                                       warn=self.log.warning)
        except EvaluationInterrupted:
            self.log.warning(f"evaluation at global step {self.state.global_step} stopped by the signal")
            return None
        self.last_eval, self.last_eval_step = cur, self.state.global_step
        self.log.info("cur metric, " + format_metrics(cur))
        return cur

    # ------------------------------------------------------------------ end
    def _finish_outputs(self) -> None:
        self.faults.finish(self.amp.loss_scale() if self.amp.enabled else None)
        self.vdl.close()
        self.metrics_out.close()
        if self.main:
            path = os.path.join(self.save_dir, "metrics.jsonl")
            try:
                if os.path.isfile(path):
                    self.log.info(f"curves: {plot_metrics(path)}")
            except (OSError, ValueError) as exc:
                self.log.warning(f"could not plot {path}: {exc}")

    def summary(self) -> Dict[str, Any]:
        """What ``tools/train.py`` prints last: :meth:`TrainState.summary` and the fault counts."""
        return {**self.state.summary(self.save_dir, self.last_eval), **self.faults.summary(self.amp.enabled)}


__all__ = ["Trainer", "check_train_config"]
