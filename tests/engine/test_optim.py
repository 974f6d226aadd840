"""Optimizers: PaddleOCR section keys, regularisers, clipping, update rules, config checks."""
from pathlib import Path

import numpy as np
import paddle
import pytest

from dbnetpp.config import load_config, load_yaml
from dbnetpp.engine import build_optimizer, check_optimizer_config
from dbnetpp.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def _model(seed=0):
    paddle.seed(seed)
    return paddle.nn.Linear(3, 2)


def _one_step(opt_cfg, x_scale=1.0):
    model = _model()
    w0 = model.weight.numpy().copy()
    opt, sched = build_optimizer(opt_cfg, model, steps_per_epoch=4, epochs=2, log=lambda m: None)
    x = paddle.ones([1, 3]) * x_scale
    loss = model(x).sum()
    loss.backward()
    g = model.weight.grad.numpy().copy()
    opt.step()
    opt.clear_grad()
    return w0, g, model.weight.numpy(), opt, sched


@pytest.mark.smoke
def test_sgd_l2_regularizer_update_rule():
    """w' = w - lr * (g + factor * w): PaddleOCR's L2 regularizer is coupled decay."""
    w0, g, w1, opt, _ = _one_step({"name": "SGD", "lr": {"learning_rate": 0.1},
                                   "regularizer": {"name": "L2", "factor": 0.5}})
    np.testing.assert_allclose(w1, w0 - 0.1 * (g + 0.5 * w0), rtol=1e-5, atol=1e-7)


def test_momentum_weight_decay_and_first_step():
    w0, g, w1, opt, _ = _one_step({"name": "Momentum", "momentum": 0.9,
                                   "lr": {"name": "DecayLearningRate", "learning_rate": 0.007, "factor": 0.9},
                                   "weight_decay": 1e-4})
    assert isinstance(opt, paddle.optimizer.Momentum)
    np.testing.assert_allclose(w1, w0 - 0.007 * (g + 1e-4 * w0), rtol=1e-5, atol=1e-8)


def test_adam_first_step_and_adamw_decoupled_decay():
    w0, g, w1, opt, _ = _one_step({"name": "Adam", "beta1": 0.9, "beta2": 0.999,
                                   "lr": {"learning_rate": 0.001}, "regularizer": {"name": "L2", "factor": 0}})
    # first Adam step moves every weight with a non-zero gradient by ~lr
    np.testing.assert_allclose(np.abs(w1 - w0)[g != 0], 0.001, rtol=1e-3)
    w0, g, w1, opt, _ = _one_step({"name": "AdamW", "lr": {"learning_rate": 0.001}, "weight_decay": 0.5})
    np.testing.assert_allclose(w1, w0 * (1 - 0.001 * 0.5) - 0.001 * np.sign(g), rtol=1e-3, atol=1e-6)


def test_gradient_clipping_by_global_norm():
    w0, g, w1, _, _ = _one_step({"name": "SGD", "lr": {"learning_rate": 1.0}, "clip_norm_global": 0.01},
                                x_scale=100.0)
    # bias gradients count too: the whole update has norm <= 0.01
    assert np.linalg.norm(g) > 1.0
    assert np.linalg.norm(w1 - w0) <= 0.01 + 1e-6
    w0, g, w1, _, _ = _one_step({"name": "SGD", "lr": {"learning_rate": 1.0}, "clip_norm": 0.02}, x_scale=100.0)
    np.testing.assert_allclose(np.linalg.norm(w1 - w0), 0.02, rtol=1e-4)


class _TwoParts(paddle.nn.Layer):
    def __init__(self):
        super().__init__()
        self.backbone = paddle.nn.Linear(3, 3)
        self.head = paddle.nn.Sequential(paddle.nn.Linear(3, 2), paddle.nn.Linear(2, 1))

    def forward(self, x):
        return self.head(self.backbone(x))


def test_lr_mult_scales_each_part_by_its_longest_prefix():
    """SGD: w' = w - lr * factor * g, the factor of the longest matching prefix (1 where none matches), under a
    schedule (the factor multiplies the warm-up rate too); the state dict round-trips."""
    paddle.seed(0)
    model = _TwoParts()
    cfg = {"name": "SGD", "lr": {"name": "Cosine", "learning_rate": 0.1, "warmup_epoch": 1},
           "lr_mult": {"backbone": 0.25, "head": 3.0, "head.1": 0.5}}
    logs = []
    opt, sched = build_optimizer(cfg, model, steps_per_epoch=4, epochs=2, log=logs.append)
    for _ in range(2):
        sched.step()
    rate = opt.get_lr()
    assert 0 < rate < 0.1  # within the warm-up
    before = {n: p.numpy().copy() for n, p in model.named_parameters()}
    model(paddle.ones([2, 3])).sum().backward()
    grads = {n: p.grad.numpy().copy() for n, p in model.named_parameters()}
    opt.step()
    factors = {"backbone": 0.25, "head.0": 3.0, "head.1": 0.5}
    for n, p in model.named_parameters():
        f = next(v for k, v in factors.items() if n.startswith(k + "."))
        np.testing.assert_allclose(p.numpy(), before[n] - rate * f * grads[n], rtol=1e-5, atol=1e-7, err_msg=n)
    assert any("x0.25 for 12 weights" in m and "x3 for 8 weights" in m and "x0.5 for 3 weights" in m for m in logs)
    opt2, _ = build_optimizer(cfg, model, steps_per_epoch=4, epochs=2, log=lambda m: None)
    opt2.set_state_dict(opt.state_dict())
    assert opt2.get_lr() == pytest.approx(rate)


def test_lr_mult_prefix_without_parameters_names_the_parts():
    cfg = {"name": "Adam", "lr": {"learning_rate": 0.001}, "lr_mult": {"neck.asf": 2.0}}
    with pytest.raises(ConfigError) as exc:
        build_optimizer(cfg, _TwoParts(), steps_per_epoch=4, epochs=2, log=lambda m: None)
    msg = str(exc.value)
    assert "'Optimizer.lr_mult.neck.asf'" in msg and "backbone, head" in msg
    # a prefix matches whole names only: 'back' is not 'backbone'
    with pytest.raises(ConfigError, match="'back' names no trainable parameter"):
        build_optimizer({**cfg, "lr_mult": {"back": 2.0}}, _TwoParts(), 4, 2, log=lambda m: None)


def test_lr_schedule_is_attached_and_restored_with_the_optimizer():
    model = _model()
    cfg = {"name": "Adam", "lr": {"name": "Cosine", "learning_rate": 0.01, "warmup_epoch": 1}}
    opt, sched = build_optimizer(cfg, model, 4, 2, log=lambda m: None)
    for _ in range(5):
        sched.step()
    assert opt.get_lr() == pytest.approx(sched.lr_at(5))
    state = opt.state_dict()
    opt2, sched2 = build_optimizer(cfg, _model(), 4, 2, log=lambda m: None)
    opt2.set_state_dict(state)
    assert sched2.last_epoch == 5 and opt2.get_lr() == pytest.approx(opt.get_lr())


@pytest.mark.parametrize("section, key", [
    ({"name": "Adam", "momentum": 0.9, "lr": {"learning_rate": 0.001}}, "Optimizer.momentum"),
    ({"name": "Adam", "lr": {"learning_rate": 0.001}, "weight_decay": 1e-4,
      "regularizer": {"name": "L2", "factor": 1e-4}}, "Optimizer.weight_decay"),
    ({"name": "Adam", "lr": {"learning_rate": 0.001}, "clip_norm": 1, "clip_norm_global": 1},
     "Optimizer.clip_norm_global"),
    ({"name": "Adam"}, "Optimizer.lr"),
    ({"name": "Adamm", "lr": {"learning_rate": 0.001}}, "Optimizer.name"),
    ({"name": "Adam", "lr": {"name": "Cosine", "learning_rate": 0.001, "gamma": 0.1}}, "Optimizer.lr.gamma"),
    ({"name": "AdamW", "lr": {"learning_rate": 0.001}, "regularizer": {"name": "L1", "factor": 0.1}},
     "Optimizer.regularizer.name"),
    ({"name": "Adam", "lr": {"learning_rate": 0.001}, "clip_norm": -1}, "Optimizer.clip_norm"),
    ({"name": "Adam", "lr": {"learning_rate": 0.001}, "lr_mult": {"backbone": float("nan")}},
     "Optimizer.lr_mult.backbone"),
    ({"name": "Adam", "lr": {"learning_rate": 0.001}, "lr_mult": {"backbone": float("inf")}},
     "Optimizer.lr_mult.backbone"),
    ({"name": "Adam", "lr": {"learning_rate": 0.001}, "lr_mult": {"neck": 0}}, "Optimizer.lr_mult.neck"),
    ({"name": "Adam", "lr": {"learning_rate": 0.001}, "lr_mult": {"neck": "0.1"}}, "Optimizer.lr_mult.neck"),
    ({"name": "Adam", "lr": {"learning_rate": 0.001}, "lr_mult": [0.1]}, "Optimizer.lr_mult"),
    ({"name": "Adam", "lr": {"learning_rate": 0.001}, "lr_mult": {"neck.": 0.1}}, "Optimizer.lr_mult"),
])
def test_check_optimizer_config_rejects_with_key(section, key):
    with pytest.raises(ConfigError) as exc:
        check_optimizer_config(section)
    assert f"'{key}'" in str(exc.value)


def test_paddleocr_optimizer_sections_are_accepted():
    """Optimizer sections as written in PaddleOCR's detection configs (det_mv3_db, det_r50_db++, PP-OCR det)."""
    sections = [
        {"name": "Adam", "beta1": 0.9, "beta2": 0.999, "lr": {"learning_rate": 0.001},
         "regularizer": {"name": "L2", "factor": 0}},
        {"name": "Momentum", "momentum": 0.9, "lr": {"name": "DecayLearningRate", "learning_rate": 0.007,
                                                      "epochs": 1000, "factor": 0.9, "end_lr": 0},
         "weight_decay": 0.0001},
        {"name": "Adam", "beta1": 0.9, "beta2": 0.999, "lr": {"name": "Cosine", "learning_rate": 0.001,
                                                              "warmup_epoch": 2},
         "regularizer": {"name": "L2", "factor": 5.0e-05}},
        {"name": "Adam", "lr": {"name": "Step", "learning_rate": 0.001, "step_size": 200, "gamma": 0.1}},
        {"name": "Adam", "lr": {"name": "Linear", "learning_rate": 0.001, "power": 0.9, "end_lr": 0,
                                "step_each_epoch": 1254}, "regularizer": {"name": "L2Decay", "factor": 1e-4}},
        {"name": "AdamW", "lr": {"name": "Piecewise", "decay_epochs": [700, 800], "values": [0.001, 0.0001, 1e-5]},
         "clip_norm_global": 10.0},
    ]
    for sec in sections:
        check_optimizer_config(sec)
        opt, sched = build_optimizer(sec, _model(), 10, 3, log=lambda m: None)
        assert opt.get_lr() == pytest.approx(sched())


def test_project_configs_optimizer_sections_build():
    configs = sorted((ROOT / "configs").rglob("*.yml"))
    assert configs, "no configs/ found"
    for path in configs:
        cfg = load_yaml(str(path))
        if cfg.get("Optimizer") is None:
            continue
        load_config(str(path))  # full validation
        check_optimizer_config(cfg["Optimizer"])
        build_optimizer(cfg["Optimizer"], _model(), 10, 3, log=lambda m: None)
