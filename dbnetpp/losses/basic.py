"""Basic segmentation losses used by DB: Dice, masked L1, BCE and the OHEM-balanced wrapper.

Semantics follow PaddleOCR's ``det_basic_loss.py`` (itself after WenmuZhou/DBNet.pytorch).  By
default the OHEM step runs PaddleOCR's operations in its order (sort every negative pixel, keep the
first ``k``), so values and gradients are PaddleOCR's bit for bit; ``fast_ohem`` selects the hardest
negatives with an unsorted ``paddle.topk`` of the needed ``k`` instead, and skips the selection
altogether when its result is known in advance (equal up to float32 rounding, faster on CPU).
All inputs are ``[N, H, W]`` float tensors; ``gt`` and ``mask`` are labels (no gradient).
"""
from __future__ import annotations

from typing import Optional

import paddle
from paddle import nn
import paddle.nn.functional as F

__all__ = ["BalanceLoss", "BCELoss", "DiceLoss", "MaskL1Loss", "topk_sum"]


def _check_same_shape(**tensors):
    shapes = {name: list(t.shape) for name, t in tensors.items() if t is not None}
    if len({tuple(s) for s in shapes.values()}) > 1:
        raise ValueError("shape mismatch: " + ", ".join(f"{k} {v}" for k, v in shapes.items()))


class DiceLoss(nn.Layer):
    """``1 - 2 * sum(P * G * M) / (sum(P * M) + sum(G * M) + eps)`` (a 0-D tensor)."""

    def __init__(self, eps: float = 1e-6):
        super().__init__()
        self.eps = eps

    def forward(self, pred: paddle.Tensor, gt: paddle.Tensor, mask: paddle.Tensor,
                weights: Optional[paddle.Tensor] = None) -> paddle.Tensor:
        _check_same_shape(pred=pred, gt=gt, mask=mask, weights=weights)
        if weights is not None:
            mask = weights * mask
        intersection = paddle.sum(pred * gt * mask)
        union = paddle.sum(pred * mask) + paddle.sum(gt * mask) + self.eps
        return 1 - 2.0 * intersection / union


class MaskL1Loss(nn.Layer):
    """``sum(|P - G| * M) / (sum(M) + eps)`` (a 0-D tensor)."""

    def __init__(self, eps: float = 1e-6):
        super().__init__()
        self.eps = eps

    def forward(self, pred: paddle.Tensor, gt: paddle.Tensor, mask: paddle.Tensor) -> paddle.Tensor:
        _check_same_shape(pred=pred, gt=gt, mask=mask)
        return (paddle.abs(pred - gt) * mask).sum() / (mask.sum() + self.eps)


class BCELoss(nn.Layer):
    """Binary cross-entropy of probabilities; ``mask`` is accepted but not applied (as upstream:
    the balancing weights of :class:`BalanceLoss` do the masking)."""

    def __init__(self, reduction: str = "mean"):
        super().__init__()
        self.reduction = reduction

    def forward(self, pred: paddle.Tensor, gt: paddle.Tensor, mask: Optional[paddle.Tensor] = None) -> paddle.Tensor:
        return F.binary_cross_entropy(pred, gt, reduction=self.reduction)


def topk_sum(values: paddle.Tensor, k: int) -> paddle.Tensor:
    """Sum of the ``k`` largest entries of ``values`` (any shape), differentiable.

    Selects the same entries as ``sort(values, descending)[:k].sum()`` (PaddleOCR's OHEM) with an
    unsorted top-k, several times faster than the full sort on CPU (only the summation order of
    the selected values differs, i.e. float32 rounding).  Ties at the k-th value do not change the sum.
    """
    flat = paddle.reshape(values, [-1])
    if k >= flat.shape[0]:
        return flat.sum()
    return paddle.topk(flat, k, sorted=False)[0].sum()


def _is_binary(x: paddle.Tensor) -> bool:
    return bool(paddle.all((x == 0) | (x == 1)))


class BalanceLoss(nn.Layer):
    """Main loss balanced by online hard example mining (OHEM, ``negative_ratio`` : 1).

    With ``pos = G * M`` and ``neg = (1 - G) * M``:
    ``n_pos = int(sum(pos))``, ``n_neg = int(min(sum(neg), n_pos * negative_ratio))`` and
    ``L = (sum(pos * l) + sum(top_{n_neg}(neg * l))) / (n_pos + n_neg + eps)`` where ``l`` is the
    main loss (per pixel for BCELoss, a scalar broadcast over pixels for DiceLoss/MaskL1Loss).
    Without ``balance_loss`` the plain main loss is returned.

    ``fast_ohem``: False (default) computes this as PaddleOCR does, with a full descending sort of
    ``neg * l``; True sums ``l * sum(pos)`` and an unsorted top-k (no selection at all for a scalar main
    loss with 0/1 labels), which changes the result only by float32 rounding but, since Adam turns the
    sign of a near-zero gradient into a full step, makes a training run drift away from PaddleOCR's.
    """

    MAIN_LOSSES = ("DiceLoss", "BCELoss", "MaskL1Loss")

    def __init__(self, balance_loss: bool = True, main_loss_type: str = "DiceLoss", negative_ratio: float = 3,
                 return_origin: bool = False, eps: float = 1e-6, fast_ohem: bool = False):
        super().__init__()
        self.fast_ohem = bool(fast_ohem)
        if main_loss_type not in self.MAIN_LOSSES:
            raise ValueError(f"main_loss_type must be one of {list(self.MAIN_LOSSES)}, got {main_loss_type!r}")
        self.balance_loss = balance_loss
        self.main_loss_type = main_loss_type
        self.negative_ratio = negative_ratio
        self.return_origin = return_origin
        self.eps = eps
        if main_loss_type == "DiceLoss":
            self.loss = DiceLoss(eps)
        elif main_loss_type == "BCELoss":
            self.loss = BCELoss(reduction="none")
        else:
            self.loss = MaskL1Loss(eps)

    def forward(self, pred: paddle.Tensor, gt: paddle.Tensor, mask: paddle.Tensor):
        _check_same_shape(pred=pred, gt=gt, mask=mask)
        positive = gt * mask
        negative = (1 - gt) * mask
        positive_count = int(positive.sum())
        negative_count = int(min(float(negative.sum()), positive_count * self.negative_ratio))
        loss = self.loss(pred, gt, mask=mask)
        if not self.balance_loss:
            return loss
        balanced = self._balance(loss, positive, negative, positive_count, negative_count)
        return (balanced, loss) if self.return_origin else balanced

    def _balance(self, loss, positive, negative, positive_count: int, negative_count: int) -> paddle.Tensor:
        if not self.fast_ohem:
            return self._balance_sorted(loss, positive, negative, positive_count, negative_count)
        if loss.ndim == 0:
            # Scalar main loss: sum(pos * l) = l * sum(pos), and for 0/1 labels with l >= 0 the
            # top n_neg entries of neg * l are all equal to l, so no selection is needed.
            positive_loss = loss * positive.sum()
            if negative_count > 0 and _is_binary(negative) and float(loss) >= 0:
                negative_loss = loss * float(negative_count)
            elif negative_count > 0:
                negative_loss = topk_sum(negative * loss, negative_count)
        else:
            positive_loss = (positive * loss).sum()
            if negative_count > 0:
                negative_loss = topk_sum(negative * loss, negative_count)
        if negative_count > 0:
            return (positive_loss + negative_loss) / (positive_count + negative_count + self.eps)
        return positive_loss / (positive_count + self.eps)

    def _balance_sorted(self, loss, positive, negative, positive_count: int, negative_count: int) -> paddle.Tensor:
        """PaddleOCR's order of operations: ``pos * l`` summed; ``neg * l`` flattened, sorted in descending
        order, its first ``n_neg`` summed (the same values and, through the sort, the same gradients)."""
        positive_loss = (positive * loss).sum()
        if negative_count <= 0:
            return positive_loss / (positive_count + self.eps)
        hardest = paddle.reshape(negative * loss, [-1]).sort(descending=True)[:negative_count]
        return (positive_loss + hardest.sum()) / (positive_count + negative_count + self.eps)
