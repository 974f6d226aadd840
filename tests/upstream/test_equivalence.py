"""Upstream PaddleOCR release/2.5 (through ppocr_patches) and dbnetpp compute the same thing:
same state-dict names, same model outputs and DB loss from the same weights and batch, for
det_mv3_db and DBNet++ MobileNetV3 (whose ASF block upstream gets from dbnetpp)."""
from __future__ import annotations

import json

import numpy as np
import paddle
import pytest

KINDS = ("db", "dbpp")
TOL = 1e-5


def our_model(arch: dict, seed: int):
    from dbnetpp.modeling import build_model

    paddle.seed(seed)
    model = build_model(arch)
    # non-trivial BN running statistics, so that the eval-mode comparison means something
    rng = np.random.default_rng(seed)
    state = model.state_dict()
    for name, value in state.items():
        if name.endswith("._mean"):
            value.set_value((0.1 * rng.standard_normal(value.shape)).astype("float32"))
        elif name.endswith("._variance"):
            value.set_value(rng.uniform(0.5, 1.5, value.shape).astype("float32"))
    return model


@pytest.fixture(scope="module")
def probed(route, synth_data, base_configs, tmp_path_factory):
    """Per kind: our model (at its initial weights), the config, and upstream's results."""
    work = tmp_path_factory.mktemp("probe")
    jobs, ours = [], {}
    for i, kind in enumerate(KINDS):
        cfg = route.small_config(base_configs[kind], synth_data, work / f"out_{kind}", augment=False)
        model = our_model(cfg["Architecture"], seed=100 + i)
        weights = work / f"{kind}.pdparams"
        paddle.save(model.state_dict(), str(weights))
        jobs.append({"config": str(route.write_yaml(cfg, work / f"{kind}.yml")), "weights": str(weights),
                     "out": str(work / f"{kind}.npz")})
        ours[kind] = (model, cfg, weights)
    jobs_file = work / "jobs.json"
    jobs_file.write_text(json.dumps(jobs), encoding="utf-8")
    route.probe(jobs_file)
    return {kind: (*ours[kind], dict(np.load(job["out"]))) for kind, job in zip(KINDS, jobs)}


@pytest.mark.parametrize("kind", KINDS)
def test_same_state_dict_names(probed, kind):
    model, _, _, up = probed[kind]
    assert list(model.state_dict()) == [str(n) for n in up["names"]]
    if kind == "dbpp":
        assert any(str(n).startswith("neck.asf.") for n in up["names"])


@pytest.mark.smoke
@pytest.mark.parametrize("kind", KINDS)
def test_same_outputs_and_loss(probed, kind):
    from dbnetpp.losses import DBLoss

    model, cfg, weights, up = probed[kind]
    model.set_state_dict(paddle.load(str(weights)))
    image = paddle.to_tensor(up["batch.image"])

    model.eval()
    with paddle.no_grad():
        eval_maps = model(image)["maps"].numpy()
    np.testing.assert_allclose(eval_maps, up["eval_maps"], rtol=0, atol=TOL)

    model.train()
    preds = model(image)
    np.testing.assert_allclose(preds["maps"].numpy(), up["train_maps"], rtol=0, atol=TOL)

    loss_cfg = {k: v for k, v in cfg["Loss"].items() if k != "name"}
    labels = {k: paddle.to_tensor(up[f"batch.{k}"])
              for k in ("shrink_map", "shrink_mask", "threshold_map", "threshold_mask")}
    assert float(labels["shrink_map"].sum()) > 0, "the batch has no text pixels: the loss check would be weak"
    losses = DBLoss(**loss_cfg)(preds, labels)
    for key in ("loss", "loss_shrink_maps", "loss_threshold_maps", "loss_binary_maps"):
        ours, theirs = float(losses[key]), float(up[f"loss.{key}"])
        assert abs(ours - theirs) <= TOL * max(1.0, abs(theirs)), f"{key}: dbnetpp {ours} vs PaddleOCR {theirs}"

    # the train-mode forward updated BN running statistics identically
    state = model.state_dict()
    for name in (n for n in up if n.startswith("bn.")):
        np.testing.assert_allclose(state[name[3:]].numpy(), up[name], rtol=0, atol=TOL, err_msg=name)
