"""KeepKeys: the end of a pipeline, keeps the listed keys in order (labels by name)."""
from __future__ import annotations

from typing import Any, Dict, Sequence

from ...errors import DataError
from ...registry import TRANSFORMS


@TRANSFORMS.register()
class KeepKeys:
    """Returns a new ``dict`` holding exactly ``keep_keys``, in that order.

    (PaddleOCR returns a list; a dict lets the loss and metric look labels up by name.)
    """

    def __init__(self, keep_keys: Sequence[str]):
        if not isinstance(keep_keys, (list, tuple)) or not keep_keys or \
                not all(isinstance(k, str) for k in keep_keys):
            raise ValueError(f"keep_keys must be a non-empty list of key names, got {keep_keys!r}")
        if len(set(keep_keys)) != len(keep_keys):
            raise ValueError(f"keep_keys has duplicates: {list(keep_keys)}")
        self.keep_keys = list(keep_keys)

    def __call__(self, data: Dict[str, Any]) -> Dict[str, Any]:
        missing = [k for k in self.keep_keys if k not in data]
        if missing:
            raise DataError(f"KeepKeys: sample has no {', '.join(repr(k) for k in missing)} "
                            f"(available: {', '.join(sorted(map(str, data)))}); is a transform missing "
                            f"before KeepKeys?")
        return {k: data[k] for k in self.keep_keys}
