"""MAC counting on ONNX graphs, checked on a hand-built graph with known answers."""
from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from dbnetpp.deploy.onnx_flops import onnx_macs  # noqa: E402


def _init(name, shape, seed=0):
    return numpy_helper.from_array(np.random.default_rng(seed).standard_normal(shape).astype(np.float32), name)


def _graph(path, dynamic_resize: bool):
    """x [N,3,H,W] -> Conv 3x3 (3->8) -> depthwise Conv 3x3 stride 2 (groups 8) -> ConvTranspose 2x2/s2
    (8->4) -> [Resize x2] -> Conv 1x1 (4->2) -> GlobalAveragePool -> Flatten -> Gemm (2->5) -> MatMul (5->6)."""
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("Conv", ["c1", "w2"], ["c2"], pads=[1, 1, 1, 1], strides=[2, 2], group=8),
        helper.make_node("ConvTranspose", ["c2", "w3", "b3"], ["c3"], strides=[2, 2]),
    ]
    inits = [_init("w1", [8, 3, 3, 3]), _init("w2", [8, 1, 3, 3], 1), _init("w3", [8, 4, 2, 2], 2),
             _init("b3", [4], 3), _init("w4", [2, 4, 1, 1], 4), _init("w5", [5, 2], 5), _init("w6", [5, 6], 6)]
    last = "c3"
    if dynamic_resize:  # sizes computed at run time: shape inference cannot follow
        nodes += [helper.make_node("Shape", ["c3"], ["s"]),
                  helper.make_node("Mul", ["s", "two"], ["s2"]),
                  helper.make_node("Resize", ["c3", "", "", "s2"], ["r"], mode="nearest")]
        inits.append(numpy_helper.from_array(np.array([1, 1, 2, 2], np.int64), "two"))
        last = "r"
    nodes += [helper.make_node("Conv", [last, "w4"], ["c4"]),
              helper.make_node("GlobalAveragePool", ["c4"], ["p"]),
              helper.make_node("Flatten", ["p"], ["f"]),
              helper.make_node("Gemm", ["f", "w5"], ["g"], transB=1),
              helper.make_node("MatMul", ["g", "w6"], ["y"])]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, "H", "W"])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    model = helper.make_model(helper.make_graph(nodes, "g", [x], [y], inits),
                              opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))


@pytest.mark.parametrize("dynamic_resize", [False, True])
def test_onnx_macs_exact(tmp_path, dynamic_resize):
    path = tmp_path / "g.onnx"
    _graph(path, dynamic_resize)
    n, h, w = 2, 16, 24
    conv1 = n * 8 * h * w * 27
    conv2 = n * 8 * (h // 2) * (w // 2) * 9
    deconv = n * 8 * (h // 2) * (w // 2) * 4 * 4  # input elements x C_out x 2x2
    scale = 4 if dynamic_resize else 1
    conv4 = n * 2 * h * w * 4 * scale
    gemm, matmul = n * 5 * 2, n * 6 * 5
    res = onnx_macs(str(path), [n, 3, h, w])
    assert res["by_op"] == {"Conv": conv1 + conv2 + conv4, "ConvTranspose": deconv, "Gemm": gemm, "MatMul": matmul}
    assert res["macs"] == conv1 + conv2 + conv4 + deconv + gemm + matmul
    assert ("onnxruntime" in res["shape_source"]) == dynamic_resize
