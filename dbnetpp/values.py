"""Numbers in configs and on command lines: parsed as data, finite, in range.

* :func:`parse_number` reads values such as ``scale: 1./255.`` (a string in YAML).  PaddleOCR
  ``eval()``-s such strings; here only number literals combined with ``+ - * / **`` and parentheses
  are accepted, by walking the parsed syntax tree.  Anything else (names, calls, attribute access)
  is a ``ValueError``.
* :func:`bounded` adds a range (module arguments such as ``box_thresh`` in [0, 1]).
* :func:`non_finite_entries` finds every NaN / infinity in a nested config, including strings that
  read as one (``-o PostProcess.box_thresh=nan`` gives the string ``'nan'``, which ``float()`` accepts).
"""
from __future__ import annotations

import ast
import math
import operator
from typing import Any, Iterator, Optional, Tuple

_BINOPS = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: operator.pow,
}
_UNOPS = {ast.UAdd: operator.pos, ast.USub: operator.neg}


def _walk(node: ast.AST) -> float:
    if isinstance(node, ast.Expression):
        return _walk(node.body)
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) \
            and not isinstance(node.value, bool):
        return float(node.value)
    if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
        left, right = _walk(node.left), _walk(node.right)
        if isinstance(node.op, ast.Pow) and abs(right) > 64:
            raise ValueError("exponent too large")
        return _BINOPS[type(node.op)](left, right)
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNOPS:
        return _UNOPS[type(node.op)](_walk(node.operand))
    raise ValueError(f"unsupported element {type(node).__name__}")


def parse_number(value: Any, name: str = "value") -> float:
    """A finite float from a number or an arithmetic string like ``"1./255."``."""
    if isinstance(value, bool):
        raise ValueError(f"{name} must be a number, got {value!r}")
    if isinstance(value, (int, float)):
        result = float(value)
    elif isinstance(value, str):
        text = value.strip()
        if not text or len(text) > 100:
            raise ValueError(f"{name} must be a number or an arithmetic expression, got {value!r}")
        try:
            result = _walk(ast.parse(text, mode="eval"))
        except (SyntaxError, ValueError, ZeroDivisionError, OverflowError) as exc:
            raise ValueError(f"{name}: cannot read {value!r} as a number ({exc})") from None
    else:
        raise ValueError(f"{name} must be a number, got {type(value).__name__} {value!r}")
    if not math.isfinite(result):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return result


def parse_range(value: Any, name: str):
    """A number -> ``(v, v)``; a 2-list/tuple -> ``(lo, hi)`` with ``lo <= hi``."""
    if isinstance(value, (list, tuple)):
        if len(value) != 2:
            raise ValueError(f"{name} must be a number or a [low, high] pair, got {value!r}")
        lo, hi = parse_number(value[0], name), parse_number(value[1], name)
        if lo > hi:
            raise ValueError(f"{name}: low {lo} is larger than high {hi}")
        return lo, hi
    v = parse_number(value, name)
    return v, v


def bounded(value: Any, name: str, low: Optional[float] = None, high: Optional[float] = None,
            low_open: bool = False, high_open: bool = False) -> float:
    """:func:`parse_number` within ``[low, high]`` (``low_open`` / ``high_open``: the bound itself
    excluded); ``ValueError`` naming ``name``, the range and the value otherwise."""
    v = parse_number(value, name)
    too_low = low is not None and (v <= low if low_open else v < low)
    too_high = high is not None and (v >= high if high_open else v > high)
    if too_low or too_high:
        left = "-inf" if low is None else f"{low:g}"
        right = "inf" if high is None else f"{high:g}"
        brackets = ("(" if low_open or low is None else "[", ")" if high_open or high is None else "]")
        raise ValueError(f"{name} must be in {brackets[0]}{left}, {right}{brackets[1]}, got {value!r}")
    return v


def _non_finite(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, str) and len(value) <= 400:
        try:
            return not math.isfinite(float(value))
        except (ValueError, OverflowError):
            return False
    return False


def non_finite_entries(obj: Any, prefix: str = "") -> Iterator[Tuple[str, Any]]:
    """``(dotted key, value)`` of every NaN / infinity in nested mappings and lists (list items by
    index), strings such as ``'nan'``, ``'-inf'`` or ``'1e999'`` included."""
    if isinstance(obj, dict):
        items = ((str(k), v) for k, v in obj.items() if not str(k).startswith("__"))
    elif isinstance(obj, (list, tuple)):
        items = ((str(i), v) for i, v in enumerate(obj))
    else:
        if _non_finite(obj):
            yield prefix, obj
        return
    for key, value in items:
        yield from non_finite_entries(value, f"{prefix}.{key}" if prefix else key)
