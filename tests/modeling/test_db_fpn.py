"""DBFPN neck and the standalone ASF block."""
from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import numpy as np
import paddle
import pytest

from dbnetpp.errors import ConfigError
from dbnetpp.modeling.necks.db_fpn import DBFPN
from dbnetpp.registry import NECKS

ASF_FILE = Path(__file__).resolve().parents[2] / "dbnetpp" / "modeling" / "necks" / "asf.py"


def _features(channels=(16, 24, 56, 480), size=64, seed=0):
    rng = np.random.default_rng(seed)
    return [paddle.to_tensor(rng.standard_normal((2, c, size // s, size // s)).astype("float32"))
            for c, s in zip(channels, (4, 8, 16, 32))]


@pytest.mark.parametrize("use_asf", [False, True])
def test_output_shape_and_params(use_asf):
    neck = DBFPN([16, 24, 56, 480], out_channels=96, use_asf=use_asf)
    assert neck.out_channels == 96
    with paddle.no_grad():
        out = neck(_features())
    assert list(out.shape) == [2, 96, 16, 16]
    asf_keys = [k for k in neck.state_dict() if k.startswith("asf.")]
    assert asf_keys == ([] if not use_asf else
                        ["asf.conv.weight", "asf.conv.bias", "asf.spatial_scale.0.weight",
                         "asf.spatial_scale.2.weight", "asf.channel_scale.0.weight"])


def test_concat_order_is_p5_p4_p3_p2():
    """Zeroing one level's 3x3 conv zeroes exactly its quarter of the output channels."""
    neck = DBFPN([16, 24, 56, 480], out_channels=32)
    feats = _features()
    for i, conv in enumerate([neck.p5_conv, neck.p4_conv, neck.p3_conv, neck.p2_conv]):
        saved = conv.weight.numpy()
        conv.weight.set_value(np.zeros_like(saved))
        with paddle.no_grad():
            out = neck(feats).numpy()
        conv.weight.set_value(saved)
        per_quarter = np.abs(out).reshape(2, 4, 8, -1).max(axis=(0, 2, 3))
        assert per_quarter[i] == 0 and (np.delete(per_quarter, i) > 0).all()


def test_asf_weights_levels_per_pixel():
    """With the attention logits forced to a constant c, every level is scaled by sigmoid(c)."""
    neck = DBFPN([16, 24, 56, 480], out_channels=32, use_asf=True)
    plain = DBFPN([16, 24, 56, 480], out_channels=32)
    plain.set_state_dict({k: v for k, v in neck.state_dict().items() if not k.startswith("asf.")})
    w = neck.asf.channel_scale[0].weight
    w.set_value(paddle.zeros_like(w))  # logits 0 -> weights 0.5
    feats = _features()
    with paddle.no_grad():
        np.testing.assert_allclose(neck(feats).numpy(), 0.5 * plain(feats).numpy(), rtol=1e-6, atol=1e-6)


def test_asf_block_depends_only_on_paddle():
    tree = ast.parse(ASF_FILE.read_text())
    modules = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "relative import in asf.py"
            modules.add(node.module.split(".")[0])
    assert modules <= {"paddle", "typing", "__future__"}
    # loads as a standalone file, outside the dbnetpp package
    spec = importlib.util.spec_from_file_location("standalone_asf", ASF_FILE)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    block = mod.ASFBlock(256, 64)
    feats = [paddle.rand([1, 64, 8, 8]) for _ in range(4)]
    with paddle.no_grad():
        out = block(paddle.concat(feats, axis=1), feats)
    assert list(out.shape) == [1, 256, 8, 8]
    with pytest.raises(ValueError, match="expects 4 feature maps"):
        block(paddle.concat(feats, axis=1), feats[:3])


def test_yaml_keys():
    neck = NECKS.build({"name": "DBFPN", "out_channels": 256, "use_asf": True}, where="Architecture.Neck",
                       in_channels=[16, 24, 56, 480])
    assert neck.use_asf and neck.out_channels == 256
    with pytest.raises(ConfigError, match="use_asf"):
        NECKS.build({"name": "DBFPN", "use_ASF": True}, where="Architecture.Neck", in_channels=[16, 24, 56, 480])
    with pytest.raises(ConfigError, match="divisible by 4"):
        NECKS.build({"name": "DBFPN", "out_channels": 30}, where="Architecture.Neck", in_channels=[16, 24, 56, 480])


def _asf_stats(neck, feats):
    """Pre-sigmoid values of the ASF gate for ``feats`` (``[N, S, H, W]``)."""
    cap = {}

    def hook(layer, inputs, output):
        asf = layer
        z = asf.conv(inputs[0])
        spatial = asf.spatial_scale(paddle.mean(z, axis=1, keepdim=True))
        cap["pre"] = asf.gate_logits(z, spatial).numpy()

    neck.asf.register_forward_post_hook(hook)
    with paddle.no_grad():
        out = neck(feats)
    return cap["pre"], out


def test_asf_zero_gate_starts_as_an_even_fusion_of_large_features():
    """Large features (as a pretrained backbone gives) saturate the default gate; the zero gate does not,
    and its output is then exactly half of plain DBFPN's concatenation."""
    paddle.seed(1)
    feats = [f * 100.0 for f in _features()]  # pretrained-backbone magnitudes
    default = DBFPN([16, 24, 56, 480], out_channels=96, use_asf=True)
    pre, _ = _asf_stats(default, feats)
    assert (np.abs(pre) > 4.6).mean() > 0.5  # most gate values saturated (sigmoid' < 0.01)
    paddle.seed(1)
    zero = DBFPN([16, 24, 56, 480], out_channels=96, use_asf=True, asf_gate_init="zeros")
    pre, out = _asf_stats(zero, feats)
    assert np.all(pre == 0.0)
    plain = DBFPN([16, 24, 56, 480], out_channels=96)
    plain.set_state_dict({k: v for k, v in zero.state_dict().items() if not k.startswith("asf.")})
    with paddle.no_grad():
        ref = plain(feats).numpy()
    np.testing.assert_allclose(out.numpy(), 0.5 * ref, rtol=1e-5, atol=1e-5)
    # same parameters and names as the default block, so PaddleOCR's DB++ weights still load
    assert [(k, v.shape) for k, v in zero.state_dict().items()] == [(k, v.shape) for k, v in default.state_dict().items()]


def test_asf_zero_gate_learns():
    """The zero-initialised gate gets a gradient at once (it is not a dead branch)."""
    neck = DBFPN([16, 24, 56, 480], out_channels=32, use_asf=True, asf_gate_init="zeros")
    out = neck(_features(size=32))
    (out * out).mean().backward()
    grad = neck.asf.channel_scale[0].weight.grad
    assert grad is not None and float(paddle.abs(grad).max()) > 0


def test_asf_gate_init_is_validated():
    with pytest.raises(ValueError, match="gate_init must be one of"):
        DBFPN([16, 24, 56, 480], out_channels=32, use_asf=True, asf_gate_init="ones")


def test_asf_gate_norm_standardises_the_gate_logits():
    """``asf_gate_norm`` adds a BatchNorm over the S gate logits: in training mode each level's logits have
    mean 0 and std 1 whatever the feature scale, so the gate starts unsaturated even with large features;
    the default block's parameters and names are unchanged."""
    feats = [f * 100.0 for f in _features()]
    paddle.seed(1)
    neck = DBFPN([16, 24, 56, 480], out_channels=96, use_asf=True, asf_gate_norm=True)
    neck.train()
    pre, out = _asf_stats(neck, feats)
    assert list(out.shape) == [2, 96, 16, 16]
    np.testing.assert_allclose(pre.mean(axis=(0, 2, 3)), 0.0, atol=1e-3)
    np.testing.assert_allclose(pre.std(axis=(0, 2, 3)), 1.0, rtol=1e-2)
    assert (np.abs(pre) > 4.6).mean() < 0.01
    extra = [k for k in neck.state_dict() if k.startswith("asf.gate_norm.")]
    assert extra == ["asf.gate_norm.weight", "asf.gate_norm.bias", "asf.gate_norm._mean", "asf.gate_norm._variance"]
    paddle.seed(1)
    plain = DBFPN([16, 24, 56, 480], out_channels=96, use_asf=True)
    assert [k for k in neck.state_dict() if not k.startswith("asf.gate_norm.")] == list(plain.state_dict())
    # without the norm the same weights give exactly PaddleOCR's block: the option only inserts the norm
    plain.set_state_dict({k: v for k, v in neck.state_dict().items() if not k.startswith("asf.gate_norm.")})
    neck.asf.gate_norm = None
    with paddle.no_grad():
        np.testing.assert_allclose(neck(feats).numpy(), plain(feats).numpy(), rtol=1e-6, atol=1e-6)


def test_asf_gate_norm_passes_gradients_and_is_validated():
    neck = DBFPN([16, 24, 56, 480], out_channels=32, use_asf=True, asf_gate_norm=True)
    out = neck(_features(size=32))
    (out * out).mean().backward()
    for p in (neck.asf.channel_scale[0].weight, neck.asf.gate_norm.weight, neck.in2_conv.weight):
        assert p.grad is not None and float(paddle.abs(p.grad).max()) > 0
    with pytest.raises(ValueError, match="gate_norm must be true or false"):
        DBFPN([16, 24, 56, 480], out_channels=32, use_asf=True, asf_gate_norm="yes")


@pytest.mark.smoke
def test_upsampling_is_exactly_paddleocr_nearest_interpolation():
    """The neck's pixel-repeat upsampling gives F.upsample(nearest)'s values bit for bit (and gradients
    summed over each repeated block), so PaddleOCR parity is kept while exports hold no interpolation op."""
    import paddle.nn.functional as F

    from dbnetpp.modeling.necks.db_fpn import _up

    rng = np.random.default_rng(3)
    for shape in ((2, 3, 5, 7), (1, 24, 20, 32), (1, 1, 1, 1)):
        x = paddle.to_tensor(rng.standard_normal(shape).astype("float32"))
        for f in (2, 4, 8):
            ref = F.interpolate(x, scale_factor=f, mode="nearest").numpy()
            out = _up(x, f).numpy()
            assert out.shape == ref.shape and np.array_equal(out, ref), (shape, f)
    x = paddle.to_tensor(rng.standard_normal((1, 2, 3, 4)).astype("float32"), stop_gradient=False)
    (_up(x, 4) * 2.0).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.full((1, 2, 3, 4), 32.0, np.float32))
