"""Multiply-accumulates of an ONNX graph at a fixed input size (Conv, ConvTranspose, Gemm, MatMul).

The input's dynamic dimensions are pinned to the requested shape and ONNX shape inference
propagates them; tensors whose shapes it leaves unknown (e.g. behind a ``Resize`` whose sizes are
computed at run time) are measured by one ONNX Runtime pass on a zero input with those tensors
added as graph outputs.  Per node:

* Conv: ``output elements x C_in / groups x kernel area``;
* ConvTranspose: ``input elements x C_out / groups x kernel area``;
* Gemm / MatMul: ``output elements x inner dimension``.

Element-wise ops, pooling, resizing and normalisation count zero, so the figure is comparable
across models exported by different tools (it is close to, not equal to, ``paddle.flops``,
which also counts BatchNorm and average pooling).
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence

import numpy as np

__all__ = ["onnx_macs"]

_OPS = ("Conv", "ConvTranspose", "Gemm", "MatMul")


def _dims(value_info) -> Optional[List[int]]:
    t = value_info.type.tensor_type
    if not t.HasField("shape"):
        return None
    dims = []
    for d in t.shape.dim:
        if not d.HasField("dim_value") or d.dim_value <= 0:
            return None
        dims.append(int(d.dim_value))
    return dims


def _shapes_by_inference(model, input_shape: Sequence[int]) -> Dict[str, List[int]]:
    import onnx

    inp = model.graph.input[0]
    for d, v in zip(inp.type.tensor_type.shape.dim, input_shape):
        d.ClearField("dim_param")
        d.dim_value = int(v)
    inferred = onnx.shape_inference.infer_shapes(model)
    shapes: Dict[str, List[int]] = {}
    for vi in list(inferred.graph.value_info) + list(inferred.graph.input) + list(inferred.graph.output):
        dims = _dims(vi)
        if dims is not None:
            shapes[vi.name] = dims
    for init in inferred.graph.initializer:
        shapes[init.name] = [int(d) for d in init.dims]
    return shapes


def _shapes_by_running(model, names: Sequence[str], input_shape: Sequence[int]) -> Dict[str, List[int]]:
    import onnx
    import onnxruntime as ort

    extra = onnx.ModelProto()
    extra.CopyFrom(model)
    have = {o.name for o in extra.graph.output}
    for name in names:
        if name not in have:
            extra.graph.output.append(onnx.helper.make_empty_tensor_value_info(name))
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.log_severity_level = 3
    sess = ort.InferenceSession(extra.SerializeToString(), so, providers=["CPUExecutionProvider"])
    x = np.zeros(list(input_shape), dtype=np.float32)
    outs = sess.run(list(names), {sess.get_inputs()[0].name: x})
    return {n: list(o.shape) for n, o in zip(names, outs)}


def _attr(node, name, default):
    for a in node.attribute:
        if a.name == name:
            import onnx

            return onnx.helper.get_attribute_value(a)
    return default


def onnx_macs(onnx_file: str, input_shape: Sequence[int]) -> Dict[str, object]:
    """``{"macs": int, "by_op": {op: macs}, "nodes": n, "shape_source": ...}`` of the graph at
    ``input_shape`` (e.g. ``[1, 3, 736, 1280]``)."""
    import onnx

    model = onnx.load(onnx_file)
    shapes = _shapes_by_inference(model, input_shape)
    nodes = [n for n in model.graph.node if n.op_type in _OPS]
    wanted = {t for n in nodes for t in (list(n.input[:2]) + [n.output[0]])}
    missing = sorted(t for t in wanted if t and t not in shapes)
    source = "onnx shape inference"
    if missing:
        shapes.update(_shapes_by_running(model, missing, input_shape))
        source = f"onnx shape inference + onnxruntime for {len(missing)} tensors"
    by_op: Dict[str, int] = {}
    for n in nodes:
        x, w, y = shapes[n.input[0]], shapes[n.input[1]], shapes[n.output[0]]
        if n.op_type == "Conv":
            macs = int(np.prod(y)) * int(np.prod(w[1:]))
        elif n.op_type == "ConvTranspose":
            macs = int(np.prod(x)) * int(w[1]) * int(np.prod(w[2:]))  # w: [C_in, C_out / groups, kh, kw]
        elif n.op_type == "Gemm":
            k = x[0] if int(_attr(n, "transA", 0)) else x[-1]
            macs = int(np.prod(y)) * int(k)
        else:  # MatMul
            macs = int(np.prod(y)) * int(x[-1])
        by_op[n.op_type] = by_op.get(n.op_type, 0) + macs
    return {"macs": int(sum(by_op.values())), "by_op": by_op, "nodes": len(nodes), "shape_source": source}
