"""Basic losses against direct numpy formulas; OHEM top-k against PaddleOCR's sort-based selection."""
from __future__ import annotations

import numpy as np
import paddle
import pytest

from dbnetpp.losses.basic import BalanceLoss, DiceLoss, MaskL1Loss, topk_sum


def _t(a):
    return paddle.to_tensor(np.asarray(a, dtype="float32"))


def _np_bce(p, g):
    return -(g * np.log(p) + (1 - g) * np.log(1 - p))


def _sort_ohem(loss, gt, mask, ratio=3, eps=1e-6):
    """PaddleOCR's BalanceLoss reduction: full descending sort, then the first n_neg negatives."""
    pos, neg = gt * mask, (1 - gt) * mask
    n_pos = int(pos.sum())
    n_neg = int(min(neg.sum(), n_pos * ratio))
    neg_loss = np.sort((neg * loss).ravel())[::-1][:n_neg]
    if n_neg == 0:
        return (pos * loss).sum() / (n_pos + eps)
    return ((pos * loss).sum() + neg_loss.sum()) / (n_pos + n_neg + eps)


def test_topk_sum_equals_sorted_prefix_with_ties():
    rng = np.random.default_rng(1)
    values = np.round(rng.random((3, 40, 40)), 1).astype(np.float32)  # many ties
    for k in (1, 7, 100, 2399, 4800, 10_000):
        expected = np.sort(values.ravel())[::-1][:k].astype(np.float64).sum()
        assert float(topk_sum(_t(values), k)) == pytest.approx(expected, rel=1e-6), k


@pytest.mark.parametrize("fast", [False, True])
@pytest.mark.parametrize("gt_kind", ["binary", "soft"])
def test_balance_bce_equals_sort_reference(gt_kind, fast):
    rng = np.random.default_rng(2)
    pred = rng.uniform(0.01, 0.99, (2, 32, 32))
    gt = (rng.random((2, 32, 32)) < 0.2).astype(np.float64)
    if gt_kind == "soft":
        gt = gt * rng.uniform(0.5, 1.0, gt.shape)
    mask = (rng.random((2, 32, 32)) < 0.9).astype(np.float64)
    got = float(BalanceLoss(main_loss_type="BCELoss", fast_ohem=fast)(_t(pred), _t(gt), _t(mask)))
    assert got == pytest.approx(_sort_ohem(_np_bce(pred, gt), gt, mask), rel=1e-5)


@pytest.mark.parametrize("fast", [False, True])
@pytest.mark.parametrize("gt_kind", ["binary", "soft"])
def test_balance_dice_equals_sort_reference(gt_kind, fast):
    rng = np.random.default_rng(3)
    pred = rng.random((2, 16, 16))
    gt = (rng.random((2, 16, 16)) < 0.3).astype(np.float64)
    mask = np.ones_like(gt)
    if gt_kind == "soft":
        mask = rng.uniform(0.0, 1.0, gt.shape)
    dice = 1 - 2 * (pred * gt * mask).sum() / ((pred * mask).sum() + (gt * mask).sum() + 1e-6)
    loss = np.full(gt.shape, dice)
    got = float(BalanceLoss(main_loss_type="DiceLoss", fast_ohem=fast)(_t(pred), _t(gt), _t(mask)))
    assert got == pytest.approx(_sort_ohem(loss, gt, mask), rel=1e-5)


def _paddleocr_balance(pred, gt, mask, ratio=3, eps=1e-6):
    """PaddleOCR's BalanceLoss around DiceLoss, step by step in Paddle ops (its order of operations)."""
    positive, negative = gt * mask, (1 - gt) * mask
    n_pos = int(positive.sum())
    n_neg = int(min(negative.sum(), n_pos * ratio))
    dice = 1 - 2.0 * paddle.sum(pred * gt * mask) / (paddle.sum(pred * mask) + paddle.sum(gt * mask) + eps)
    neg = paddle.reshape(negative * dice, shape=[-1]).sort(descending=True)[:n_neg]
    return ((positive * dice).sum() + neg.sum()) / (n_pos + n_neg + eps)


def test_default_ohem_gives_paddleocr_values_and_gradients_bit_for_bit():
    """The default follows PaddleOCR's operations, so value and gradient are its bits; the fast path
    agrees to float32 rounding only (which a training run then amplifies)."""
    rng = np.random.default_rng(4)
    gt = _t((rng.random((2, 48, 48)) < 0.2))
    mask = _t((rng.random((2, 48, 48)) < 0.9))
    results = {}
    for name, fn in (("paddleocr", lambda p: _paddleocr_balance(p, gt, mask)),
                     ("default", lambda p: BalanceLoss()(p, gt, mask)),
                     ("fast", lambda p: BalanceLoss(fast_ohem=True)(p, gt, mask))):
        pred = _t(rng.random((2, 48, 48)) if not results else results["pred"])
        results.setdefault("pred", pred.numpy())
        pred.stop_gradient = False
        value = fn(pred)
        value.backward()
        results[name] = (value.numpy(), pred.grad.numpy())
    assert results["default"][0].tobytes() == results["paddleocr"][0].tobytes()
    assert results["default"][1].tobytes() == results["paddleocr"][1].tobytes()
    np.testing.assert_allclose(results["fast"][0], results["paddleocr"][0], rtol=1e-5)
    np.testing.assert_allclose(results["fast"][1], results["paddleocr"][1], rtol=1e-4, atol=1e-12)
    assert results["fast"][1].tobytes() != results["paddleocr"][1].tobytes()  # rounding differs: why it is an option


def test_balance_without_negatives_and_flags():
    pred, gt, mask = _t(np.full((1, 4, 4), 0.7)), _t(np.ones((1, 4, 4))), _t(np.ones((1, 4, 4)))
    expected = -np.log(0.7) * 16 / (16 + 1e-6)
    assert float(BalanceLoss(main_loss_type="BCELoss")(pred, gt, mask)) == pytest.approx(expected, rel=1e-6)
    balanced, origin = BalanceLoss(main_loss_type="BCELoss", return_origin=True)(pred, gt, mask)
    assert origin.shape == [1, 4, 4]
    plain = BalanceLoss(main_loss_type="BCELoss", balance_loss=False)(pred, gt, mask)
    assert plain.shape == [1, 4, 4]
    with pytest.raises(ValueError, match="main_loss_type"):
        BalanceLoss(main_loss_type="Euclid")


def test_dice_and_masked_l1_formulas():
    rng = np.random.default_rng(4)
    p, g, m = rng.random((2, 8, 8)), rng.random((2, 8, 8)), (rng.random((2, 8, 8)) > 0.3).astype(float)
    dice = 1 - 2 * (p * g * m).sum() / ((p * m).sum() + (g * m).sum() + 1e-6)
    assert float(DiceLoss()(_t(p), _t(g), _t(m))) == pytest.approx(dice, rel=1e-5)
    w = rng.random((2, 8, 8))
    dice_w = 1 - 2 * (p * g * m * w).sum() / ((p * m * w).sum() + (g * m * w).sum() + 1e-6)
    assert float(DiceLoss()(_t(p), _t(g), _t(m), weights=_t(w))) == pytest.approx(dice_w, rel=1e-5)
    l1 = (np.abs(p - g) * m).sum() / (m.sum() + 1e-6)
    assert float(MaskL1Loss()(_t(p), _t(g), _t(m))) == pytest.approx(l1, rel=1e-5)
    with pytest.raises(ValueError, match="shape mismatch"):
        DiceLoss()(_t(p), _t(g[:1]), _t(m))
