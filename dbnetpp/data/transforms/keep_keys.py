"""KeepKeys: the end of a pipeline, keeps the listed keys in order (labels by name)."""
from __future__ import annotations

from typing import Any, Dict, Mapping, Optional, Sequence, Set

from ...errors import ConfigError, DataError
from ...registry import TRANSFORMS

# Keys of a sample before the first transform, and the keys each transform adds; the transforms
# not listed in either table below are unknown to the config check, which then skips the check.
SOURCE_KEYS = ("img_path", "label", "image")
ADDED_KEYS = {
    "DetLabelEncode": ("polys", "texts", "ignore_tags"),
    "DetResizeForTest": ("shape",),
    "MakeBorderMap": ("threshold_map", "threshold_mask"),
    "MakeShrinkMap": ("shrink_map", "shrink_mask"),
}
KEY_PRESERVING = ("DecodeImage", "EastRandomCropData", "IaaAugment", "NormalizeImage", "Resize", "ToCHWImage")


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

    @staticmethod
    def check_config(args: Mapping[str, Any], mode: str) -> None:
        """Config check (see ``validate_config``): ``keep_keys`` is a non-empty list of distinct names."""
        keys = args.get("keep_keys")
        if not isinstance(keys, (list, tuple)) or not keys or not all(isinstance(k, str) for k in keys):
            raise ConfigError(f"must be a non-empty list of key names, got {keys!r}", key="keep_keys")
        if len(set(keys)) != len(keys):
            raise ConfigError(f"has duplicates: {list(keys)}", key="keep_keys")

    @staticmethod
    def available_keys(previous: Sequence[tuple]) -> Optional[Set[str]]:
        """Keys a sample holds after the transforms ``previous`` = ``[(name, args), ...]``, or ``None``
        when one of them is not known to this check."""
        keys = set(SOURCE_KEYS)
        for name, args in previous:
            if name == "KeepKeys":
                keys = set((args or {}).get("keep_keys") or ())
            elif name in ADDED_KEYS:
                keys.update(ADDED_KEYS[name])
            elif name not in KEY_PRESERVING:
                return None
        return keys

    def __call__(self, data: Dict[str, Any]) -> Dict[str, Any]:
        missing = [k for k in self.keep_keys if k not in data]
        if missing:
            raise DataError(f"KeepKeys: sample has no {', '.join(repr(k) for k in missing)} "
                            f"(available: {', '.join(sorted(map(str, data)))}); is a transform missing "
                            f"before KeepKeys?")
        return {k: data[k] for k in self.keep_keys}
