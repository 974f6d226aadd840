"""The training loop behind ``tools/train.py`` (PaddleOCR ``tools/program.py:train`` semantics).

Per iteration: forward under optional AMP, DB loss, non-finite loss check,
backward, non-finite gradient check, optimizer update, one learning-rate
schedule step.  Every
``print_batch_step`` global steps rank 0 logs smoothed losses, costs, ips and
ETA.  Evaluation runs on all ranks (each on its shard of the Eval set) when
``global_step > start and (global_step - start) % every == 0`` for
``Global.eval_batch_step = [start, every]``; the best result by the metric's
``main_indicator`` is saved as ``best_accuracy``.  ``latest`` is saved at the
end of each epoch (and on a graceful stop), ``iter_epoch_N`` every
``save_epoch_step`` epochs; only rank 0 writes files.
"""
from __future__ import annotations

import datetime
import math
import os
import time
from typing import Any, Dict, Mapping, Optional

import paddle

from ..checkpoint import load_checkpoint, load_pretrained, save_checkpoint
from ..config import save_config
from ..data import build_dataloader, num_samples
from ..data.loader import SKIPPED_KEY
from ..errors import ConfigError, DataError, LoaderError
from ..modeling import build_model
from ..registry import LOSSES, METRICS, POSTPROCESSES
from . import dist as D
from .amp import Amp, AmpOverflow, grad_norm
from .checks import DEFAULTS, check_train_config
from .evaluate import EvaluationInterrupted, run_evaluation
from .guard import BadStepGuard, NonFiniteLossError, StopFlag, TrainingInterrupted, batch_paths
from .logger import MetricsWriter, SmoothedStats, VisualDLWriter, get_logger
from .optim import build_optimizer
from .plot import plot_metrics
from .rng import capture_rng, restore_rng, seed_everything
from .state import SkipFirstBatches, TrainState, batch_locations, set_sampler_epoch

_FLOAT_DTYPES = (paddle.float32, paddle.float16, paddle.bfloat16, paddle.float64)


def _fmt_metrics(d: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}: {round(v, 6) if isinstance(v, float) else v}" for k, v in d.items())


class Trainer:
    """Builds everything from a validated config (see :func:`dbnetpp.config.load_config`) and trains."""

    def __init__(self, cfg: Dict[str, Any]):
        check_train_config(cfg)
        self.cfg = cfg
        g = self.g = {**DEFAULTS, **{k: v for k, v in (cfg.get("Global") or {}).items() if v is not None}}
        self.env = D.setup(bool(g.get("use_gpu", False)), log=print)
        self.main = self.env.is_main
        self.save_dir = str(g["save_model_dir"])
        self.epochs = int(g["epoch_num"])
        self.deterministic = bool(g.get("deterministic", False))
        cfg.setdefault("Global", {})["distributed"] = self.env.distributed
        seed = int(g["seed"])
        seed_everything(seed + self.env.rank, self.deterministic)
        paddle.seed(seed)  # identical initial weights on every rank
        try:
            self._build_modules(seed)  # before any output is written: most config errors surface here
            self._prepare_output()
            self._log_header()
            self._build_training()
        except ConfigError as exc:  # name the config file in errors found while building
            raise exc.with_context(file=exc.file or cfg.get("__file__")) from None

    def _prepare_output(self) -> None:
        """Output folder, ``train.log`` and ``config.yml`` (rank 0); an unwritable folder is a config error."""
        try:
            if self.main:
                os.makedirs(self.save_dir, exist_ok=True)
            self.log = get_logger(self.save_dir if self.main else None, self.env.rank)
            if self.main:
                save_config(self.cfg, os.path.join(self.save_dir, "config.yml"))
        except OSError as exc:
            raise ConfigError(f"cannot write the output folder {os.path.abspath(self.save_dir)}: "
                              f"{exc.strerror or exc}", key="Global.save_model_dir",
                              file=self.cfg.get("__file__")) from None

    def _build_modules(self, seed: int) -> None:
        """Data loaders, model, loss, post-process and metric."""
        cfg, g = self.cfg, self.g
        policy = g["bad_sample_policy"]
        self.train_loader = build_dataloader(cfg, "Train", rank=self.env.rank, world_size=self.env.world_size,
                                             seed=seed, policy=policy)
        self.steps_per_epoch = len(self.train_loader)
        if self.steps_per_epoch == 0:
            raise ConfigError("the Train set yields no batch (fewer samples than batch_size_per_card with "
                              "drop_last?)", key="Train.loader", file=cfg.get("__file__"))
        self.eval_loader = None
        if cfg.get("Eval") is not None:
            self.eval_loader = build_dataloader(cfg, "Eval", rank=self.env.rank, world_size=self.env.world_size,
                                                seed=seed, policy=policy)

        # a fresh name scope: parameter (and so optimizer-state) names do not depend on what this process
        # built before, which keeps .pdopt files loadable
        with paddle.utils.unique_name.guard():
            self.model = build_model(cfg["Architecture"])
        self.loss_fn = LOSSES.build(cfg["Loss"], where="Loss")
        self.post_process = POSTPROCESSES.build(cfg["PostProcess"], where="PostProcess") \
            if cfg.get("PostProcess") else None
        self.metric = METRICS.build(cfg["Metric"], where="Metric") if cfg.get("Metric") else None
        self.main_indicator = getattr(self.metric, "main_indicator", "hmean")

    def _build_training(self) -> None:
        """Optimizer and schedule, AMP, weights (resume / pretrained), data parallelism, log writers."""
        cfg, g = self.cfg, self.g
        self.optimizer, self.scheduler = build_optimizer(cfg["Optimizer"], self.model, self.steps_per_epoch,
                                                         self.epochs, log=self.log.info)
        self.amp = Amp(g, self.env.device, warn=self.log.warning)
        self.model, self.optimizer = self.amp.decorate(self.model, self.optimizer)

        # non-trainable state updated by the forward pass (BatchNorm _mean/_variance are such parameters)
        net = D.unwrap(self.model)
        self._running_stats = [t for t in list(net.buffers()) + [p for p in net.parameters() if not p.trainable]
                               if t.dtype in _FLOAT_DTYPES]
        self._trainable = [p for p in net.parameters() if p.trainable]
        self.state = TrainState(best={self.main_indicator: 0.0})
        self._restore_or_init()
        if self.env.distributed:
            self.model = paddle.DataParallel(self.model)

        resume_step = self.state.global_step if g.get("checkpoints") else None
        self.metrics_out = MetricsWriter(os.path.join(self.save_dir, "metrics.jsonl") if self.main else None,
                                         resume_step)
        vdl_dir = g.get("log_dir") or os.path.join(self.save_dir, "vdl")
        self.vdl = VisualDLWriter(bool(g.get("use_visualdl")) and self.main, vdl_dir, self.log)
        self.guard = BadStepGuard(int(g["max_bad_steps"]), log=self.log.warning)
        self.stats = SmoothedStats(int(g["log_smooth_window"]))
        self.last_eval: Optional[Dict[str, Any]] = None
        self.last_eval_step = -1
        self._empty_streak = 0

    # ------------------------------------------------------------------ set-up
    def _log_header(self) -> None:
        g, env = self.g, self.env
        self.log.info(f"config: {self.cfg.get('__file__')} -> {os.path.join(self.save_dir, 'config.yml')}")
        self.log.info(f"device {env.device}, world size {env.world_size}"
                      f"{' (gloo)' if env.distributed and env.device == 'cpu' else ''}, paddle {paddle.__version__}, "
                      f"seed {g['seed']}")
        hint = D.cpu_cores_hint(env.device, env.world_size)
        if hint:
            self.log.info(hint)
        if self.deterministic:
            self.log.info("deterministic: seeded Python/NumPy/Paddle, deterministic GPU kernels; augmentation is "
                          "seeded per (seed, epoch, sample), so num_workers does not change the results")

    def _restore_or_init(self) -> None:
        g = self.g
        ckpt, pretrained = g.get("checkpoints"), g.get("pretrained_model")
        if ckpt:
            if pretrained:
                self.log.info(f"Global.checkpoints is set: Global.pretrained_model ({pretrained}) is not loaded")
            states = load_checkpoint(str(ckpt), self.model, self.optimizer, log=self.log.info,
                                     partial=bool(self.g.get("allow_partial_resume"))) or {}
            st = TrainState.from_states(states)
            if "global_step" not in states and "epoch" in states:  # older PaddleOCR checkpoints
                st.global_step = int(states["epoch"]) * self.steps_per_epoch
            st.best = {self.main_indicator: 0.0, **st.best}
            saved_spe, saved_world = states.get("steps_per_epoch"), states.get("world_size")
            if st.iter_in_epoch and (saved_spe != self.steps_per_epoch or saved_world != self.env.world_size):
                self.log.warning(f"checkpoint was written with {saved_spe} iterations/epoch on {saved_world} "
                                 f"rank(s), now {self.steps_per_epoch} on {self.env.world_size}: resuming at the "
                                 f"start of epoch {st.epoch + 1} instead of iteration {st.iter_in_epoch}")
                st.iter_in_epoch = 0
            if st.iter_in_epoch >= self.steps_per_epoch:
                st.epoch, st.iter_in_epoch = st.epoch + 1, 0
            self.state = st
            self.scheduler.set_state_dict({"last_epoch": int(states.get("lr_last_epoch", st.global_step))})
            self.amp.load_state_dict(states.get("amp_scaler"))
            restore_rng(states.get("rng") or {})
            if st.iter_in_epoch:
                self.train_loader.batch_sampler = SkipFirstBatches(self.train_loader.batch_sampler,
                                                                   st.iter_in_epoch)
            self.log.info(f"resumed from {ckpt}: global step {st.global_step}, epoch {st.epoch + 1} iteration "
                          f"{st.iter_in_epoch}, lr {self.scheduler.last_lr:.6g}, best {st.best}")
        elif pretrained:
            load_pretrained(self.model, str(pretrained), log=self.log.info)
        else:
            self.log.info("training from scratch (no Global.pretrained_model)")

    # ------------------------------------------------------------------ saving
    def _save(self, name: str) -> None:
        if not self.main:
            return
        st = self.state
        states = st.to_states(steps_per_epoch=self.steps_per_epoch, world_size=self.env.world_size,
                              lr_last_epoch=self.scheduler.last_epoch, rng=capture_rng(),
                              amp_scaler=self.amp.state_dict())
        prefix = os.path.join(self.save_dir, name)
        save_checkpoint(prefix, D.unwrap(self.model), self.optimizer, states)
        self.log.info(f"saved {prefix} (global step {st.global_step})")
        if name == "latest":
            self._latest_step = st.global_step

    # ------------------------------------------------------------------ evaluation
    def _eval_schedule(self):
        ebs = self.g.get("eval_batch_step")
        if self.eval_loader is None or ebs is None:
            return None
        if isinstance(ebs, int):
            return 0, ebs
        return int(ebs[0]), int(ebs[1])

    def _evaluate(self, epoch: int, stop: StopFlag) -> Optional[Dict[str, Any]]:
        """Evaluate, keep ``best_accuracy``; ``None`` when a signal stopped the evaluation."""
        st = self.state
        self.log.info(f"evaluating at global step {st.global_step} "
                      f"({getattr(self.eval_loader.dataset, 'num_samples', '?')} images)")
        D.sync_buffers(self.model, self.env.distributed)  # every shard scores the weights rank 0 saves
        try:
            cur = run_evaluation(self.model, self.eval_loader, self.post_process, self.metric,
                                 distributed=self.env.distributed, autocast=self.amp.autocast, log=self.log.warning,
                                 should_stop=lambda: stop.requested)
        except EvaluationInterrupted:
            self.log.warning(f"evaluation at global step {st.global_step} stopped by the signal")
            return None
        self.last_eval, self.last_eval_step = cur, st.global_step
        self.log.info("cur metric, " + _fmt_metrics(cur))
        improved = cur[self.main_indicator] >= st.best.get(self.main_indicator, 0.0)
        if improved:
            st.best.update({k: cur[k] for k in ("precision", "recall", "hmean") if k in cur})
            st.best.update(best_epoch=epoch, best_step=st.global_step)
            self._save("best_accuracy")
        self.log.info("best metric, " + _fmt_metrics(st.best))
        self.metrics_out.write("eval", epoch=epoch, global_step=st.global_step, improved=improved,
                               **{f"best_{self.main_indicator}": st.best.get(self.main_indicator)}, **cur)
        self.vdl.scalars("EVAL", cur, st.global_step)
        return cur

    # ------------------------------------------------------------------ one step
    def _forward_loss(self, batch) -> Optional[Dict[str, paddle.Tensor]]:
        if num_samples(batch) == 0 or batch.get("image") is None:
            return None
        with self.amp.autocast():
            preds = self.model(batch["image"])
        if self.amp.enabled:
            preds = {k: v.astype("float32") for k, v in preds.items()}
        return self.loss_fn(preds, batch)

    def _step(self, batch, stop: StopFlag, epoch: int, iteration: int):
        """One iteration; returns (loss values or None if skipped, stop requested on any rank)."""
        # BatchNorm running statistics change in the forward pass; a skipped step restores them
        buffers = [(b, b.clone()) for b in self._running_stats]
        losses = self._forward_loss(batch)
        values = {k: float(v) for k, v in losses.items()} if losses is not None else {}
        bad = any(not math.isfinite(v) for v in values.values())
        empty = losses is None
        flags = [bad, stop.requested, empty]
        if self.env.distributed:
            flags = [v > 0 for v in D.all_reduce_sum([float(f) for f in flags], True)]
        any_bad, any_stop, any_empty = flags
        step = self.state.global_step + 1
        norm = overflow = None
        if not (any_bad or any_empty):
            skip = self._backward_and_step(losses["loss"])
            if isinstance(skip, AmpOverflow) and self.amp.overflow_is_expected(skip):
                overflow = skip  # the dynamic loss scale settling: reported and counted, not a fault
            elif skip is not None:
                norm = skip.grad_norm if isinstance(skip, AmpOverflow) else skip
                any_bad = True
        if any_bad or any_empty or overflow is not None:
            self.optimizer.clear_grad()  # all ranks skip the update together, so no gradient sync is pending
            with paddle.no_grad():
                for buf, saved in buffers:
                    buf.set_value(saved)
            if overflow is not None:
                self._amp_overflow(step, epoch, overflow)
            elif any_bad:
                if norm is not None:
                    bad = self._bad_input_here(batch)
                paths = batch_paths(batch) or batch_locations(self.train_loader, epoch, iteration)
                extra = {} if norm is None else {"grad_norm": norm}
                self.metrics_out.write("bad_step", epoch=epoch, global_step=step, losses=values, samples=paths,
                                       **extra)
                self.guard.bad(step, values, paths, local=bad, grad_norm=norm)
            else:
                self._empty_batches(step, batch)
            values = None
        else:
            self.guard.good()
            self._empty_streak = 0
        self.scheduler.step()
        self.state.global_step = step
        return values, any_stop

    def _backward_and_step(self, loss: paddle.Tensor):
        """Backward pass and update.  Returns ``None`` after an update; otherwise no update was made
        and the result says why: the (non-finite) global gradient norm, or under AMP an
        :class:`AmpOverflow` (the loss scaler found inf/nan gradients).

        Under ``paddle.DataParallel`` the backward pass all-reduces the gradients, and a NaN/inf on
        one rank makes the sum non-finite on every rank: all ranks see the same norm and skip
        together without another collective.
        """
        if self.amp.enabled:
            return self.amp.backward_and_step(loss, self.optimizer, self._trainable)
        loss.backward()
        # one fused norm over all gradients (a few ms for DBNet++ MobileNetV3 on CPU)
        norm = grad_norm(self._trainable)
        if not math.isfinite(norm):
            return norm
        self.optimizer.step()
        self.optimizer.clear_grad()
        return None

    def _amp_overflow(self, step: int, epoch: int, overflow: AmpOverflow) -> None:
        """An update skipped by the dynamic loss scaler: logged, counted and written to metrics.jsonl."""
        self.log.warning(f"global step {step}: inf/nan gradients at AMP loss scale {overflow.scale:g}: update "
                         f"skipped, loss scale now {overflow.next_scale:g} ({self.amp.skipped} such step(s) so "
                         f"far; expected while a dynamic loss scale settles)")
        self.metrics_out.write("amp_skip", epoch=epoch, global_step=step, scale=overflow.scale,
                               next_scale=overflow.next_scale, total=self.amp.skipped)

    def _bad_input_here(self, batch) -> bool:
        """After non-finite gradients: does this rank's batch hold a NaN/inf input?  Ranks that do
        report their samples; if no rank does (gradient overflow), every rank reports its own."""
        local = any(isinstance(v, paddle.Tensor) and v.dtype in _FLOAT_DTYPES and v.size > 0
                    and not bool(paddle.isfinite(v).all()) for v in (batch.values() if isinstance(batch, dict) else ()))
        if not self.env.distributed:
            return True
        ranks_with_bad_input = D.all_reduce_sum([float(local)], True)[0]  # every rank is here: same skip decision
        return local or ranks_with_bad_input == 0

    def _empty_batches(self, step: int, batch) -> None:
        """A step without any loadable sample (on some rank); too many in a row is a data error."""
        self._empty_streak += 1
        reasons = batch.get(SKIPPED_KEY) or []
        self.log.warning(f"global step {step}: no loadable sample in the batch of some rank; no update "
                         f"({self._empty_streak}/{self.guard.max_bad_steps} in a row)")
        if self._empty_streak >= self.guard.max_bad_steps:
            shown = "; ".join(reasons[:3])
            raise DataError(f"{self._empty_streak} consecutive batches without a loadable sample "
                            f"(bad_sample_policy: skip){': ' + shown if shown else ''}")

    # ------------------------------------------------------------------ loop
    def train(self) -> Dict[str, Any]:
        """Run the training; returns the summary printed by ``tools/train.py``."""
        try:
            # fresh name scope for the optimizer accumulators created at the first step, so that their names
            # match the restored optimizer state even when this process trained before
            self._latest_step = self.state.global_step  # what a resume from Global.checkpoints starts at
            with StopFlag(log=self.log.warning) as stop, paddle.utils.unique_name.guard():
                self._loop(stop)
        except (DataError, LoaderError) as exc:  # a bad sample (policy fail) or a batch the loader cannot make
            if self.state.global_step != self._latest_step:
                self._save("latest")  # the steps done so far are not lost
            self.metrics_out.write("stop", reason="data_error", global_step=self.state.global_step,
                                   error=str(exc)[:500])
            raise
        except NonFiniteLossError as exc:
            self.log.error(str(exc))
            self.metrics_out.write("stop", reason="non_finite_loss", global_step=self.state.global_step)
            raise
        finally:
            self._finish_outputs()
        return self.summary()

    def _plan_steps(self) -> int:
        total = self.epochs * self.steps_per_epoch
        max_steps = self.g.get("max_steps")
        return min(total, int(max_steps)) if max_steps else total

    def _loop(self, stop: StopFlag) -> None:
        g, st = self.g, self.state
        plan = self._plan_steps()
        schedule = self._eval_schedule()
        print_every, save_every = int(g["print_batch_step"]), int(g["save_epoch_step"])
        if schedule:
            self.log.info(f"evaluation after global step {schedule[0]}, every {schedule[1]} steps "
                          f"(global steps count all {self.env.world_size} rank(s) together)")
        bs = (self.cfg["Train"].get("loader") or {}).get("batch_size_per_card", 1)
        self.log.info(f"{self.steps_per_epoch} iterations/epoch, {self.epochs} epochs, total batch "
                      f"{bs} x {self.env.world_size}; lr {self.scheduler.describe()}; AMP {self.amp.describe()}")
        self.model.train()
        window = {"reader": 0.0, "batch": 0.0, "samples": 0, "iters": 0}
        recent_batch_costs = []
        for epoch in range(st.epoch + 1, self.epochs + 1):
            if st.global_step >= plan:
                break
            set_sampler_epoch(self.train_loader, epoch)
            iteration = st.iter_in_epoch
            skipped, loaded = [], 0
            reader_start = time.time()
            for batch in self._batches(stop):
                window["reader"] += time.time() - reader_start
                lr = self.optimizer.get_lr()  # the rate this step uses
                skipped.extend(batch.get(SKIPPED_KEY) or [])
                values, stop_now = self._step(batch, stop, epoch, iteration)
                iteration += 1
                st.iter_in_epoch = iteration
                window["samples"] += num_samples(batch)
                loaded += num_samples(batch)
                window["iters"] += 1
                cost = time.time() - reader_start
                window["batch"] += cost
                recent_batch_costs = (recent_batch_costs + [cost])[-50:]
                if values is not None:
                    self.stats.update(values)
                last_of_epoch = iteration >= self.steps_per_epoch
                if st.global_step % print_every == 0 or last_of_epoch or st.global_step >= plan or stop_now:
                    self._log_train(epoch, lr, window, recent_batch_costs, plan)
                if schedule and st.global_step > schedule[0] and (st.global_step - schedule[0]) % schedule[1] == 0:
                    stop_now = self._evaluate(epoch, stop) is None or stop_now
                    self.model.train()
                if stop_now:
                    self._stop(epoch, skipped, loaded, stop)
                if st.global_step >= plan and not last_of_epoch:
                    break
                reader_start = time.time()
            if stop.requested and st.iter_in_epoch < self.steps_per_epoch:
                self._stop(epoch, skipped, loaded, stop)  # data loading ended early because of the signal
            finished_epoch = st.iter_in_epoch >= self.steps_per_epoch
            if finished_epoch:
                st.epoch, st.iter_in_epoch = epoch, 0
            self._report_skipped(epoch, skipped, loaded)
            self._save("latest")
            if finished_epoch and epoch % save_every == 0:
                self._save(f"iter_epoch_{epoch}")
        if self.eval_loader is not None and g["eval_at_end"] and self.last_eval_step != st.global_step:
            if self._evaluate(st.epoch if st.iter_in_epoch == 0 else st.epoch + 1, stop) is None:
                self._stop_after_save(stop)  # 'latest' was saved at the end of the last epoch
        D.barrier(self.env.distributed)

    def _batches(self, stop: StopFlag):
        """Training batches; after a stop request a failing loader (its workers got the signal too) just ends."""
        it = iter(self.train_loader)
        while True:
            try:
                batch = next(it)
            except StopIteration:
                return
            except (RuntimeError, SystemError) as exc:
                if not stop.requested:
                    raise
                self.log.warning(f"data loading stopped after the signal ({type(exc).__name__}: "
                                 f"{str(exc).splitlines()[0] if str(exc) else ''}); saving the last completed step")
                return
            yield batch

    def _stop(self, epoch: int, skipped, loaded: int, stop: StopFlag) -> None:
        self._report_skipped(epoch, skipped, loaded, check=False)
        self._save("latest")
        self._stop_after_save(stop)

    def _stop_after_save(self, stop: StopFlag) -> None:
        signum = stop.signum or 15  # another rank was signalled
        self.metrics_out.write("stop", reason="signal", signal=signum, global_step=self.state.global_step)
        D.barrier(self.env.distributed)
        raise TrainingInterrupted(signum)

    def _log_train(self, epoch: int, lr: float, window: Dict[str, float], recent, plan: int) -> None:
        n = max(1, window["iters"])
        samples = D.all_reduce_sum([window["samples"]], self.env.distributed)[0]
        ips = samples / window["batch"] if window["batch"] > 0 else 0.0
        eta = int(max(0, plan - self.state.global_step) * (sum(recent) / max(1, len(recent))))
        means = {"lr": lr, **self.stats.means()}
        losses = self.stats.format()
        self.log.info(f"epoch: [{epoch}/{self.epochs}], global_step: {self.state.global_step}, lr: {lr:.6g}, "
                      f"{losses + ', ' if losses else ''}avg_reader_cost: {window['reader'] / n:.5f} s, "
                      f"avg_batch_cost: {window['batch'] / n:.5f} s, avg_samples: {samples / n:g}, "
                      f"ips: {ips:.5f} samples/s, eta: {datetime.timedelta(seconds=eta)}")
        self.metrics_out.write("train", epoch=epoch, global_step=self.state.global_step, **means,
                               reader_cost=window["reader"] / n, batch_cost=window["batch"] / n, ips=ips,
                               eta_sec=eta)
        self.vdl.scalars("TRAIN", means, self.state.global_step)
        window.update(reader=0.0, batch=0.0, samples=0, iters=0)

    SKIPPED_FILE = "skipped_samples.txt"
    SKIPPED_SHOWN = 5

    def _report_skipped(self, epoch: int, skipped, loaded: int, check: bool = True) -> None:
        """End of an epoch (or of the run within it): skipped samples over all ranks; none loaded is an error.

        The log line names the first few; every one (``label_file:line: reason``) goes to
        ``skipped_samples.txt`` in the output folder (one header per epoch) and to the ``epoch``
        event of ``metrics.jsonl``.
        """
        total, total_loaded = (int(v) for v in D.all_reduce_sum([len(skipped), loaded], self.env.distributed))
        every = D.all_gather_strings(list(skipped), self.env.distributed) if total else []
        shown = "; ".join(every[:self.SKIPPED_SHOWN]) + (" ..." if len(every) > self.SKIPPED_SHOWN else "")
        if total:
            listed = self._write_skipped(epoch, every)
            self.log.warning(f"epoch {epoch}: {total} sample(s) skipped (bad_sample_policy: skip)"
                             f"{': ' + shown if shown else ''}{f'; all of them in {listed}' if listed else ''}")
        self.metrics_out.write("epoch", epoch=epoch, global_step=self.state.global_step, skipped=total,
                               loaded=total_loaded, **({"skipped_samples": every} if every else {}))
        if check and total and not total_loaded:
            raise DataError(f"no training sample of epoch {epoch} could be loaded ({total} skipped, "
                            f"bad_sample_policy: skip){': ' + shown if shown else ''}")

    def _write_skipped(self, epoch: int, skipped) -> Optional[str]:
        """Append the epoch's skipped samples to ``skipped_samples.txt`` (rank 0); its path, or None."""
        if not self.main:
            return None
        path = os.path.join(self.save_dir, self.SKIPPED_FILE)
        stamp = datetime.datetime.now().strftime("%Y/%m/%d %H:%M:%S")
        text = f"# epoch {epoch}, global step {self.state.global_step}, {stamp}: {len(skipped)} skipped\n"
        text += "".join(f"{line}\n" for line in skipped)
        try:
            with open(path, "a", encoding="utf-8") as f:
                f.write(text)
        except OSError as exc:
            self.log.warning(f"cannot write {path}: {exc.strerror or exc}")
            return None
        return path

    # ------------------------------------------------------------------ end
    def _finish_outputs(self) -> None:
        if self.main and (self.guard.total or self.amp.skipped):
            self.log.warning(f"steps without an update: {self.guard.total} with a non-finite loss or gradient"
                             + (f", {self.amp.skipped} skipped by the AMP loss scaler (final loss scale "
                                f"{self.amp.loss_scale():g})" if self.amp.enabled else ""))
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
        st, best = self.state, self.state.best
        out = {k: best.get(k) for k in ("precision", "recall", "hmean")}
        out.update(best_epoch=best.get("best_epoch"), best_step=best.get("best_step"), steps=st.global_step,
                   epochs=st.epoch, save_model_dir=os.path.abspath(self.save_dir))
        if self.last_eval is not None:
            out["last"] = {k: self.last_eval.get(k) for k in ("precision", "recall", "hmean")}
        out["skipped_steps"] = self.guard.total  # non-finite loss or gradient
        if self.amp.enabled:
            out["amp_skipped_steps"] = self.amp.skipped  # overflows while the dynamic loss scale settled
        return out


def train(cfg: Dict[str, Any]) -> Dict[str, Any]:
    """Train from a loaded config; returns the summary dict."""
    return Trainer(cfg).train()


__all__ = ["Trainer", "train", "check_train_config"]
