"""Fold eval-mode BatchNorm layers into the convolution that feeds them (for export).

For a BN with running statistics ``mu, sigma^2``, scale ``gamma``, shift ``beta`` and epsilon
``eps`` applied to ``conv(x) = W * x + b``::

    s  = gamma / sqrt(sigma^2 + eps)          (per output channel)
    W' = W * s,   b' = (b - mu) * s + beta     =>  BN(conv(x)) == conv'(x)

(for a transposed convolution the output channels are weight axis 1).  The BN is then replaced
by an identity.  Pairs are found by running one forward pass and matching each BN's input
tensor with the conv that produced it, so any module tree works; BN layers with a built-in
activation, or fed by anything but a conv, are left alone.  The caller checks the numerics.
"""
from __future__ import annotations

from typing import Dict, List, Tuple

import numpy as np
import paddle
from paddle import nn

__all__ = ["fold_batch_norms"]

_CONVS = (nn.Conv2D, nn.Conv2DTranspose)
_BNS = (nn.BatchNorm, nn.BatchNorm2D)


def _bn_stats(bn: nn.Layer) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float]:
    eps = float(getattr(bn, "_epsilon", 1e-5))
    gamma = bn.weight.numpy().astype(np.float64) if bn.weight is not None else 1.0
    beta = bn.bias.numpy().astype(np.float64) if bn.bias is not None else 0.0
    return (gamma, beta, bn._mean.numpy().astype(np.float64), bn._variance.numpy().astype(np.float64), eps)


def _has_act(bn: nn.Layer) -> bool:
    return getattr(bn, "_act", None) not in (None, "", "identity")


def _find_pairs(model: nn.Layer, sample: paddle.Tensor) -> List[Tuple[nn.Layer, nn.Layer]]:
    produced: Dict[int, nn.Layer] = {}
    pairs: List[Tuple[nn.Layer, nn.Layer]] = []

    def conv_hook(layer, inputs, output):
        produced[id(output)] = layer

    def bn_hook(layer, inputs):
        conv = produced.get(id(inputs[0]))
        if conv is not None and not _has_act(layer):
            pairs.append((conv, layer))

    handles = []
    for layer in model.sublayers(include_self=True):
        if isinstance(layer, _CONVS):
            handles.append(layer.register_forward_post_hook(conv_hook))
        elif isinstance(layer, _BNS):
            handles.append(layer.register_forward_pre_hook(bn_hook))
    try:
        with paddle.no_grad():
            model(sample)
    finally:
        for h in handles:
            h.remove()
    # a conv feeding two BNs (or a BN reached twice) cannot be folded
    convs = [id(c) for c, _ in pairs]
    bns = [id(b) for _, b in pairs]
    return [(c, b) for c, b in pairs if convs.count(id(c)) == 1 and bns.count(id(b)) == 1]


def _replace_child(model: nn.Layer, target: nn.Layer, new: nn.Layer) -> bool:
    for parent in model.sublayers(include_self=True):
        for name, child in parent.named_children():
            if child is target:
                setattr(parent, name, new)
                return True
    return False


def fold_batch_norms(model: nn.Layer, sample: paddle.Tensor) -> int:
    """Fold every conv -> BN pair of ``model`` (must be in eval mode) in place.

    Args:
        sample: an input ``[N, 3, H, W]`` used for one forward pass to find the pairs.
    Returns:
        the number of BN layers folded.
    """
    if model.training:
        raise ValueError("fold_batch_norms needs a model in eval mode (it uses the running statistics)")
    folded = 0
    for conv, bn in _find_pairs(model, sample):
        gamma, beta, mean, var, eps = _bn_stats(bn)
        scale = gamma / np.sqrt(var + eps)
        weight = conv.weight.numpy().astype(np.float64)
        axis = 1 if isinstance(conv, nn.Conv2DTranspose) else 0
        groups = int(getattr(conv, "_groups", 1) or 1)
        if axis == 1 and groups != 1:
            continue  # grouped transposed conv: output channels are interleaved across groups
        shape = [1] * weight.ndim
        shape[axis] = -1
        new_w = weight * scale.reshape(shape)
        old_b = conv.bias.numpy().astype(np.float64) if conv.bias is not None else 0.0
        new_b = (old_b - mean) * scale + beta
        conv.weight.set_value(new_w.astype(np.float32))
        if conv.bias is None:
            conv.bias = conv.create_parameter([int(new_b.shape[0])], is_bias=True)
        conv.bias.set_value(new_b.astype(np.float32))
        if not _replace_child(model, bn, nn.Identity()):
            raise RuntimeError(f"could not replace folded BatchNorm {bn.full_name()}")
        folded += 1
    return folded
