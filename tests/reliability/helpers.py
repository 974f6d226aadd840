"""Helpers of the reliability tests: running ``tools/train.py`` / ``tools/eval.py`` as users do,
killing them, walking their process trees and checking every checkpoint they left behind.

Loaded by ``conftest.py`` (by path) and handed to the tests through the ``rel`` fixture.
"""
from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence

from testutil import last_line_json

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
CONFIG = ROOT / "tests" / "fixtures" / "configs" / "tiny_det.yml"  # shared with tests/engine
TRAIN = ROOT / "tools" / "train.py"
EVAL = ROOT / "tools" / "eval.py"
CORPUS_SCRIPT = ROOT / "tests" / "fixtures" / "bad_inputs" / "make_corpus.py"
CKPT_EXTS = (".pdparams", ".pdopt", ".states")


def overrides(data_dir: Path, out: Path, *extra: str, train_label: Optional[Path] = None,
              eval_label: Optional[Path] = None) -> List[str]:
    """``-o`` values pointing the tiny config at ``data_dir`` (train.txt / test.txt) and ``out``."""
    data_dir = Path(data_dir)
    return [f"Train.dataset.data_dir={data_dir}",
            f"Train.dataset.label_file_list=[{train_label or data_dir / 'train.txt'}]",
            f"Eval.dataset.data_dir={data_dir}",
            f"Eval.dataset.label_file_list=[{eval_label or data_dir / 'test.txt'}]",
            f"Global.save_model_dir={out}", *extra]


def tool_cmd(tool: Path, args: Sequence[str], nproc: int = 1, log_dir: Optional[Path] = None,
             config: Path = CONFIG) -> List[str]:
    cmd = [sys.executable]
    if nproc > 1:
        cmd += ["-m", "paddle.distributed.launch", "--nproc_per_node", str(nproc), "--max_restart", "0"]
        if log_dir is not None:
            cmd += ["--log_dir", str(log_dir)]
    return cmd + [str(tool), "-c", str(config), *args]


def train_cmd(opts: Sequence[str], nproc: int = 1, log_dir: Optional[Path] = None,
              config: Path = CONFIG) -> List[str]:
    return tool_cmd(TRAIN, ["-o", *opts], nproc, log_dir, config)


def env(**extra: str) -> Dict[str, str]:
    out = dict(os.environ, PYTHONUNBUFFERED="1")
    out.update(extra)
    return out


def run(cmd: Sequence[str], timeout: float = 240, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(list(cmd), cwd=str(ROOT), env=env(), capture_output=True, text=True, timeout=timeout,
                          **kwargs)


last_json = last_line_json  # the tools' last stdout line, one JSON object


def events(path: Path) -> List[dict]:
    return [json.loads(ln) for ln in Path(path).read_text(encoding="utf-8").splitlines() if ln.strip()]


# ---------------------------------------------------------------------------------------------
# background runs, kills, process trees
# ---------------------------------------------------------------------------------------------
class Background:
    """A command running in its own session, output in ``log``.

    ``paddle.distributed.launch`` starts each trainer in a session of its own, so killing the
    launcher's process group does not reach them: :meth:`kill_tree` signals every descendant
    (collected before the signal), and :meth:`close` also kills every process :meth:`adopt`-ed
    or seen by :meth:`kill_tree` that is still alive.
    """

    def __init__(self, cmd: Sequence[str], log: Path, **popen):
        self.log = Path(log)
        self._fh = open(self.log, "wb")
        self.started = time.monotonic()
        self._known: set = set()
        self.proc = subprocess.Popen(list(cmd), cwd=str(ROOT), env=env(), stdout=self._fh, stderr=subprocess.STDOUT,
                                     start_new_session=True, **popen)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def output(self) -> str:
        self._fh.flush()
        return self.log.read_text(errors="replace")

    def adopt(self, pids: Iterable[int]) -> None:
        self._known.update(pids)

    def wait_known_gone(self, timeout: float) -> bool:
        """Wait until every known process of the job has ended; False on timeout."""
        deadline = time.monotonic() + timeout
        while any(alive(p) for p in self._known):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True

    def wait(self, timeout: float) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            if self.proc.poll() is None:
                self.kill_tree(signal.SIGKILL)

    def kill_tree(self, sig: int = signal.SIGKILL) -> None:
        """``sig`` to the top process, its process group and all its descendants."""
        pids = descendants(self.proc.pid)
        self._known.update(pids)
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            pass
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass

    def close(self) -> None:
        """Kill whatever is left (test clean-up)."""
        if self.proc.poll() is None:
            self.kill_tree(signal.SIGKILL)
        for pid in self._known:
            if alive(pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass
        self._fh.close()


def wait_for_text(path: Path, needle: str, timeout: float, proc: Optional[subprocess.Popen] = None,
                  poll: float = 0.02) -> bool:
    """Poll the text file ``path`` until it contains ``needle``; False on timeout or if ``proc`` ended."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if needle in Path(path).read_text(errors="replace"):
                return True
        except FileNotFoundError:
            pass
        if proc is not None and proc.poll() is not None:
            return needle in Path(path).read_text(errors="replace") if Path(path).exists() else False
        time.sleep(poll)
    return False


def children(pid: int) -> List[int]:
    out: List[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            out += [int(p) for p in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError, ValueError):
            pass
    return out


def descendants(pid: int) -> List[int]:
    out, todo = [], [pid]
    while todo:
        for c in children(todo.pop()):
            out.append(c)
            todo.append(c)
    return out


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except (FileNotFoundError, ProcessLookupError):
        return ""


def environ(pid: int) -> Dict[str, str]:
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except (FileNotFoundError, ProcessLookupError):
        return {}
    return dict(item.split("=", 1) for item in raw.decode(errors="replace").split("\0") if "=" in item)


def alive(pid: int) -> bool:
    try:
        state = [ln for ln in Path(f"/proc/{pid}/status").read_text().splitlines() if ln.startswith("State:")]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return bool(state) and "Z" not in state[0].split()[1]


def trainer_ranks(launcher_pid: int, script: str = "tools/train.py") -> Dict[int, int]:
    """``{rank: pid}`` of the trainer processes started by ``paddle.distributed.launch``."""
    out = {}
    for pid in descendants(launcher_pid):
        if script in cmdline(pid) and "paddle.distributed.launch" not in cmdline(pid):
            rank = environ(pid).get("PADDLE_TRAINER_ID")
            if rank is not None and rank.isdigit():
                out.setdefault(int(rank), pid)
    return out


def rss_kb(pids: Iterable[int]) -> int:
    total = 0
    for pid in pids:
        try:
            for ln in Path(f"/proc/{pid}/status").read_text().splitlines():
                if ln.startswith("VmRSS:"):
                    total += int(ln.split()[1])
        except (FileNotFoundError, ProcessLookupError):
            pass
    return total


# ---------------------------------------------------------------------------------------------
# checkpoints
# ---------------------------------------------------------------------------------------------
def checkpoint_prefixes(out: Path) -> List[Path]:
    names = {p.name[: -len(ext)] for ext in CKPT_EXTS for p in Path(out).glob(f"*{ext}")}
    return sorted(Path(out) / n for n in names)


def check_checkpoint(prefix: Path) -> dict:
    """Load the three files of ``prefix`` the way a resume does; returns the states.

    Fails the test if a file is missing or unreadable, or if the optimizer's learning-rate
    position disagrees with ``.states`` (files from two different saves).
    """
    import paddle

    from dbnetpp.checkpoint import load_params

    for ext in CKPT_EXTS:
        assert Path(f"{prefix}{ext}").is_file(), f"{prefix}{ext} missing"
    params = load_params(str(prefix))  # CheckpointError if corrupt
    assert params and all(hasattr(v, "shape") for v in params.values())
    opt = paddle.load(f"{prefix}.pdopt")
    with open(f"{prefix}.states", "rb") as f:
        states = pickle.load(f)
    assert isinstance(states, dict) and "global_step" in states, states
    sched = opt.get("LR_Scheduler") if isinstance(opt, dict) else None
    if sched is not None and "lr_last_epoch" in states:
        assert sched.get("last_epoch") == states["lr_last_epoch"], \
            f"{prefix}: .pdopt is at lr step {sched.get('last_epoch')} but .states at {states['lr_last_epoch']}"
    return states


def check_all_checkpoints(out: Path) -> Dict[str, dict]:
    """Every checkpoint in ``out`` loads; no temporary file is taken for one."""
    return {p.name: check_checkpoint(p) for p in checkpoint_prefixes(out)}


def params_of(prefix: Path) -> dict:
    from dbnetpp.checkpoint import load_params

    return {k: v.numpy() if hasattr(v, "numpy") else v for k, v in load_params(str(prefix)).items()}


def assert_same_params(a: Path, b: Path) -> None:
    import numpy as np

    pa, pb = params_of(a), params_of(b)
    assert pa.keys() == pb.keys()
    diff = [k for k in pa if not np.array_equal(pa[k], pb[k])]
    assert not diff, f"{len(diff)} of {len(pa)} tensors differ between {a} and {b}, e.g. {diff[:3]}"
