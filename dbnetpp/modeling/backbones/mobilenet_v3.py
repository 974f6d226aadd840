"""MobileNetV3 feature extractor for text detection (four maps at strides 4/8/16/32).

Architecture from "Searching for MobileNetV3" (Howard et al., ICCV 2019).  The
stage split, channel rounding and module names follow PaddleOCR's detection
backbone so that its weights load by name (``conv.*``, ``stage{i}.{j}.*``).
"""
from __future__ import annotations

import re
from typing import List, NamedTuple, Optional

import paddle
from paddle import nn
import paddle.nn.functional as F

from ...registry import BACKBONES

__all__ = ["MobileNetV3", "make_divisible"]


class BlockSpec(NamedTuple):
    """One inverted-residual block: kernel, expansion width, output width, SE, activation, stride."""

    kernel: int
    expand: int
    out: int
    se: bool
    act: str
    stride: int


# Table 1 / Table 2 of the MobileNetV3 paper (before width scaling).
_LARGE = [
    BlockSpec(3, 16, 16, False, "relu", 1),
    BlockSpec(3, 64, 24, False, "relu", 2),
    BlockSpec(3, 72, 24, False, "relu", 1),
    BlockSpec(5, 72, 40, True, "relu", 2),
    BlockSpec(5, 120, 40, True, "relu", 1),
    BlockSpec(5, 120, 40, True, "relu", 1),
    BlockSpec(3, 240, 80, False, "hardswish", 2),
    BlockSpec(3, 200, 80, False, "hardswish", 1),
    BlockSpec(3, 184, 80, False, "hardswish", 1),
    BlockSpec(3, 184, 80, False, "hardswish", 1),
    BlockSpec(3, 480, 112, True, "hardswish", 1),
    BlockSpec(3, 672, 112, True, "hardswish", 1),
    BlockSpec(5, 672, 160, True, "hardswish", 2),
    BlockSpec(5, 960, 160, True, "hardswish", 1),
    BlockSpec(5, 960, 160, True, "hardswish", 1),
]
_SMALL = [
    BlockSpec(3, 16, 16, True, "relu", 2),
    BlockSpec(3, 72, 24, False, "relu", 2),
    BlockSpec(3, 88, 24, False, "relu", 1),
    BlockSpec(5, 96, 40, True, "hardswish", 2),
    BlockSpec(5, 240, 40, True, "hardswish", 1),
    BlockSpec(5, 240, 40, True, "hardswish", 1),
    BlockSpec(5, 120, 48, True, "hardswish", 1),
    BlockSpec(5, 144, 48, True, "hardswish", 1),
    BlockSpec(5, 288, 96, True, "hardswish", 2),
    BlockSpec(5, 576, 96, True, "hardswish", 1),
    BlockSpec(5, 576, 96, True, "hardswish", 1),
]
# name -> (blocks, width of the last 1x1 conv, index after which a stride-2 block opens a new stage)
_VARIANTS = {"large": (_LARGE, 960, 2), "small": (_SMALL, 576, 0)}
SUPPORTED_SCALES = (0.35, 0.5, 0.75, 1.0, 1.25)


def make_divisible(v: float, divisor: int = 8, min_value: Optional[int] = None) -> int:
    """Round a scaled channel count to a multiple of ``divisor`` without losing more than 10%."""
    min_value = divisor if min_value is None else min_value
    rounded = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * v:
        rounded += divisor
    return rounded


def _activation(x: paddle.Tensor, act: Optional[str]) -> paddle.Tensor:
    if act is None:
        return x
    if act == "relu":
        return F.relu(x)
    if act == "hardswish":
        return F.hardswish(x)
    raise ValueError(f"unknown activation '{act}' (expected 'relu' or 'hardswish')")


class ConvBNLayer(nn.Layer):
    """Conv2D (no bias) -> BatchNorm -> optional activation.  Names: ``conv``, ``bn``."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 groups: int = 1, act: Optional[str] = None):
        super().__init__()
        self.act = act
        self.conv = nn.Conv2D(in_channels, out_channels, kernel_size, stride=stride,
                              padding=(kernel_size - 1) // 2, groups=groups, bias_attr=False)
        self.bn = nn.BatchNorm(out_channels, momentum=0.9, epsilon=1e-5)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        return _activation(self.bn(self.conv(x)), self.act)


class SEModule(nn.Layer):
    """Squeeze-and-excitation: avg-pool, 1x1 conv C->C/4 (+bias), ReLU, 1x1 conv C/4->C (+bias),
    hard-sigmoid with slope 0.2 and offset 0.5 (the PaddleOCR/PaddleClas variant, not slope 1/6),
    then channel-wise rescaling of the input."""

    def __init__(self, channels: int, reduction: int = 4):
        super().__init__()
        self.avg_pool = nn.AdaptiveAvgPool2D(1)
        self.conv1 = nn.Conv2D(channels, channels // reduction, 1)
        self.conv2 = nn.Conv2D(channels // reduction, channels, 1)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        w = F.relu(self.conv1(self.avg_pool(x)))
        w = F.hardsigmoid(self.conv2(w), slope=0.2, offset=0.5)
        return x * w


class ResidualUnit(nn.Layer):
    """Inverted residual: 1x1 expand -> kxk depth-wise (stride s) -> [SE] -> 1x1 linear projection,
    with an identity shortcut when the shape is unchanged."""

    def __init__(self, in_channels: int, mid_channels: int, out_channels: int, kernel_size: int,
                 stride: int, use_se: bool, act: str):
        super().__init__()
        self.if_shortcut = stride == 1 and in_channels == out_channels
        self.if_se = use_se
        self.expand_conv = ConvBNLayer(in_channels, mid_channels, 1, act=act)
        self.bottleneck_conv = ConvBNLayer(mid_channels, mid_channels, kernel_size, stride=stride,
                                           groups=mid_channels, act=act)
        if use_se:
            self.mid_se = SEModule(mid_channels)
        self.linear_conv = ConvBNLayer(mid_channels, out_channels, 1, act=None)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        y = self.bottleneck_conv(self.expand_conv(x))
        if self.if_se:
            y = self.mid_se(y)
        y = self.linear_conv(y)
        return x + y if self.if_shortcut else y


@BACKBONES.register()
class MobileNetV3(nn.Layer):
    """MobileNetV3 backbone returning ``[C2, C3, C4, C5]`` at strides 4, 8, 16, 32.

    Args:
        in_channels: image channels (injected by the model builder).
        model_name: ``"large"`` or ``"small"``.
        scale: width multiplier, one of 0.35, 0.5, 0.75, 1.0, 1.25.
        disable_se: drop every squeeze-and-excitation module.

    Input ``[N, in_channels, H, W]``; output a list of four tensors ``[N, C_i, H/s_i, W/s_i]``
    whose channel counts are :attr:`out_channels` (large x0.5: ``[16, 24, 56, 480]``).
    """

    def __init__(self, in_channels: int = 3, model_name: str = "large", scale: float = 0.5,
                 disable_se: bool = False):
        super().__init__()
        if model_name not in _VARIANTS:
            raise ValueError(f"model_name must be one of {sorted(_VARIANTS)}, got {model_name!r}")
        if scale not in SUPPORTED_SCALES:
            raise ValueError(f"scale must be one of {list(SUPPORTED_SCALES)}, got {scale!r}")
        specs, last_width, split_after = _VARIANTS[model_name]
        self.disable_se = disable_se

        inplanes = make_divisible(16 * scale)
        self.conv = ConvBNLayer(in_channels, inplanes, 3, stride=2, act="hardswish")

        self.out_channels: List[int] = []
        self.stages: List[nn.Sequential] = []
        blocks: List[nn.Layer] = []
        for i, spec in enumerate(specs):
            if spec.stride == 2 and i > split_after:
                self._close_stage(blocks, inplanes)
                blocks = []
            out = make_divisible(scale * spec.out)
            blocks.append(ResidualUnit(inplanes, make_divisible(scale * spec.expand), out, spec.kernel,
                                       spec.stride, spec.se and not disable_se, spec.act))
            inplanes = out
        last = make_divisible(scale * last_width)
        blocks.append(ConvBNLayer(inplanes, last, 1, act="hardswish"))
        self._close_stage(blocks, last)

    def _close_stage(self, blocks: List[nn.Layer], channels: int):
        stage = nn.Sequential(*blocks)
        self.add_sublayer(f"stage{len(self.stages)}", stage)
        self.stages.append(stage)
        self.out_channels.append(channels)

    def block_names(self) -> List[str]:
        """Structured-name prefix of every block in network order (``stage0.0``, ..., last 1x1 conv)."""
        return [f"stage{s}.{j}" for s, stage in enumerate(self.stages) for j in range(len(stage))]

    def from_paddleclas_name(self, name: str) -> Optional[str]:
        """Map a weight name of PaddleClas' ImageNet MobileNetV3 to this backbone's name.

        Older PaddleClas releases name the stem ``conv1``, block ``i`` (0-based) ``conv{i+2}``;
        newer ones name them ``conv`` and ``blocks.{i}``; both call the last 1x1 conv
        ``last_second_conv``.  Inner names (``expand_conv.conv.weight``, ``mid_se.conv1.bias``, ...)
        are the same as here.  The classifier (``last_conv``, ``out``, ``fc``) maps to ``None``.
        """
        blocks = self.block_names()
        top, _, rest = name.partition(".")
        index = None
        match = re.fullmatch(r"conv(\d+)", top)
        if match:
            index = int(match.group(1)) - 2
        elif top == "blocks":
            head, _, rest = rest.partition(".")
            index = int(head) if head.isdigit() else None
        if not rest:
            return None
        if top in ("conv1", "conv"):
            return f"conv.{rest}"
        if top == "last_second_conv":
            return f"{blocks[-1]}.{rest}"
        if index is not None and 0 <= index < len(blocks) - 1:
            return f"{blocks[index]}.{rest}"
        return None

    def forward(self, x: paddle.Tensor) -> List[paddle.Tensor]:
        x = self.conv(x)
        outs = []
        for stage in self.stages:
            x = stage(x)
            outs.append(x)
        return outs
