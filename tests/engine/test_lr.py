"""Learning-rate schedules: closed forms, PaddleOCR composition parity, warm-up, state round trip."""
import math

import pytest
from paddle.optimizer import lr as plr

from dbnetpp.engine import build_lr_scheduler
from dbnetpp.errors import ConfigError

SPE, EPOCHS = 7, 5  # steps per epoch, epochs
T = SPE * EPOCHS


def _values(sched, n):
    out = []
    for _ in range(n):
        out.append(sched())
        sched.step()
    return out


def _build(**cfg):
    return build_lr_scheduler(cfg, EPOCHS, SPE, log=lambda m: None)


@pytest.mark.smoke
def test_decay_learning_rate_is_db_plus_plus_polynomial():
    """DB++ recipe: lr_0 * (1 - t/T)^0.9 down to 0 at T = epochs * steps_per_epoch."""
    s = _build(name="DecayLearningRate", learning_rate=0.007, factor=0.9, end_lr=0, epochs=1000)
    vals = _values(s, T + 3)
    for t, v in enumerate(vals):
        expect = 0.007 * (1 - min(t, T) / T) ** 0.9
        assert v == pytest.approx(expect, rel=1e-12, abs=1e-15), t
    assert vals[T] == 0.0 and vals[-1] == 0.0
    # same values as Paddle's PolynomialDecay, which PaddleOCR's DecayLearningRate builds
    ref = plr.PolynomialDecay(learning_rate=0.007, decay_steps=T, power=0.9, end_lr=0.0)
    assert vals == pytest.approx(_values(ref, T + 3), rel=1e-9, abs=1e-15)
    # 'power' is a synonym of 'factor'
    assert _values(_build(name="DecayLearningRate", learning_rate=0.007, power=0.9), T) == pytest.approx(vals[:T])


def test_const_is_default_and_warmup_is_linear():
    s = _build(learning_rate=0.01)  # no name: constant (PaddleOCR)
    assert type(s).__name__ == "Const"
    assert _values(s, 10) == [0.01] * 10
    w = _build(name="Const", learning_rate=0.01, warmup_epoch=1)  # W = 7 steps
    vals = _values(w, 12)
    assert vals[:SPE] == pytest.approx([0.01 * t / SPE for t in range(SPE)])
    assert vals[SPE:] == [0.01] * 5


def test_cosine_with_warmup_matches_closed_form_and_paddle_composition():
    w = 2  # warm-up epochs
    s = _build(name="Cosine", learning_rate=0.1, warmup_epoch=w)
    W = w * SPE
    vals = _values(s, T)
    for t, v in enumerate(vals):
        if t < W:
            expect = 0.1 * t / W
        else:
            expect = 0.05 * (1 + math.cos(math.pi * (t - W) / T))
        assert v == pytest.approx(expect, rel=1e-9, abs=1e-15), t
    # PaddleOCR: LinearWarmup(CosineAnnealingDecay(T_max=T), warmup_steps=W, 0 -> lr)
    ref = plr.LinearWarmup(plr.CosineAnnealingDecay(0.1, T_max=T), warmup_steps=W, start_lr=0.0, end_lr=0.1)
    assert vals == pytest.approx(_values(ref, T), rel=1e-6, abs=1e-12)
    # fractional warm-up epochs round to steps like upstream
    assert _build(name="Cosine", learning_rate=0.1, warmup_epoch=0.5).warmup_steps == round(0.5 * SPE)


def test_linear_polynomial_step_piecewise():
    lin = _values(_build(name="Linear", learning_rate=1.0, end_lr=0.1, power=2.0), T + 1)
    assert lin == pytest.approx([(1.0 - 0.1) * (1 - t / T) ** 2 + 0.1 for t in range(T + 1)])
    assert _values(_build(name="Polynomial", learning_rate=1.0), 3) == pytest.approx([1.0, 1 - 1 / T, 1 - 2 / T])

    step = _values(_build(name="Step", learning_rate=1.0, step_size=2, gamma=0.5), T)
    assert step == pytest.approx([0.5 ** (t // (2 * SPE)) for t in range(T)])
    ref = plr.StepDecay(1.0, step_size=2 * SPE, gamma=0.5)
    assert step == pytest.approx(_values(ref, T))

    pw = _values(_build(name="Piecewise", decay_epochs=[1, 3], values=[0.1, 0.01, 0.001]), T)
    ref = plr.PiecewiseDecay(boundaries=[SPE, 3 * SPE], values=[0.1, 0.01, 0.001])
    assert pw == pytest.approx(_values(ref, T))
    assert pw[SPE - 1] == 0.1 and pw[SPE] == 0.01 and pw[3 * SPE] == 0.001


def test_state_round_trip_and_edited_schedule_on_resume():
    a = _build(name="Cosine", learning_rate=0.1, warmup_epoch=1)
    _values(a, 10)
    state = a.state_dict()
    b = _build(name="Cosine", learning_rate=0.1, warmup_epoch=1)
    b.set_state_dict(state)
    assert _values(b, 5) == _values(a, 5)
    # loading recomputes the rate from the (edited) schedule instead of keeping the saved one
    c = _build(name="Cosine", learning_rate=0.2, warmup_epoch=1)
    c.set_state_dict(state)
    assert c() == pytest.approx(2 * state["last_lr"])


@pytest.mark.parametrize("cfg, needle", [
    ({"name": "Cosine", "learning_rate": 0.1, "power": 0.9}, "power"),
    ({"name": "Step", "learning_rate": 0.1}, "step_size"),
    ({"name": "Piecewise", "decay_epochs": [1, 2], "values": [0.1, 0.01]}, "one more"),
    ({"name": "DecayLearningRate", "learning_rate": 0.1, "factor": 0.9, "power": 0.5}, "give one"),
    ({"name": "Piecewise", "learning_rate": 0.5, "decay_epochs": [1], "values": [0.1, 0.01]}, "values[0]"),
])
def test_invalid_schedules_name_the_key(cfg, needle):
    with pytest.raises(ConfigError) as exc:
        _build(**cfg)
    assert "Optimizer.lr" in str(exc.value) and needle in str(exc.value)


def test_yaml_epochs_is_replaced_by_global_epoch_num_with_a_note():
    notes = []
    s = build_lr_scheduler({"name": "DecayLearningRate", "learning_rate": 0.007, "epochs": 1000}, EPOCHS, SPE,
                           log=notes.append)
    assert s.total_steps == T
    assert len(notes) == 1 and "epochs=1000" in notes[0] and "Global.epoch_num" in notes[0]


def test_warmup_longer_than_the_schedule_is_a_warning():
    messages = []
    build_lr_scheduler({"name": "Cosine", "learning_rate": 0.001, "warmup_epoch": 5}, 3, 10, log=messages.append)
    assert any("warmup_epoch=5 is 50 steps, not shorter than the whole schedule (30 steps = 3 epochs x 10)"
               in m and "never reaches 0.001" in m for m in messages), messages
    messages.clear()
    build_lr_scheduler({"name": "Cosine", "learning_rate": 0.001, "warmup_epoch": 1}, 3, 10, log=messages.append)
    assert not [m for m in messages if "warmup" in m]
