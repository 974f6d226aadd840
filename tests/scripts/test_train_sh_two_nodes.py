"""scripts/train.sh multi-node: two launchers on 127.0.0.1 (--nnodes 2 --master --rank 0/1), one CPU
process each (gloo), train a tiny config to completion as one 2-rank job."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import pytest

CONFIG = "configs/det/cpu/det_mv3_db++_tiny.yml"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_nodes_on_localhost(root_dir, tiny_data, tiny_overrides, tmp_path):
    port = _free_port()
    out = tmp_path / "out"
    opts = tiny_overrides(CONFIG, tiny_data, out, steps=2, batch=1)
    env = {**os.environ, "PYTHON": sys.executable}
    procs = []
    for rank in (0, 1):
        cmd = ["bash", "scripts/train.sh", CONFIG, "cpu", "--nnodes", "2", "--master", f"127.0.0.1:{port}",
               "--rank", str(rank), "--log-dir", str(tmp_path / f"logs{rank}"), "-o", *opts]
        procs.append(subprocess.Popen(cmd, cwd=root_dir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                      text=True))
    deadline = time.time() + 240
    outputs = []
    try:
        for p in procs:
            outputs.append(p.communicate(timeout=max(1, deadline - time.time()))[0])
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    for rank, (p, text) in enumerate(zip(procs, outputs)):
        assert p.returncode == 0, f"node {rank}:\n{text[-3000:]}"
        assert "total batch     1 per card x 1 card(s) x 2 node(s) = 2" in text
    log0 = (tmp_path / "logs0" / "workerlog.0").read_text(errors="replace")
    log1 = (tmp_path / "logs1" / "workerlog.0").read_text(errors="replace")
    assert "world size 2 (gloo)" in log0
    # the job's rank 0 (node 0) ran both steps and wrote the checkpoint and the summary
    summary = json.loads([line for line in log0.splitlines() if line.startswith("{")][-1])
    assert summary["steps"] == 2
    assert (out / "latest.pdparams").is_file()
    assert "Traceback" not in log1
