"""Reading pickled weights and checkpoints without running code from them.

``.pdparams``, ``.pdopt`` (``paddle.save``) and ``.states`` files are Python pickles, and a pickle can
name any function to call while it is read (``os.system`` in ``__reduce__``): ``paddle.load`` and
``pickle.load`` would run it.  These readers admit only what Paddle's files hold (NumPy arrays and
dtypes, dicts, lists, tuples, numbers, strings, bytes, and Paddle's random-generator state in our
``.states``), like PyTorch's ``torch.load(weights_only=True)``, and refuse anything else with an error
naming the file and the global it asked for.  Nothing the file asks for is imported or called first.
"""
from __future__ import annotations

import io
import pickle
from typing import Any, FrozenSet, Tuple

import numpy as np

from .errors import CheckpointError

Global = Tuple[str, str]

#: what paddle.save (Paddle 2.x / 3.x) and pickle.dump of our .states write, besides plain containers
TENSOR_DATA: FrozenSet[Global] = frozenset({
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("collections", "OrderedDict"),
    ("_codecs", "encode"),  # bytes in protocol-2 pickles
})
#: the random-generator state our .states keeps (a nested pickle)
GENERATOR_STATE: FrozenSet[Global] = frozenset({
    ("paddle.base.libpaddle", "GeneratorState"), ("paddle.fluid.libpaddle", "GeneratorState"),
    ("paddle.fluid.core_avx", "GeneratorState"), ("paddle.fluid.core_noavx", "GeneratorState"),
})


NAME_TABLE_KEY = "StructuredToParameterName@@"


class UnsafeFileError(CheckpointError):
    """A pickled file asks for something other than tensor data."""


class _Restricted(pickle.Unpickler):
    def __init__(self, file, source: str, allowed: FrozenSet[Global]):
        super().__init__(file, encoding="latin1")
        self.source, self.allowed = source, allowed

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self.allowed:
            return super().find_class(module, name)
        raise UnsafeFileError(
            f"{self.source}: refused: the file asks for {module}.{name}, which is not tensor data (a pickle can "
            f"run code when it is read; only arrays, numbers, strings, lists and dicts are loaded)")


def loads(data: bytes, source: str, allowed: FrozenSet[Global] = TENSOR_DATA) -> Any:
    """Unpickle ``data`` (read from ``source``, named in errors) admitting only ``allowed`` globals."""
    try:
        return _Restricted(io.BytesIO(data), source, allowed).load()
    except UnsafeFileError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, IndexError, KeyError, AttributeError,
            UnicodeDecodeError, MemoryError) as exc:
        raise CheckpointError(f"{source}: cannot read (corrupt or truncated file?): {type(exc).__name__}: {exc}") \
            from exc


def load(path: str, allowed: FrozenSet[Global] = TENSOR_DATA) -> Any:
    """:func:`loads` of the file ``path``."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot read: {exc}") from exc
    return loads(data, path, allowed)


def load_paddle_file(path: str) -> Any:
    """A ``paddle.save`` file as ``paddle.load(path, return_numpy=True)`` returns it, read by :func:`load`:
    big parameters saved in slices are joined, Paddle 2.1's ``(name, array)`` pairs become arrays, and the
    name table ``StructuredToParameterName@@`` is dropped (``paddle.load``'s default ``keep_name_table``)."""
    obj = _arrays(_join_slices(load(path)))
    if isinstance(obj, dict):
        obj.pop(NAME_TABLE_KEY, None)
    return obj


def _join_slices(obj: Any) -> Any:
    info_key = "UnpackBigParamInfor@@"  # paddle.save's key (sic) for parameters split into slices
    if isinstance(obj, dict) and isinstance(obj.get(info_key), dict):
        for key, value in obj.pop(info_key).items():
            obj[key] = np.concatenate([obj.pop(part) for part in value["slices"]]).reshape(value["OriginShape"])
    return obj


def _arrays(obj: Any) -> Any:
    if isinstance(obj, tuple) and len(obj) == 2 and isinstance(obj[0], str) and isinstance(obj[1], np.ndarray):
        return obj[1]
    if isinstance(obj, dict):
        return type(obj)((k, _arrays(v)) for k, v in obj.items())
    if isinstance(obj, list):
        return [_arrays(v) for v in obj]
    return obj


__all__ = ["GENERATOR_STATE", "TENSOR_DATA", "UnsafeFileError", "load", "load_paddle_file", "loads"]
