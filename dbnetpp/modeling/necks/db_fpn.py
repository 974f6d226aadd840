"""DBFPN: the feature-pyramid neck of DBNet, optionally with DBNet++'s Adaptive Scale Fusion.

DBNet: Liao et al., "Real-time Scene Text Detection with Differentiable Binarization", AAAI 2020;
ASF: Liao et al., TPAMI 2022.  Layer names and order follow PaddleOCR's ``DBFPN``.
"""
from __future__ import annotations

from typing import List, Sequence

import paddle
from paddle import nn
import paddle.nn.functional as F

from ...registry import NECKS
from .asf import ASFBlock

__all__ = ["DBFPN"]


def _conv(in_channels: int, out_channels: int, kernel_size: int) -> nn.Conv2D:
    return nn.Conv2D(in_channels, out_channels, kernel_size, padding=kernel_size // 2,
                     weight_attr=paddle.ParamAttr(initializer=nn.initializer.KaimingUniform()),
                     bias_attr=False)


def check_fpn_channels(neck: str, in_channels: Sequence[int], out_channels: int) -> List[int]:
    """The four input widths as a list; ``ValueError`` unless there are four levels and ``out_channels``
    divides into the four concatenated quarters."""
    in_channels = list(in_channels)
    if len(in_channels) != 4:
        raise ValueError(f"{neck} needs four input levels, got in_channels={in_channels}")
    if out_channels % 4:
        raise ValueError(f"out_channels must be divisible by 4, got {out_channels}")
    return in_channels


def _up(x: paddle.Tensor, factor: int) -> paddle.Tensor:
    """Nearest-neighbour upsampling by an integer ``factor``: ``[N, C, H, W] -> [N, C, fH, fW]`` with
    ``out[..., f*h + i, f*w + j] = x[..., h, w]``.

    Training and dygraph inference call PaddleOCR's ``F.upsample(scale_factor=f, mode="nearest")``, so the
    gradients are PaddleOCR's bit for bit (the backward pass sums the ``f * f`` copies in that kernel's order).
    A graph being exported (``paddle.jit.to_static``) gets the same values as a pixel repeat (tile +
    reshape) and so holds no interpolation op: Paddle 3.3 stores that op's ``scale`` as a float64 list,
    which paddle2onnx 2.1.0 rejects and Paddle Inference's oneDNN placement cannot convert (Paddle #77757,
    #79749).
    """
    if paddle.in_dynamic_mode():
        return F.upsample(x, scale_factor=factor, mode="nearest", align_mode=1)
    y = paddle.tile(x.unsqueeze([3, 5]), [1, 1, 1, factor, 1, factor])  # [N, C, H, f, W, f]
    return y.flatten(2, 3).flatten(3, 4)


@NECKS.register()
class DBFPN(nn.Layer):
    """Top-down FPN that fuses ``[C2, C3, C4, C5]`` into one 1/4-scale map.

    1. 1x1 lateral convs (no bias) map each ``C_i`` to ``out_channels``.
    2. Top-down: ``out4 = in4 + up2(in5)``, ``out3 = in3 + up2(out4)``, ``out2 = in2 + up2(out3)``
       (nearest-neighbour upsampling).
    3. 3x3 convs (no bias) reduce each level to ``out_channels / 4``; ``p5, p4, p3`` are
       upsampled by 8, 4, 2 to 1/4 scale and concatenated as ``[p5, p4, p3, p2]``.
    4. With ``use_asf`` the concatenation goes through :class:`ASFBlock`; ``asf_gate_init`` is its
       ``gate_init`` (``kaiming``, PaddleOCR's default, or ``zeros``: an even fusion at the start,
       recommended when the backbone is pretrained, see :class:`ASFBlock`); ``asf_gate_norm`` its
       ``gate_norm`` (a BatchNorm on the gate logits, for training from scratch).  PaddleOCR's DBFPN
       ignores both keys, so configs that set them stay loadable there (``asf_gate_norm`` adds weights
       PaddleOCR's block has not).

    No BatchNorm or activation is used.  Input: four maps at strides 4/8/16/32 with channels
    ``in_channels``; output ``[N, out_channels, H/4, W/4]``.
    """

    def __init__(self, in_channels: Sequence[int], out_channels: int = 256, use_asf: bool = False,
                 asf_gate_init: str = "kaiming", asf_gate_norm: bool = False):
        super().__init__()
        in_channels = check_fpn_channels("DBFPN", in_channels, out_channels)
        self.out_channels = out_channels
        self.use_asf = use_asf
        self.in2_conv = _conv(in_channels[0], out_channels, 1)
        self.in3_conv = _conv(in_channels[1], out_channels, 1)
        self.in4_conv = _conv(in_channels[2], out_channels, 1)
        self.in5_conv = _conv(in_channels[3], out_channels, 1)
        self.p5_conv = _conv(out_channels, out_channels // 4, 3)
        self.p4_conv = _conv(out_channels, out_channels // 4, 3)
        self.p3_conv = _conv(out_channels, out_channels // 4, 3)
        self.p2_conv = _conv(out_channels, out_channels // 4, 3)
        if use_asf:
            self.asf = ASFBlock(out_channels, out_channels // 4, gate_init=asf_gate_init, gate_norm=asf_gate_norm)

    def forward(self, features: List[paddle.Tensor]) -> paddle.Tensor:
        c2, c3, c4, c5 = features
        in5 = self.in5_conv(c5)
        in4 = self.in4_conv(c4)
        in3 = self.in3_conv(c3)
        in2 = self.in2_conv(c2)

        out4 = in4 + _up(in5, 2)  # 1/16
        out3 = in3 + _up(out4, 2)  # 1/8
        out2 = in2 + _up(out3, 2)  # 1/4

        p5 = _up(self.p5_conv(in5), 8)
        p4 = _up(self.p4_conv(out4), 4)
        p3 = _up(self.p3_conv(out3), 2)
        p2 = self.p2_conv(out2)
        fuse = paddle.concat([p5, p4, p3, p2], axis=1)
        if self.use_asf:
            fuse = self.asf(fuse, [p5, p4, p3, p2])
        return fuse
