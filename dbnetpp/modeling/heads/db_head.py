"""DBHead: probability map P, threshold map T and approximate binary map B of DBNet.

Liao et al., "Real-time Scene Text Detection with Differentiable Binarization", AAAI 2020:
``B = 1 / (1 + exp(-k (P - T)))``.  Layer names and initialisation follow PaddleOCR's ``DBHead``.
"""
from __future__ import annotations

import math
from typing import Dict, Sequence

import paddle
from paddle import nn
import paddle.nn.functional as F

from ...registry import HEADS

__all__ = ["DBHead", "Head"]


def _bn(channels: int) -> nn.BatchNorm:
    return nn.BatchNorm(channels, momentum=0.9, epsilon=1e-5,
                        param_attr=paddle.ParamAttr(initializer=nn.initializer.Constant(1.0)),
                        bias_attr=paddle.ParamAttr(initializer=nn.initializer.Constant(1e-4)))


def _deconv(in_channels: int, out_channels: int, kernel_size: int, fan: int) -> nn.Conv2DTranspose:
    bound = 1.0 / math.sqrt(fan)
    return nn.Conv2DTranspose(
        in_channels, out_channels, kernel_size, stride=2,
        weight_attr=paddle.ParamAttr(initializer=nn.initializer.KaimingUniform()),
        bias_attr=paddle.ParamAttr(initializer=nn.initializer.Uniform(-bound, bound)))


class Head(nn.Layer):
    """One branch: conv kxk (C -> C/4, no bias) -> BN -> ReLU -> deconv 2x2/s2 -> BN -> ReLU
    -> deconv 2x2/s2 (-> 1) -> sigmoid.  ``[N, C, H/4, W/4]`` -> ``[N, 1, H, W]``."""

    def __init__(self, in_channels: int, kernel_list: Sequence[int] = (3, 2, 2)):
        super().__init__()
        mid = in_channels // 4
        self.conv1 = nn.Conv2D(in_channels, mid, kernel_list[0], padding=kernel_list[0] // 2, bias_attr=False)
        self.conv_bn1 = _bn(mid)
        self.conv2 = _deconv(mid, mid, kernel_list[1], mid)
        self.conv_bn2 = _bn(mid)
        self.conv3 = _deconv(mid, 1, kernel_list[2], mid)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        x = F.relu(self.conv_bn1(self.conv1(x)))
        x = F.relu(self.conv_bn2(self.conv2(x)))
        return F.sigmoid(self.conv3(x))


@HEADS.register()
class DBHead(nn.Layer):
    """Differentiable-binarization head.

    Args:
        in_channels: channels of the fused neck feature (injected by the model builder).
        k: amplification factor of the step function (50 in the paper).
        kernel_list: kernel sizes of the conv and the two deconvs of each branch (PaddleOCR key).

    ``forward(x [N, C, H/4, W/4])`` returns ``{"maps": P}`` (``[N, 1, H, W]``) in eval mode and
    ``{"maps": concat(P, T, B)}`` (``[N, 3, H, W]``) in train mode.
    """

    def __init__(self, in_channels: int, k: float = 50, kernel_list: Sequence[int] = (3, 2, 2)):
        super().__init__()
        if not isinstance(in_channels, int) or isinstance(in_channels, bool):
            raise ValueError(f"in_channels must be one channel count (a neck's out_channels), got {in_channels!r}; "
                             "DBHead needs a neck such as DBFPN that fuses the backbone's feature maps")
        kernel_list = list(kernel_list)
        if len(kernel_list) != 3:
            raise ValueError(f"kernel_list needs three kernel sizes, got {kernel_list}")
        self.k = k
        self.out_channels = 1  # channels of the eval-mode output (P); train mode adds T and B
        self.binarize = Head(in_channels, kernel_list)
        self.thresh = Head(in_channels, kernel_list)

    def step_function(self, p: paddle.Tensor, t: paddle.Tensor) -> paddle.Tensor:
        """Approximate binarization ``B = 1 / (1 + exp(-k (P - T)))``."""
        return paddle.reciprocal(1 + paddle.exp(-self.k * (p - t)))

    def forward(self, x: paddle.Tensor) -> Dict[str, paddle.Tensor]:
        shrink_maps = self.binarize(x)
        if not self.training:
            return {"maps": shrink_maps}
        threshold_maps = self.thresh(x)
        binary_maps = self.step_function(shrink_maps, threshold_maps)
        return {"maps": paddle.concat([shrink_maps, threshold_maps, binary_maps], axis=1)}
