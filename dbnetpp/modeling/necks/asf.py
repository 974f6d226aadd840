"""Adaptive Scale Fusion (ASF) block of DBNet++.

"Real-Time Scene Text Detection with Differentiable Binarization and Adaptive Scale
Fusion", Liao, Zou, Wan, Yao, Bai, TPAMI 2022.  This is the "scale + spatial" attention
variant as PaddleOCR implements it (parameter names ``conv``, ``spatial_scale.{0,2}``,
``channel_scale.0`` match PaddleOCR, so its DB++ weights load by name).

This module depends on nothing but paddle, so it can be dropped into other code bases.
"""
from __future__ import annotations

from typing import Sequence

import paddle
from paddle import nn

__all__ = ["ASFBlock"]


def _kaiming() -> paddle.ParamAttr:
    return paddle.ParamAttr(initializer=nn.initializer.KaimingUniform())


class ASFBlock(nn.Layer):
    """Re-weights the ``S`` pyramid levels of a concatenated FPN feature per pixel.

    With ``X = concat(F_1..F_S)`` (``[N, S*C, H, W]``, here ``S=4``, ``C=in_channels/4``)::

        Z     = conv3x3(X)                                   # [N, inter_channels, H, W] (with bias)
        A_sp  = sigmoid(conv1x1(relu(conv3x3(mean_c(Z)))))   # [N, 1, H, W]  spatial attention
        A     = sigmoid(conv1x1(Z + A_sp))                   # [N, S, H, W]  one weight map per level
                                                             #   (gate_norm: sigmoid(BN(conv1x1(Z + A_sp))))
        out   = concat(A[:, i] * F_i for i in 1..S)          # [N, S*C, H, W]

    Args:
        in_channels: channels of the concatenated input ``X``.
        inter_channels: channels of ``Z``.
        out_features_num: number of fused levels ``S``.
        gate_init: initialisation of the last 1x1 conv (the one before the sigmoid that gives ``A``):
            ``"kaiming"`` (PaddleOCR's, the default) or ``"zeros"``: ``A = 0.5`` for every level and pixel
            at the start, so the block begins as an even fusion and learns its attention from there.
            With a pretrained backbone the FPN features are large (mean ``|X|`` about 6 with PP-OCRv3's
            backbone, against 0.06 from scratch) and with ``"kaiming"`` about 80 % of the attention
            values start saturated (``sigmoid' < 0.01``: no gradient) and about 40 % near 0, switching
            their level off; ``"zeros"`` avoids both (``tests/modeling/test_db_fpn.py``).
        gate_norm: put a BatchNorm over the ``S`` gate logits before the sigmoid (not in PaddleOCR; adds
            the parameters ``gate_norm.*``).  Trained from scratch with PaddleOCR's block, the logits grow
            within a few dozen steps until nearly every attention value is saturated (``sigmoid' < 0.01``),
            most of them near 0 or 1, and the levels switched off pass almost no gradient to the FPN and
            the head; standardised logits keep the gate in its sensitive range unless the BatchNorm's scale
            itself learns to grow (``benchmarks/asf.py`` measures both).
    """

    GATE_INITS = ("kaiming", "zeros")

    def __init__(self, in_channels: int, inter_channels: int, out_features_num: int = 4,
                 gate_init: str = "kaiming", gate_norm: bool = False):
        super().__init__()
        if gate_init not in self.GATE_INITS:
            raise ValueError(f"gate_init must be one of {list(self.GATE_INITS)}, got {gate_init!r}")
        if not isinstance(gate_norm, bool):
            raise ValueError(f"gate_norm must be true or false, got {gate_norm!r}")
        self.in_channels = in_channels
        self.inter_channels = inter_channels
        self.out_features_num = out_features_num
        self.conv = nn.Conv2D(in_channels, inter_channels, 3, padding=1)
        self.spatial_scale = nn.Sequential(
            nn.Conv2D(1, 1, 3, padding=1, weight_attr=_kaiming(), bias_attr=False),
            nn.ReLU(),
            nn.Conv2D(1, 1, 1, weight_attr=_kaiming(), bias_attr=False),
            nn.Sigmoid(),
        )
        gate = _kaiming() if gate_init == "kaiming" else paddle.ParamAttr(initializer=nn.initializer.Constant(0.0))
        self.channel_scale = nn.Sequential(
            nn.Conv2D(inter_channels, out_features_num, 1, weight_attr=gate, bias_attr=False),
            nn.Sigmoid(),
        )
        self.gate_norm = nn.BatchNorm2D(out_features_num) if gate_norm else None

    def forward(self, fuse_features: paddle.Tensor, features_list: Sequence[paddle.Tensor]) -> paddle.Tensor:
        """``fuse_features`` ``[N, in_channels, H, W]``; ``features_list`` the ``S`` levels it was
        concatenated from, each ``[N, C_i, H, W]``.  Returns ``[N, sum(C_i), H, W]``."""
        if len(features_list) != self.out_features_num:
            raise ValueError(f"ASFBlock expects {self.out_features_num} feature maps, got {len(features_list)}")
        z = self.conv(fuse_features)
        spatial = self.spatial_scale(paddle.mean(z, axis=1, keepdim=True))
        scores = self.gate_logits(z, spatial)
        scores = nn.functional.sigmoid(scores)
        return paddle.concat([scores[:, i:i + 1] * feat for i, feat in enumerate(features_list)], axis=1)

    def gate_logits(self, z: paddle.Tensor, spatial: paddle.Tensor) -> paddle.Tensor:
        """The pre-sigmoid attention ``[N, S, H, W]`` from ``Z`` and ``A_sp``."""
        logits = self.channel_scale[0](spatial + z)
        return logits if self.gate_norm is None else self.gate_norm(logits)
