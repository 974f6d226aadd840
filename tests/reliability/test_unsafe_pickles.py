"""No code runs from a weights or checkpoint file: a ``.pdparams``, ``.pdopt`` or ``.states`` whose pickle
calls ``os.system`` is refused (naming the file and the global it asks for) wherever such files are read;
real files still load."""
from __future__ import annotations

import os
import pickle
import shutil
import subprocess
import sys

import numpy as np
import paddle
import pytest

from dbnetpp.checkpoint import load_params, read_states
from dbnetpp.engine.rng import capture_rng, restore_rng
from dbnetpp.safe_pickle import UnsafeFileError, load_paddle_file


class _Evil:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def _evil_pickle(marker, protocol=2) -> bytes:
    return pickle.dumps({"conv.weight": np.zeros((2, 2), np.float32), "x": _Evil(marker)}, protocol=protocol)


@pytest.mark.parametrize("protocol", [2, 4])
def test_loaders_refuse_code_and_name_the_file(tmp_path, protocol):
    marker = tmp_path / "PWNED"
    for ext in (".pdparams", ".states"):
        (tmp_path / f"evil{ext}").write_bytes(_evil_pickle(marker, protocol))
    with pytest.raises(UnsafeFileError, match=r"evil\.pdparams: refused: the file asks for (posix|os)\.system"):
        load_params(str(tmp_path / "evil"))
    with pytest.raises(UnsafeFileError, match=r"evil\.states: refused: .*system"):
        read_states(str(tmp_path / "evil"))
    state = capture_rng()
    state["paddle"] = pickle.dumps(_Evil(marker))
    with pytest.raises(UnsafeFileError, match="paddle random state"):
        restore_rng(state)
    assert not marker.exists()


def test_real_files_still_load(tmp_path):
    params = {"a": paddle.to_tensor(np.arange(6, dtype=np.float32).reshape(2, 3)), "b": paddle.ones([4], "int64")}
    paddle.save(params, str(tmp_path / "m.pdparams"))
    loaded = load_params(str(tmp_path / "m"))
    assert isinstance(loaded["a"], paddle.Tensor) and np.array_equal(loaded["a"].numpy(), params["a"].numpy())
    assert loaded["b"].dtype == paddle.int64
    raw = load_paddle_file(str(tmp_path / "m.pdparams"))  # numpy arrays, as paddle.load(return_numpy=True)
    assert isinstance(raw["a"], np.ndarray)
    # the generator state our .states keeps comes back exactly
    state = capture_rng()
    first = paddle.rand([3]).numpy()
    restore_rng(state)
    assert np.array_equal(paddle.rand([3]).numpy(), first)


@pytest.mark.slow
def test_tools_refuse_a_malicious_weights_file(rel, clean_data, tmp_path):
    """Global.pretrained_model of tools/train.py, Global.checkpoints of tools/eval.py, the weights of
    tools/export_model.py: exit non-zero, the file and the global named, no code run, nothing trained."""
    marker = tmp_path / "PWNED"
    evil = tmp_path / "evil"
    evil.with_suffix(".pdparams").write_bytes(_evil_pickle(marker))
    out = tmp_path / "out"
    cmds = [rel.train_cmd(rel.overrides(clean_data, out, f"Global.pretrained_model={evil}", "Global.max_steps=1")),
            [sys.executable, "tools/eval.py", "-c", str(rel.CONFIG), "-o", *rel.overrides(clean_data, out),
             f"Global.checkpoints={evil}"],
            [sys.executable, "tools/export_model.py", "-c", str(rel.CONFIG), "-o", f"Global.pretrained_model={evil}",
             f"Global.save_inference_dir={tmp_path / 'inference'}"]]
    for cmd in cmds:
        r = rel.run(cmd, timeout=180)
        assert r.returncode != 0, (cmd, r.stdout[-1500:])
        assert f"{evil}.pdparams: refused: the file asks for" in r.stderr + r.stdout, (cmd, r.stderr[-2000:])
        assert "system" in r.stderr + r.stdout and not marker.exists()
    assert not (out / "latest.pdparams").exists() and not (tmp_path / "inference").exists()
