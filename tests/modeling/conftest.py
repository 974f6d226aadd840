"""Helpers for comparing models with the upstream PaddleOCR reference data (``ref_dir``)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Dict

import numpy as np
import pytest


def read_tsv(path: Path):
    """``[(name, shape, dtype), ...]`` from a ``state_dict.tsv``."""
    rows = []
    for line in path.read_text().splitlines():
        name, shape, dtype = line.split("\t")
        rows.append((name, json.loads(shape), dtype))
    return rows


def rule_weights(tsv: Path) -> Dict[str, np.ndarray]:
    """The rule-generated ResNet weights described in the reference README."""
    out = {}
    for i, (name, shape, _) in enumerate(read_tsv(tsv)):
        rng = np.random.default_rng(10000 + i)
        if name.endswith("._mean"):
            a = 0.1 * rng.standard_normal(shape)
        elif name.endswith("._variance"):
            a = rng.uniform(0.5, 1.5, shape)
        elif len(shape) == 4:
            a = rng.standard_normal(shape) * np.sqrt(1.0 / (shape[1] * shape[2] * shape[3]))
        elif name.endswith(".weight"):
            a = rng.uniform(0.5, 1.0, shape)
        elif name.endswith(".bias"):
            a = 0.1 * rng.standard_normal(shape)
        else:
            raise AssertionError(f"no rule for {name}")
        out[name] = a.astype(np.float32)
    return out


@pytest.fixture(scope="session")
def ppocr_ref(ref_dir):
    """Accessors for one reference model folder: architecture, weights (numpy), outputs."""

    class Ref:
        root = ref_dir

        @staticmethod
        def arch(name):
            return json.loads((ref_dir / name / "summary.json").read_text())["architecture_config"]

        @staticmethod
        def tsv(name):
            return read_tsv(ref_dir / name / "state_dict.tsv")

        @staticmethod
        def weights(name):
            import paddle

            folder = ref_dir / name
            if (folder / "weights.pdparams").exists():
                return {k: np.asarray(v.numpy() if hasattr(v, "numpy") else v)
                        for k, v in paddle.load(str(folder / "weights.pdparams")).items()}
            return rule_weights(folder / "state_dict.tsv")

        @staticmethod
        def input():
            return np.load(ref_dir / "input.npy")

    return Ref
