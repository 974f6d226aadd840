"""DBHead: output layout in train/eval mode, step function, YAML keys."""
from __future__ import annotations

import numpy as np
import paddle
import pytest

from dbnetpp.errors import ConfigError
from dbnetpp.modeling.heads.db_head import DBHead
from dbnetpp.registry import HEADS


def test_train_and_eval_outputs():
    head = DBHead(32, k=50)
    x = paddle.to_tensor(np.random.default_rng(0).standard_normal((2, 32, 8, 12)).astype("float32"))
    head.eval()
    with paddle.no_grad():
        p_eval = head(x)["maps"].numpy()
    assert p_eval.shape == (2, 1, 32, 48)
    assert ((p_eval > 0) & (p_eval < 1)).all()
    head.train()
    with paddle.no_grad():
        maps = head(x)["maps"].numpy()
    assert maps.shape == (2, 3, 32, 48)
    p, t, b = maps[:, 0], maps[:, 1], maps[:, 2]
    np.testing.assert_allclose(b, 1.0 / (1.0 + np.exp(-50.0 * (p - t))), rtol=1e-5, atol=1e-6)


def test_k_and_kernel_list_keys():
    head = HEADS.build({"name": "DBHead", "k": 10, "kernel_list": [7, 2, 2]}, where="Architecture.Head", in_channels=64)
    assert head.k == 10
    assert list(head.binarize.conv1.weight.shape) == [16, 64, 7, 7]
    assert list(head.thresh.conv2.weight.shape) == [16, 16, 2, 2]
    with pytest.raises(ConfigError, match="kernel_list"):
        HEADS.build({"name": "DBHead", "kernel_lst": [3, 2, 2]}, where="Architecture.Head", in_channels=64)


def test_initialisation_follows_paddleocr():
    head = DBHead(64)
    for branch in (head.binarize, head.thresh):
        assert np.all(branch.conv_bn1.weight.numpy() == 1) and np.allclose(branch.conv_bn1.bias.numpy(), 1e-4)
        bound = 1.0 / np.sqrt(16)
        assert np.abs(branch.conv2.bias.numpy()).max() <= bound
