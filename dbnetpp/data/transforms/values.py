"""Safe parsing of numeric config values such as ``scale: 1./255.`` (a string in YAML).

PaddleOCR ``eval()``-s such strings; here only number literals combined with ``+ - * / **``
and parentheses are accepted, by walking the parsed syntax tree.  Anything else (names, calls,
attribute access) is a ``ValueError``.
"""
from __future__ import annotations

import ast
import math
import operator
from typing import Any

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
