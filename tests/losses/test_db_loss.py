"""DBLoss against upstream PaddleOCR values (db_loss/values.json) and its input checks."""
from __future__ import annotations

import json

import numpy as np
import paddle
import pytest

from dbnetpp.errors import ConfigError
from dbnetpp.losses import DBLoss
from dbnetpp.registry import LOSSES

LABELS = ("shrink_map", "shrink_mask", "threshold_map", "threshold_mask")
OUT_KEYS = ("loss", "loss_shrink_maps", "loss_threshold_maps", "loss_binary_maps")


@pytest.fixture(scope="module")
def loss_ref(ref_dir):
    folder = ref_dir / "db_loss"
    values = json.loads((folder / "values.json").read_text())
    maps = np.load(folder / "pred_maps.npy")
    labels = {k: np.load(folder / f"{k}.npy") for k in LABELS}
    return values, maps, labels


def _run(loss_ref, variant):
    values, maps, labels = loss_ref
    res = values["results"][variant]
    loss = LOSSES.build({"name": "DBLoss", **res["constructor"]}, where="Loss")
    out = loss({"maps": paddle.to_tensor(maps)}, {k: paddle.to_tensor(v) for k, v in labels.items()})
    return out, res["losses"]


@pytest.mark.smoke
@pytest.mark.parametrize("variant", ["DiceLoss", "BCELoss"])
def test_matches_paddleocr(loss_ref, variant):
    out, ref = _run(loss_ref, variant)
    assert set(out) == set(OUT_KEYS)
    for key in OUT_KEYS:
        assert out[key].shape == [] and str(out[key].dtype) == "paddle.float32"
        assert float(out[key]) == pytest.approx(ref[key]["value"], rel=1e-5), key


@pytest.mark.parametrize("variant", ["DiceLoss_prev6_crosscheck", "DiceLoss_no_balance_extra"])
def test_matches_paddleocr_extras(loss_ref, variant):
    out, ref = _run(loss_ref, variant)
    for key in OUT_KEYS:
        assert float(out[key]) == pytest.approx(ref[key]["value"], rel=1e-5), key


def test_ohem_counts(loss_ref):
    values, _, labels = loss_ref
    pos = labels["shrink_map"] * labels["shrink_mask"]
    neg = (1 - labels["shrink_map"]) * labels["shrink_mask"]
    assert int(pos.sum()) == values["intermediate"]["positive_count"]
    assert int(min(neg.sum(), 3 * int(pos.sum()))) == values["intermediate"]["negative_count_after_ohem"]


def test_gradients_reach_all_three_maps(loss_ref):
    _, maps, labels = loss_ref
    for main in ("DiceLoss", "BCELoss", "MaskL1Loss"):
        pred = paddle.to_tensor(maps, stop_gradient=False)
        out = DBLoss(main_loss_type=main)({"maps": pred}, {k: paddle.to_tensor(v) for k, v in labels.items()})
        out["loss"].backward()
        grad = pred.grad.numpy()
        assert np.isfinite(grad).all()
        assert all(np.abs(grad[:, c]).sum() > 0 for c in range(3)), main


def test_labels_are_taken_by_name_and_checked():
    maps = paddle.rand([1, 3, 8, 8])
    labels = {k: paddle.ones([1, 8, 8]) for k in LABELS}
    loss = DBLoss()
    reordered = dict(reversed(list(labels.items())))
    assert float(loss({"maps": maps}, reordered)["loss"]) == pytest.approx(float(loss({"maps": maps}, labels)["loss"]))
    numpy_labels = {k: v.numpy() for k, v in labels.items()}
    assert float(loss({"maps": maps}, numpy_labels)["loss"]) == pytest.approx(float(loss({"maps": maps}, labels)["loss"]))
    with pytest.raises(KeyError, match="threshold_mask"):
        loss({"maps": maps}, {k: v for k, v in labels.items() if k != "threshold_mask"})
    with pytest.raises(ValueError, match="shrink_map"):
        loss({"maps": maps}, {**labels, "shrink_map": paddle.ones([1, 4, 4])})
    with pytest.raises(ValueError, match=r"\[N, 3, H, W\]"):
        loss({"maps": maps[:, :1]}, labels)
    with pytest.raises(TypeError, match="mapping"):
        loss({"maps": maps}, [None] + [labels[k] for k in LABELS])


def test_yaml_keys():
    loss = LOSSES.build({"name": "DBLoss", "balance_loss": True, "main_loss_type": "BCELoss", "alpha": 5,
                         "beta": 10, "ohem_ratio": 3, "eps": 1e-6}, where="Loss")
    assert loss.alpha == 5 and loss.bce_loss.negative_ratio == 3
    with pytest.raises(ConfigError, match="main_loss_type must be one of"):
        LOSSES.build({"name": "DBLoss", "main_loss_type": "FocalLoss"}, where="Loss")
    with pytest.raises(ConfigError, match="Did you mean 'ohem_ratio'"):
        LOSSES.build({"name": "DBLoss", "ohem_ratio_": 3}, where="Loss")
