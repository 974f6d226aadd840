"""ResNet-vd feature extractor (four maps at strides 4/8/16/32), without deformable convolution.

ResNet from He et al. (CVPR 2016) with the "vd" tweaks of "Bag of Tricks for Image
Classification" (He et al., CVPR 2019): a three-conv 3x3 stem and an average-pool before the
1x1 projection shortcut.  Module names follow PaddleOCR's ``ResNet_vd`` (``conv1_1``,
``bb_{stage}_{block}``, ``_conv``, ``_batch_norm``) so PaddleOCR / PaddleClas weights load by name.
"""
from __future__ import annotations

from typing import List, Optional, Sequence

import paddle
from paddle import nn
import paddle.nn.functional as F

from ...registry import BACKBONES

__all__ = ["ResNet_vd"]

_DEPTHS = {18: [2, 2, 2, 2], 34: [3, 4, 6, 3], 50: [3, 4, 6, 3], 101: [3, 4, 23, 3],
           152: [3, 8, 36, 3], 200: [3, 12, 48, 3]}
_WIDTHS = [64, 128, 256, 512]


class ConvBNLayer(nn.Layer):
    """[2x2 avg-pool (vd shortcut)] -> Conv2D (no bias) -> BatchNorm -> optional ReLU."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 is_vd_mode: bool = False, act: Optional[str] = None):
        super().__init__()
        self.is_vd_mode = is_vd_mode
        self.act = act
        if is_vd_mode:
            self._pool2d_avg = nn.AvgPool2D(kernel_size=2, stride=2, padding=0, ceil_mode=True)
        self._conv = nn.Conv2D(in_channels, out_channels, kernel_size, stride=stride,
                               padding=(kernel_size - 1) // 2, bias_attr=False)
        self._batch_norm = nn.BatchNorm(out_channels, momentum=0.9, epsilon=1e-5)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        if self.is_vd_mode:
            x = self._pool2d_avg(x)
        y = self._batch_norm(self._conv(x))
        return F.relu(y) if self.act == "relu" else y


class BottleneckBlock(nn.Layer):
    """1x1 -> 3x3 (stride) -> 1x1 (x4 channels) with identity or (avg-pool +) 1x1 shortcut."""

    expansion = 4

    def __init__(self, in_channels: int, channels: int, stride: int, shortcut: bool, if_first: bool):
        super().__init__()
        self.conv0 = ConvBNLayer(in_channels, channels, 1, act="relu")
        self.conv1 = ConvBNLayer(channels, channels, 3, stride=stride, act="relu")
        self.conv2 = ConvBNLayer(channels, channels * 4, 1, act=None)
        self.shortcut = shortcut
        if not shortcut:
            self.short = ConvBNLayer(in_channels, channels * 4, 1, is_vd_mode=not if_first)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        y = self.conv2(self.conv1(self.conv0(x)))
        short = x if self.shortcut else self.short(x)
        return F.relu(short + y)


class BasicBlock(nn.Layer):
    """3x3 (stride) -> 3x3 with identity or (avg-pool +) 1x1 shortcut (ResNet-18/34)."""

    expansion = 1

    def __init__(self, in_channels: int, channels: int, stride: int, shortcut: bool, if_first: bool):
        super().__init__()
        self.conv0 = ConvBNLayer(in_channels, channels, 3, stride=stride, act="relu")
        self.conv1 = ConvBNLayer(channels, channels, 3, act=None)
        self.shortcut = shortcut
        if not shortcut:
            self.short = ConvBNLayer(in_channels, channels, 1, is_vd_mode=not if_first)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        y = self.conv1(self.conv0(x))
        short = x if self.shortcut else self.short(x)
        return F.relu(short + y)


@BACKBONES.register()
class ResNet_vd(nn.Layer):
    """ResNet-vd backbone returning the stage outputs selected by ``out_indices``.

    Args:
        in_channels: image channels (injected by the model builder).
        layers: depth, one of 18, 34, 50, 101, 152, 200.
        dcn_stage: PaddleOCR key; deformable convolution is not supported, so every entry must be false.
        out_indices: which of the four stages to return (default all: strides 4, 8, 16, 32).

    Input ``[N, in_channels, H, W]``; output a list of ``[N, C_i, H/s_i, W/s_i]`` with
    :attr:`out_channels` ``[256, 512, 1024, 2048]`` for ``layers >= 50`` and
    ``[64, 128, 256, 512]`` for 18/34.
    """

    def __init__(self, in_channels: int = 3, layers: int = 50, dcn_stage: Optional[Sequence[bool]] = None,
                 out_indices: Optional[Sequence[int]] = None):
        super().__init__()
        if layers not in _DEPTHS:
            raise ValueError(f"layers must be one of {sorted(_DEPTHS)}, got {layers!r}")
        if dcn_stage is not None and any(dcn_stage):
            raise ValueError(f"dcn_stage={list(dcn_stage)}: deformable convolution is not supported "
                             "(it also does not export to ONNX); use false for every stage")
        self.out_indices = list(out_indices) if out_indices is not None else [0, 1, 2, 3]
        if not self.out_indices or any(i not in (0, 1, 2, 3) for i in self.out_indices):
            raise ValueError(f"out_indices must be a non-empty subset of [0, 1, 2, 3], got {out_indices!r}")
        self.layers = layers
        block_cls = BottleneckBlock if layers >= 50 else BasicBlock

        self.conv1_1 = ConvBNLayer(in_channels, 32, 3, stride=2, act="relu")
        self.conv1_2 = ConvBNLayer(32, 32, 3, act="relu")
        self.conv1_3 = ConvBNLayer(32, 64, 3, act="relu")
        self.pool2d_max = nn.MaxPool2D(kernel_size=3, stride=2, padding=1)

        self.stages: List[List[nn.Layer]] = []
        self.out_channels: List[int] = []
        self._block_ids: List[str] = []
        channels_in = 64
        for s, depth in enumerate(_DEPTHS[layers]):
            stage = []
            for b in range(depth):
                block = block_cls(channels_in, _WIDTHS[s], stride=2 if (b == 0 and s != 0) else 1,
                                  shortcut=b != 0, if_first=(s == 0 and b == 0))
                self.add_sublayer(f"bb_{s}_{b}", block)
                self._block_ids.append(f"bb_{s}_{b}")
                stage.append(block)
                channels_in = _WIDTHS[s] * block_cls.expansion
            self.stages.append(stage)
            if s in self.out_indices:
                self.out_channels.append(channels_in)

    def from_paddleclas_name(self, name: str) -> Optional[str]:
        """Map a weight name of PaddleClas' ImageNet ResNet-vd (``stem.{i}.conv.weight``,
        ``blocks.{k}.conv0.bn._mean``, ...) to this backbone's name (``conv1_{i+1}._conv.weight``,
        ``bb_{s}_{b}.conv0._batch_norm._mean``); ``None`` for the classifier (``fc``).  Files that
        already use this backbone's names (older PaddleClas releases) need no conversion."""
        parts = name.split(".")
        if len(parts) >= 3 and parts[0] == "stem" and parts[1] in ("0", "1", "2"):
            prefix, rest = [f"conv1_{int(parts[1]) + 1}"], parts[2:]
        elif len(parts) >= 4 and parts[0] == "blocks" and parts[1].isdigit() and int(parts[1]) < len(self._block_ids):
            prefix, rest = [self._block_ids[int(parts[1])], parts[2]], parts[3:]
        else:
            return None
        layer = {"conv": "_conv", "bn": "_batch_norm"}.get(rest[0])
        if layer is None or len(rest) < 2:
            return None
        return ".".join(prefix + [layer] + rest[1:])

    def forward(self, x: paddle.Tensor) -> List[paddle.Tensor]:
        y = self.pool2d_max(self.conv1_3(self.conv1_2(self.conv1_1(x))))
        outs = []
        for s, stage in enumerate(self.stages):
            for block in stage:
                y = block(y)
            if s in self.out_indices:
                outs.append(y)
        return outs
