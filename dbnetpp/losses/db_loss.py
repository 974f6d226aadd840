"""DB loss: ``alpha * L_s + beta * L_t + L_b`` (Liao et al., AAAI 2020, PaddleOCR's weighting).

* ``L_s``: probability (shrink) map P vs ``shrink_map`` under ``shrink_mask``, via
  :class:`BalanceLoss` (OHEM 1:``ohem_ratio``) around ``main_loss_type``;
* ``L_t``: threshold map T vs ``threshold_map``, masked L1 under ``threshold_mask``;
* ``L_b``: approximate binary map B vs ``shrink_map``, Dice under ``shrink_mask``.
"""
from __future__ import annotations

from typing import Any, Dict, Mapping

import paddle
from paddle import nn

from ..registry import LOSSES
from .basic import BalanceLoss, DiceLoss, MaskL1Loss
from ..values import bounded

__all__ = ["DBLoss", "LABEL_KEYS"]

LABEL_KEYS = ("shrink_map", "shrink_mask", "threshold_map", "threshold_mask")


@LOSSES.register()
class DBLoss(nn.Layer):
    """Differentiable-binarization loss.

    Args:
        balance_loss: apply OHEM balancing to the shrink-map loss.
        main_loss_type: shrink-map loss, ``"DiceLoss"`` (default, PaddleOCR's det_mv3_db),
            ``"BCELoss"`` (the DB paper and PaddleOCR's DB++ configs) or ``"MaskL1Loss"``.
        alpha: weight of the shrink-map loss.
        beta: weight of the threshold-map loss.
        ohem_ratio: negatives kept per positive by OHEM.
        eps: denominator guard of every ratio.
        fast_ohem: OHEM without PaddleOCR's full sort (see :class:`BalanceLoss`; default False:
            PaddleOCR's values and gradients bit for bit).

    ``forward(predicts, batch)``: ``predicts["maps"]`` is the train-mode head output
    ``[N, 3, H, W]`` (P, T, B); ``batch`` maps ``shrink_map``, ``shrink_mask``, ``threshold_map``,
    ``threshold_mask`` to ``[N, H, W]`` tensors.  Returns 0-D tensors ``loss``,
    ``loss_shrink_maps``, ``loss_threshold_maps``, ``loss_binary_maps`` (the last three already weighted).
    """

    def __init__(self, balance_loss: bool = True, main_loss_type: str = "DiceLoss", alpha: float = 5,
                 beta: float = 10, ohem_ratio: float = 3, eps: float = 1e-6, fast_ohem: bool = False):
        super().__init__()
        self.alpha = bounded(alpha, "alpha", 0.0)
        self.beta = bounded(beta, "beta", 0.0)
        ohem_ratio = bounded(ohem_ratio, "ohem_ratio", 0.0, low_open=True)
        eps = bounded(eps, "eps", 0.0, low_open=True)
        self.bce_loss = BalanceLoss(balance_loss=balance_loss, main_loss_type=main_loss_type,
                                    negative_ratio=ohem_ratio, eps=eps, fast_ohem=fast_ohem)
        self.l1_loss = MaskL1Loss(eps=eps)
        self.dice_loss = DiceLoss(eps=eps)

    @staticmethod
    def _labels(batch: Mapping[str, Any], shape) -> Dict[str, paddle.Tensor]:
        if not isinstance(batch, Mapping):
            raise TypeError(f"DBLoss needs the batch as a mapping with keys {list(LABEL_KEYS)}, "
                            f"got {type(batch).__name__}")
        out = {}
        for key in LABEL_KEYS:
            if key not in batch:
                raise KeyError(f"DBLoss: batch has no '{key}' (keys: {', '.join(map(str, batch))}); "
                               f"the training pipeline must keep {list(LABEL_KEYS)}")
            value = batch[key]
            if not isinstance(value, paddle.Tensor):
                value = paddle.to_tensor(value, dtype="float32")
            if list(value.shape) != list(shape):
                raise ValueError(f"DBLoss: '{key}' has shape {list(value.shape)}, expected {list(shape)} "
                                 "(the predicted maps' [N, H, W])")
            out[key] = value
        return out

    def forward(self, predicts: Mapping[str, paddle.Tensor], batch: Mapping[str, Any]) -> Dict[str, paddle.Tensor]:
        maps = predicts["maps"]
        if maps.ndim != 4 or maps.shape[1] != 3:
            raise ValueError(f"DBLoss needs train-mode maps [N, 3, H, W] (P, T, B), got {list(maps.shape)}")
        shrink_maps, threshold_maps, binary_maps = maps[:, 0], maps[:, 1], maps[:, 2]
        labels = self._labels(batch, shrink_maps.shape)

        loss_shrink = self.alpha * self.bce_loss(shrink_maps, labels["shrink_map"], labels["shrink_mask"])
        loss_threshold = self.beta * self.l1_loss(threshold_maps, labels["threshold_map"], labels["threshold_mask"])
        loss_binary = self.dice_loss(binary_maps, labels["shrink_map"], labels["shrink_mask"])
        return {
            "loss": loss_shrink + loss_threshold + loss_binary,
            "loss_shrink_maps": loss_shrink,
            "loss_threshold_maps": loss_threshold,
            "loss_binary_maps": loss_binary,
        }
