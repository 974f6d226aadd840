"""Sharded evaluation during training scores the weights rank 0 saves: BatchNorm statistics, which each
rank accumulates from its own batches, are copied from rank 0 before every evaluation."""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent("""
    import sys
    import numpy as np
    import paddle
    import paddle.distributed as dist
    from dbnetpp import dist as D
    paddle.set_device("cpu")
    dist.init_parallel_env()
    rank = dist.get_rank()
    paddle.seed(0)
    model = paddle.nn.Sequential(paddle.nn.Conv2D(3, 4, 3), paddle.nn.BatchNorm(4))
    model = paddle.DataParallel(model)
    model.train()
    model(paddle.full([2, 3, 8, 8], float(rank + 1)))  # each rank's own running statistics
    stats = lambda: np.concatenate([model._layers[1]._mean.numpy(), model._layers[1]._variance.numpy()])
    weights = lambda: model._layers[0].weight.numpy().ravel()
    before, w_before = stats(), weights()
    n = D.sync_buffers(model, True)
    after = stats()
    assert np.array_equal(weights(), w_before)
    np.save(sys.argv[1] + f"/rank{rank}_before.npy", before)
    np.save(sys.argv[1] + f"/rank{rank}_after.npy", after)
    print("synced", n)
""")


def test_buffers_are_rank_zeros_after_sync(tmp_path):
    script = tmp_path / "sync.py"
    script.write_text(SCRIPT)
    proc = subprocess.run([sys.executable, "-m", "paddle.distributed.launch", "--log_dir", str(tmp_path / "logs"),
                           "--nproc_per_node", "2", str(script), str(tmp_path)], cwd=ROOT, capture_output=True,
                          text=True, timeout=180)
    logs = "".join(p.read_text(errors="replace") for p in (tmp_path / "logs").glob("workerlog.*"))
    assert proc.returncode == 0, logs[-3000:]
    import numpy as np

    b0, b1 = np.load(tmp_path / "rank0_before.npy"), np.load(tmp_path / "rank1_before.npy")
    a0, a1 = np.load(tmp_path / "rank0_after.npy"), np.load(tmp_path / "rank1_after.npy")
    assert not np.array_equal(b0, b1)  # the ranks' statistics differed
    np.testing.assert_array_equal(a0, b0)  # rank 0 kept its own
    np.testing.assert_array_equal(a1, b0)  # rank 1 now has rank 0's
    assert "synced 2" in logs  # BatchNorm's running mean and variance
