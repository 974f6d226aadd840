"""RSEFPN: the residual squeeze-and-excitation FPN neck of PP-OCRv3's mobile text detector.

"PP-OCRv3: More Attempts for the Improvement of Ultra Lightweight OCR System" (Li et al., 2022),
section 2.1: every lateral 1x1 conv and every 3x3 output conv of DBFPN is followed by a
squeeze-and-excitation block whose output is added back to the conv output (``shortcut``).
Layer names, order of construction and upsampling follow PaddleOCR's ``RSEFPN`` so that its
weights (and PP-OCRv3's released detector) load by name.
"""
from __future__ import annotations

from typing import List, Sequence

import paddle
from paddle import nn

from ...registry import NECKS
from ..backbones.mobilenet_v3 import SEModule
from .db_fpn import _up, check_fpn_channels

__all__ = ["RSEFPN", "RSELayer"]


class RSELayer(nn.Layer):
    """``y = conv(x)``; output ``y + SE(y)`` with ``shortcut``, else ``SE(y)``.

    The conv has no bias and ``padding = kernel_size // 2``; SE is MobileNetV3's
    (reduction 4, hard-sigmoid slope 0.2 / offset 0.5).  ``[N, C_in, H, W] -> [N, C_out, H, W]``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, shortcut: bool = True):
        super().__init__()
        self.out_channels = out_channels
        self.in_conv = nn.Conv2D(in_channels, out_channels, kernel_size, padding=kernel_size // 2,
                                 weight_attr=paddle.ParamAttr(initializer=nn.initializer.KaimingUniform()),
                                 bias_attr=False)
        self.se_block = SEModule(out_channels)
        self.shortcut = shortcut

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        y = self.in_conv(x)
        return y + self.se_block(y) if self.shortcut else self.se_block(y)


@NECKS.register()
class RSEFPN(nn.Layer):
    """DBFPN's top-down fusion with every conv replaced by an :class:`RSELayer`.

    ``ins_conv[i]`` (1x1, ``C_i -> out_channels``) and ``inp_conv[i]`` (3x3,
    ``out_channels -> out_channels / 4``) for the four levels ``[C2, C3, C4, C5]``; then as in
    DBFPN: ``out4 = in4 + up2(in5)``, ``out3 = in3 + up2(out4)``, ``out2 = in2 + up2(out3)``,
    ``p_i = inp_conv(.)``, ``p5, p4, p3`` upsampled (nearest) by 8, 4, 2, output
    ``concat([p5, p4, p3, p2])`` of shape ``[N, out_channels, H/4, W/4]``.

    Args:
        in_channels: channels of the four backbone maps (injected by the model builder).
        out_channels: fused channels (96 in PP-OCRv3's mobile detector); divisible by 4.
        shortcut: add the SE output to the conv output (PP-OCRv3: True).
    """

    def __init__(self, in_channels: Sequence[int], out_channels: int = 96, shortcut: bool = True):
        super().__init__()
        in_channels = check_fpn_channels("RSEFPN", in_channels, out_channels)
        self.out_channels = out_channels
        self.ins_conv = nn.LayerList()
        self.inp_conv = nn.LayerList()
        # Interleaved construction (ins 0, inp 0, ins 1, ...) as PaddleOCR builds them, so that the
        # parameters' creation-order names match released PP-OCRv3 models.
        for channels in in_channels:
            self.ins_conv.append(RSELayer(channels, out_channels, 1, shortcut))
            self.inp_conv.append(RSELayer(out_channels, out_channels // 4, 3, shortcut))

    def forward(self, features: List[paddle.Tensor]) -> paddle.Tensor:
        c2, c3, c4, c5 = features
        in5 = self.ins_conv[3](c5)
        in4 = self.ins_conv[2](c4)
        in3 = self.ins_conv[1](c3)
        in2 = self.ins_conv[0](c2)

        out4 = in4 + _up(in5, 2)  # 1/16
        out3 = in3 + _up(out4, 2)  # 1/8
        out2 = in2 + _up(out3, 2)  # 1/4

        p5 = _up(self.inp_conv[3](in5), 8)
        p4 = _up(self.inp_conv[2](out4), 4)
        p3 = _up(self.inp_conv[1](out3), 2)
        p2 = self.inp_conv[0](out2)
        return paddle.concat([p5, p4, p3, p2], axis=1)
