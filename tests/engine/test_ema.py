"""``Global.use_ema``: the update rule of the weight average, its swap in and out for evaluation, and in
training: best_accuracy holds the average, latest the trained weights, and a resume continues the average
exactly."""
import math

import numpy as np
import paddle
import pytest

from dbnetpp.checkpoint import read_states
from dbnetpp.engine.ema import WeightAverage, decay_at


def _model():
    paddle.seed(0)
    return paddle.nn.Sequential(paddle.nn.Linear(2, 3), paddle.nn.BatchNorm1D(3))


def _set(model, value):
    with paddle.no_grad():
        for t in model.state_dict().values():
            t.set_value(paddle.full(t.shape, value, t.dtype))


def test_decay_schedules():
    assert [decay_at(0.9, "threshold", n) for n in range(3)] == [0.1, 2 / 11, 0.25]
    assert decay_at(0.9, "threshold", 1000) == 0.9
    assert decay_at(0.999, "exponential", 0) == pytest.approx(0.999 * (1 - math.exp(-1 / 2000)))
    assert decay_at(0.999, "normal", 0) == 0.999


def test_update_rule_covers_parameters_and_batchnorm_statistics():
    """avg = d * avg + (1 - d) * w after each update, from the starting weights, with the threshold warm-up."""
    model = _model()
    _set(model, 1.0)
    ema = WeightAverage(model, decay=0.9)
    expected = 1.0
    for n, w in enumerate((3.0, -2.0, 5.0)):
        _set(model, w)
        ema.update(model)
        d = min(0.9, (1 + n) / (10 + n))
        expected = d * expected + (1 - d) * w
    assert ema.updates == 3
    assert set(ema.shadow) == set(model.state_dict())  # weights, bias, BN scale/shift and running statistics
    for k, avg in ema.shadow.items():
        np.testing.assert_allclose(avg.numpy(), expected, rtol=1e-6, err_msg=k)


def test_applied_swaps_the_average_in_and_restores_the_weights():
    model = _model()
    _set(model, 2.0)
    ema = WeightAverage(model, decay=0.5, kind="normal")
    _set(model, 4.0)
    ema.update(model)  # average 3.0
    x = paddle.ones([4, 2])
    model.eval()
    with ema.applied(model):
        assert all(np.allclose(t.numpy(), 3.0) for t in model.state_dict().values())
        inside = model(x).numpy()
    assert all(np.allclose(t.numpy(), 4.0) for t in model.state_dict().values())
    assert not np.allclose(model(x).numpy(), inside)
    with pytest.raises(RuntimeError):  # restored even when the block fails
        with ema.applied(model):
            raise RuntimeError("boom")
    assert all(np.allclose(t.numpy(), 4.0) for t in model.state_dict().values())


def test_state_round_trip_and_a_state_that_does_not_fit():
    model = _model()
    ema = WeightAverage(model, decay=0.99)
    _set(model, 7.0)
    ema.update(model)
    other = WeightAverage(_model(), decay=0.99)
    assert other.load_state(ema.state()) and other.updates == 1
    for k in ema.shadow:
        np.testing.assert_array_equal(other.shadow[k].numpy(), ema.shadow[k].numpy())
    assert not other.load_state(None) and not other.load_state({"weights": {"0.weight": np.zeros((2, 3))}})
    with pytest.raises(ValueError, match="ema_decay_type"):
        WeightAverage(model, 0.9, kind="cosine")


def test_training_with_ema_keeps_the_average_as_best_and_resumes_it(cli, engine_data, tmp_path):
    """3 steps evaluated at step 3: best_accuracy is the average (== latest's .states average), latest the
    trained weights; 3 + 3 steps resumed from latest give the average of 6 straight steps."""
    from dbnetpp.config import load_config
    from dbnetpp.engine.trainer import Trainer

    def run(out, *extra):
        cfg = load_config(str(cli.config), cli.overrides(
            engine_data, out, "Global.use_ema=true", "Global.ema_decay=0.9", "Global.eval_at_end=false",
            "Global.deterministic=true", "Global.eval_batch_step=[0,3]", *extra))
        return Trainer(cfg).train()

    run(tmp_path / "straight", "Global.max_steps=6")
    run(tmp_path / "cut", "Global.max_steps=3")
    cut = tmp_path / "cut"
    best, latest = paddle.load(str(cut / "best_accuracy.pdparams")), paddle.load(str(cut / "latest.pdparams"))
    average = read_states(str(cut / "latest"))["ema"]
    assert average["updates"] == 3 and average["decay"] == 0.9 and average["type"] == "threshold"
    assert any(not np.array_equal(best[k].numpy(), latest[k].numpy()) for k in best)
    for k in best:
        np.testing.assert_array_equal(best[k].numpy(), average["weights"][k], err_msg=k)
    run(cut, "Global.max_steps=6", f"Global.checkpoints={cut / 'latest'}")
    a, b = read_states(str(tmp_path / "straight" / "latest"))["ema"], read_states(str(cut / "latest"))["ema"]
    assert a["updates"] == b["updates"] == 6
    for k in a["weights"]:
        np.testing.assert_array_equal(a["weights"][k], b["weights"][k], err_msg=k)
