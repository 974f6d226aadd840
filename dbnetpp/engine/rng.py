"""Seeding and random-number-generator state capture for exact resume.

A checkpoint stores the Python, NumPy and Paddle generator states (as plain
bytes / tuples, so ``.states`` stays readable with ``pickle`` alone) and
restores them on resume, so dropout, augmentation drawn in the main process
and shuffling continue where they stopped.
"""
from __future__ import annotations

import pickle
import random
from typing import Any, Dict

import numpy as np
import paddle

from ..safe_pickle import GENERATOR_STATE, TENSOR_DATA, loads as safe_loads


def seed_everything(seed: int, deterministic: bool = False) -> None:
    """Seed Python, NumPy and Paddle; with ``deterministic`` also ask for deterministic kernels."""
    random.seed(seed)
    np.random.seed(seed % (2 ** 32))
    paddle.seed(seed)
    if deterministic:
        flags = {"FLAGS_cudnn_deterministic": True, "FLAGS_embedding_deterministic": 1}
        for name, value in flags.items():
            try:
                paddle.set_flags({name: value})
            except (ValueError, RuntimeError):  # flag absent from this build
                pass


def capture_rng() -> Dict[str, Any]:
    return {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "paddle": pickle.dumps(paddle.get_rng_state()),
    }


def restore_rng(state: Dict[str, Any]) -> None:
    if not state:
        return
    if "python" in state:
        random.setstate(_as_tuple(state["python"]))
    if "numpy" in state:
        np.random.set_state(state["numpy"])
    if "paddle" in state:
        value = state["paddle"]
        if isinstance(value, (bytes, bytearray)):  # pickled generator states: nothing else is admitted
            value = safe_loads(bytes(value), "the paddle random state in .states", TENSOR_DATA | GENERATOR_STATE)
        paddle.set_rng_state(value)


def _as_tuple(x):
    return tuple(_as_tuple(v) for v in x) if isinstance(x, (list, tuple)) else x
