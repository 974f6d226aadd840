"""A dbnetpp config as PaddleOCR release/2.5's trainer reads it: the same recipe without our own keys.

``paddleocr_config(cfg)`` drops the ``Global`` keys PaddleOCR does not have
(:data:`dbnetpp.global_schema.OWN_GLOBAL_KEYS`) and the neck options of our ASF block. PaddleOCR
ignores unknown keys, so a config with them still loads upstream; dropping them makes the file say
what upstream actually trains. A setting that upstream would silently train differently (the ASF
gate options away from their defaults) is refused instead of dropped.
"""
from __future__ import annotations

from typing import Any, Dict, Mapping

import yaml

from dbnetpp.config import clean_for_dump
from dbnetpp.global_schema import OWN_GLOBAL_KEYS

#: our ASF options and the values that reproduce PaddleOCR's ASF block
OWN_NECK_DEFAULTS = {"asf_gate_init": "kaiming", "asf_gate_norm": False}


class UnsupportedUpstream(ValueError):
    """The config asks for something PaddleOCR release/2.5 cannot train."""


def paddleocr_config(cfg: Mapping[str, Any]) -> Dict[str, Any]:
    """A copy of ``cfg`` (loaded by :func:`dbnetpp.config.load_config`) for PaddleOCR's trainer."""
    out = clean_for_dump(cfg)
    g = out.setdefault("Global", {})
    for key in OWN_GLOBAL_KEYS:
        g.pop(key, None)
    neck = (out.get("Architecture") or {}).get("Neck") or {}
    for key, default in OWN_NECK_DEFAULTS.items():
        value = neck.pop(key, None)
        if neck.get("use_asf") and value is not None and value != default:
            raise UnsupportedUpstream(f"Architecture.Neck.{key}={value!r}: PaddleOCR's ASF block has no such "
                                      f"option (only {default!r} trains the same model there)")
    return out


def write_paddleocr_config(cfg: Mapping[str, Any], path: str) -> str:
    """:func:`paddleocr_config` of ``cfg`` written as YAML to ``path``; returns ``path``."""
    with open(path, "w", encoding="utf-8") as f:
        yaml.safe_dump(paddleocr_config(cfg), f, sort_keys=False, allow_unicode=True)
    return path


__all__ = ["OWN_NECK_DEFAULTS", "UnsupportedUpstream", "paddleocr_config", "write_paddleocr_config"]
