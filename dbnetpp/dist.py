"""Process-group helpers: device choice, rank / world size, small all-reduces, buffer sync.

Used by the trainer (:mod:`dbnetpp.engine`), the evaluation (:mod:`dbnetpp.evaluation`) and the
tools; it imports neither package.  Runs unchanged single-process or under
``python -m paddle.distributed.launch``:
on GPU (``--gpus 0,1``) the backend is NCCL; on CPU (``--nproc_per_node N``)
the launcher exports ``PADDLE_DISTRI_BACKEND=gloo`` for each worker and
``paddle.distributed.init_parallel_env()`` then builds a gloo group.

A worker started by the launcher watches it: when the launcher dies without
stopping its workers (SIGKILL, node agent gone), each worker exits at once
(within about a second) with :data:`ORPHAN_EXIT_CODE`, saving nothing, rather
than training on as an orphan that keeps writing into the output folder.
"""
from __future__ import annotations

import os
import sys
import threading
import time
from dataclasses import dataclass
from typing import List, Sequence

import paddle
import paddle.distributed as dist

from .launch import usable_cores  # noqa: F401  (re-exported: the CPU cores this process may run on)


def cpu_cores_hint(device: str, world_size: int) -> str:
    """A hint when CPU training leaves cores idle, else ``""``.

    Paddle runs its CPU kernels on one thread per process (it sets ``OMP_NUM_THREADS=1``; raising it
    measured slower here, ``MKL_NUM_THREADS=2`` about 1.1x), so one process keeps one core busy; data
    parallelism over one process per core (gloo) is what uses the machine: 1.8-1.9x on 2 cores
    (``benchmarks/train.py --compare-procs 1,2``).
    """
    cores = usable_cores()
    if device != "cpu" or world_size >= cores:
        return ""
    return (f"CPU training in {world_size} process(es) keeps {world_size} of {cores} cores busy (one per process); "
            f"`python -m paddle.distributed.launch --nproc_per_node {cores} tools/train.py ...` (what "
            f"scripts/train.sh does on CPU, splitting the batch) uses them all")


@dataclass(frozen=True)
class DistEnv:
    rank: int = 0
    world_size: int = 1
    device: str = "cpu"

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def launched_world_size() -> int:
    """World size announced by ``paddle.distributed.launch`` (1 when run directly)."""
    try:
        return int(os.environ.get("PADDLE_TRAINERS_NUM", "1"))
    except ValueError:
        return 1


ORPHAN_EXIT_CODE = 129  # 128 + SIGHUP: the controlling process is gone
_watch_started = False


def watch_launcher(interval: float = 1.0) -> bool:
    """Exit this process when its parent (the launcher) dies; True if a watch was started.

    A daemon thread compares ``os.getppid()`` with the parent at start every ``interval`` s
    (a dead parent re-parents the process to init or a subreaper).  Nothing is saved: the
    other ranks are in the same situation, and the last checkpoint stays the one to resume.
    """
    global _watch_started
    parent = os.getppid()
    if _watch_started or parent <= 1:
        return False

    def watch():
        while True:
            time.sleep(interval)
            if os.getppid() != parent:
                sys.stderr.write(f"the launcher (pid {parent}) of this trainer (pid {os.getpid()}) died: "
                                 f"exiting with code {ORPHAN_EXIT_CODE} without saving\n")
                sys.stderr.flush()
                os._exit(ORPHAN_EXIT_CODE)

    threading.Thread(target=watch, name="launcher-watch", daemon=True).start()
    _watch_started = True
    return True


def setup(use_gpu: bool, log=print) -> DistEnv:
    """Pick the device and, when launched with several workers, join the process group."""
    want_gpu = bool(use_gpu) and paddle.is_compiled_with_cuda() and paddle.device.cuda.device_count() > 0
    if use_gpu and not want_gpu:
        log("note: Global.use_gpu is true but this Paddle build or machine has no usable GPU; training on CPU")
    world = launched_world_size()
    if world == 1 and os.environ.get("PADDLE_TRAINER_ENDPOINTS"):
        watch_launcher()  # a 1-process paddle.distributed.launch job
    if world > 1:
        if not want_gpu:
            # The launcher sets this for CPU workers; set it as well for hand-made launches.
            os.environ.setdefault("PADDLE_DISTRI_BACKEND", "gloo")
        watch_launcher()
        dist.init_parallel_env()
    rank = dist.get_rank() if world > 1 else 0
    if want_gpu:
        dev_id = dist.ParallelEnv().dev_id if world > 1 else 0
        device = f"gpu:{dev_id}"
    else:
        device = "cpu"
    paddle.set_device(device)
    return DistEnv(rank=rank, world_size=max(world, 1), device=device)


def all_reduce_sum(values: Sequence[float], distributed: bool) -> List[float]:
    """Sum a few numbers over all ranks (float64; exact for counts < 2**53)."""
    if not distributed:
        return [float(v) for v in values]
    t = paddle.to_tensor([float(v) for v in values], dtype="float64")
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return [float(v) for v in t.numpy().tolist()]


def all_gather_strings(values: Sequence[str], distributed: bool) -> List[str]:
    """The concatenation of every rank's ``values`` in rank order (all ranks must call it)."""
    if not distributed:
        return [str(v) for v in values]
    gathered: List[List[str]] = []
    dist.all_gather_object(gathered, [str(v) for v in values])
    return [v for part in gathered for v in part]


def any_rank(flag: bool, distributed: bool) -> bool:
    """True when ``flag`` is true on at least one rank."""
    if not distributed:
        return bool(flag)
    t = paddle.to_tensor([1.0 if flag else 0.0], dtype="float32")
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.numpy()[0] > 0)


def sync_buffers(model: paddle.nn.Layer, distributed: bool) -> int:
    """Copy rank 0's buffers (BatchNorm running mean / variance) to every rank; returns how many.

    Data parallelism keeps the parameters equal on every rank but not the BatchNorm statistics, which
    each rank accumulates from its own batches.  Evaluation is sharded, so without this each rank would
    score its share of the images with its own statistics, and the reported hmean (the one that picks
    ``best_accuracy``) would not be the score of the weights rank 0 saves.
    """
    if not distributed:
        return 0
    # BatchNorm keeps its statistics as non-trainable parameters (state-dict entries, not buffers())
    tensors = [t for t in unwrap(model).state_dict().values() if not getattr(t, "trainable", False)]
    for t in tensors:
        dist.broadcast(t, src=0)
    return len(tensors)


def barrier(distributed: bool) -> None:
    if distributed:
        dist.barrier()


def unwrap(model: paddle.nn.Layer) -> paddle.nn.Layer:
    """The plain model inside ``paddle.DataParallel`` (or the model itself)."""
    return getattr(model, "_layers", model)
