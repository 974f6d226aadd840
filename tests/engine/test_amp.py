"""AMP gradient overflow: steps whose update the loss scaler skips are detected, reported and counted.

paddle's GradScaler only switches on when the current place is a GPU (or XPU / custom device), but its
arithmetic (``check_finite_and_unscale``, ``update_loss_scaling``) has CPU kernels.  Without a GPU the
only way to run the real scaler is to let its place check see a GPU: the fixture below does that (and
sets the float16 AMP dtype that ``auto_cast`` sets on a GPU); everything else is the real scaler.
"""
import numpy as np
import paddle
import pytest

from dbnetpp.config import load_config
from dbnetpp.dist import unwrap
from dbnetpp.engine.amp import Amp, AmpOverflow
from dbnetpp.engine.guard import NonFiniteLossError
from dbnetpp.engine.trainer import Trainer


class _GpuPlace:
    def is_gpu_place(self):
        return True


class _TracerOnGpu:
    def __init__(self, tracer):
        self._tracer = tracer
        self._expected_place = _GpuPlace()

    def __getattr__(self, name):
        return getattr(self._tracer, name)


@pytest.fixture
def scaler_on_cpu(monkeypatch):
    """``make(**Global) -> Amp`` with a live GradScaler on this CPU."""
    grad_scaler = pytest.importorskip("paddle.amp.grad_scaler")
    auto_cast = pytest.importorskip("paddle.amp.auto_cast")
    if not hasattr(grad_scaler, "_dygraph_tracer") or not hasattr(auto_cast, "amp_global_state"):
        pytest.skip("this paddle version's GradScaler cannot be switched on without a GPU")
    monkeypatch.setattr(auto_cast.amp_global_state(), "amp_dtype", "float16")

    def make(**g):
        real = grad_scaler._dygraph_tracer
        monkeypatch.setattr(grad_scaler, "_dygraph_tracer", lambda: _TracerOnGpu(real()))
        try:
            amp = Amp({"use_amp": True, "amp_level": "O1", **g}, "gpu:0", warn=print)
        finally:
            monkeypatch.setattr(grad_scaler, "_dygraph_tracer", real)
        assert amp.enabled and amp.scaler is not None and amp.scaler._enable
        return amp

    return make


def _linear_step(amp, model, opt, value):
    loss = model(paddle.full([2, 3], value)).mean()
    return amp.backward_and_step(loss, opt)


def test_overflow_is_detected_and_counted_with_dynamic_scaling(scaler_on_cpu):
    amp = scaler_on_cpu(scale_loss=1024.0, use_dynamic_loss_scaling=True)
    paddle.seed(0)
    model = paddle.nn.Linear(3, 1)
    opt = paddle.optimizer.Adam(parameters=model.parameters())
    w0 = model.weight.numpy().copy()
    assert _linear_step(amp, model, opt, 1.0) is None  # finite: updated
    w1 = model.weight.numpy().copy()
    assert not np.array_equal(w0, w1) and amp.skipped == 0

    first = _linear_step(amp, model, opt, float("inf"))
    assert isinstance(first, AmpOverflow) and first.dynamic and first.scale == 1024.0
    assert not np.isfinite(first.grad_norm)
    np.testing.assert_array_equal(model.weight.numpy(), w1)  # no update
    assert all(p.grad is None or float(p.grad.abs().sum()) == 0.0 for p in model.parameters())  # cleared
    second = _linear_step(amp, model, opt, float("nan"))
    # GradScaler halves the scale at every overflow (decr_every_n_nan_or_inf = 1, decr_ratio = 0.5)
    assert first.next_scale == 512.0 and second.scale == 512.0 and second.next_scale == 256.0
    assert amp.skipped == 2 and Amp.overflow_is_expected(first) and Amp.overflow_is_expected(second)
    np.testing.assert_array_equal(model.weight.numpy(), w1)

    assert _linear_step(amp, model, opt, 1.0) is None  # training goes on at the lower scale
    assert not np.array_equal(model.weight.numpy(), w1) and amp.loss_scale() == 256.0


def test_overflow_with_static_scaling_is_a_fault(scaler_on_cpu):
    amp = scaler_on_cpu(scale_loss=8.0, use_dynamic_loss_scaling=False)
    model = paddle.nn.Linear(3, 1)
    opt = paddle.optimizer.Momentum(parameters=model.parameters())
    w0 = model.weight.numpy().copy()
    res = _linear_step(amp, model, opt, float("inf"))
    assert isinstance(res, AmpOverflow) and not res.dynamic and res.next_scale == 8.0
    assert not Amp.overflow_is_expected(res)
    np.testing.assert_array_equal(model.weight.numpy(), w0)
    assert _linear_step(amp, model, opt, 1.0) is None and not np.array_equal(model.weight.numpy(), w0)


def _amp_trainer(cli, data, out, scaler_on_cpu, *extra, **amp_keys):
    cfg = load_config(str(cli.config), cli.overrides(data, out, "Global.epoch_num=1", "Global.eval_at_end=false",
                                                   "Global.eval_batch_step=[100,100]", "Global.max_bad_steps=2",
                                                   *extra))
    trainer = Trainer(cfg)
    trainer.amp = scaler_on_cpu(**amp_keys)
    return trainer


def _weights(trainer):
    return {k: v.numpy().copy() for k, v in unwrap(trainer.model).state_dict().items()}


def test_trainer_reports_scaler_skips_and_keeps_training(cli, engine_data, tmp_path, scaler_on_cpu):
    """A loss scale of 3e38 overflows every float32 gradient: with dynamic scaling the steps are skipped,
    logged and counted, but do not count as faults (max_bad_steps=2 < 4 steps)."""
    out = tmp_path / "out"
    trainer = _amp_trainer(cli, engine_data, out, scaler_on_cpu, scale_loss=3e38, use_dynamic_loss_scaling=True)
    before = _weights(trainer)
    summary = trainer.train()
    assert summary["steps"] == 4 and summary["amp_skipped_steps"] == 4 and summary["skipped_steps"] == 0
    after = _weights(trainer)
    assert all(np.array_equal(before[k], after[k]) for k in before)  # BN statistics restored too
    events = [e for e in cli.events(out / "metrics.jsonl") if e["event"] == "amp_skip"]
    assert [e["global_step"] for e in events] == [1, 2, 3, 4] and events[-1]["total"] == 4
    assert events[0]["scale"] == pytest.approx(3e38, rel=1e-6) and events[-1]["next_scale"] < events[0]["scale"]
    log = (out / "train.log").read_text()
    assert "global step 1: inf/nan gradients at AMP loss scale" in log and "update skipped" in log
    assert "4 skipped by the AMP loss scaler" in log


def test_trainer_stops_on_overflows_with_static_scaling(cli, engine_data, tmp_path, scaler_on_cpu):
    out = tmp_path / "out"
    trainer = _amp_trainer(cli, engine_data, out, scaler_on_cpu, scale_loss=3e38, use_dynamic_loss_scaling=False)
    before = _weights(trainer)
    with pytest.raises(NonFiniteLossError, match="2 consecutive non-finite losses or gradients"):
        trainer.train()
    after = _weights(trainer)
    assert all(np.array_equal(before[k], after[k]) for k in before)
    bad = [e for e in cli.events(out / "metrics.jsonl") if e["event"] == "bad_step"]
    assert [e["global_step"] for e in bad] == [1, 2] and all(e["grad_norm"] in ("inf", "nan") for e in bad)
    assert trainer.amp.skipped == 2
