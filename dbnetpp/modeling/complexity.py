"""Parameter and FLOP counts of a model.

:func:`count_flops` follows the counting rules of ``paddle.flops`` (Paddle 2.6's dynamic
counter), so its numbers are comparable with figures published for PaddleOCR models, but it
does not print anything or attach buffers to the model:

* runs one forward in **eval** mode (for DBHead only the probability branch runs);
* Conv / transposed Conv: ``output elements x (C_in / groups x kernel area + 1 if bias)``,
  i.e. multiply-accumulates;
* BatchNorm: 2 per element; Linear: ``in_features`` per output element;
* AvgPool: 1 per output element; AdaptiveAvgPool: ``pool area + 1`` per output element;
* everything else counts zero: ReLU/Sigmoid layers, MaxPool, and functional ops
  (hardswish, hard-sigmoid, interpolation, additions, concatenation, the SE multiply).
"""
from __future__ import annotations

from typing import Dict, Sequence

import numpy as np
import paddle
from paddle import nn

__all__ = ["count_flops", "count_params"]

_CONV = (nn.Conv1D, nn.Conv2D, nn.Conv3D, nn.Conv1DTranspose, nn.Conv2DTranspose, nn.Conv3DTranspose)
_BN = (nn.BatchNorm, nn.BatchNorm2D)
_AVG = (nn.AvgPool1D, nn.AvgPool2D, nn.AvgPool3D)
_ADAPTIVE_AVG = (nn.AdaptiveAvgPool1D, nn.AdaptiveAvgPool2D, nn.AdaptiveAvgPool3D)


def _numel(t: paddle.Tensor) -> int:
    return int(np.prod(t.shape))


def _layer_flops(layer: nn.Layer, x: paddle.Tensor, y: paddle.Tensor) -> int:
    if isinstance(layer, _CONV):
        per_output = x.shape[1] // layer._groups * int(np.prod(layer.weight.shape[2:]))
        return _numel(y) * (per_output + (1 if layer.bias is not None else 0))
    if isinstance(layer, _BN):
        return 2 * _numel(x)
    if isinstance(layer, nn.Linear):
        return layer.weight.shape[0] * _numel(y)
    if isinstance(layer, _AVG):
        return _numel(y)
    if isinstance(layer, _ADAPTIVE_AVG):
        area = int(np.prod(np.array(x.shape[2:]) // np.array(y.shape[2:])))
        return (area + 1) * _numel(y)
    return 0


def count_flops(model: nn.Layer, input_shape: Sequence[int]) -> int:
    """FLOPs (multiply-accumulates, see module docstring) of one eval-mode forward of a
    zero tensor of ``input_shape`` (e.g. ``[1, 3, 640, 640]``).  The model's mode is restored."""
    total = [0]

    def hook(layer, inputs, output):
        total[0] += _layer_flops(layer, inputs[0], output)

    handles = [layer.register_forward_post_hook(hook)
               for layer in model.sublayers(include_self=True) if not layer.sublayers()]
    was_training = model.training
    model.eval()
    try:
        with paddle.no_grad():
            model(paddle.zeros(list(input_shape), dtype="float32"))
    finally:
        for h in handles:
            h.remove()
        if was_training:
            model.train()
    return total[0]


def count_params(model: nn.Layer) -> Dict[str, int]:
    """``{"trainable": ..., "non_trainable": ...}`` element counts; the non-trainable ones are
    BatchNorm running statistics (``_mean``, ``_variance``)."""
    trainable = non_trainable = 0
    for p in model.parameters():
        if p.stop_gradient:
            non_trainable += _numel(p)
        else:
            trainable += _numel(p)
    return {"trainable": trainable, "non_trainable": non_trainable}
