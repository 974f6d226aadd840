"""JSON lines: the tools' output convention (the last line a tool prints is one JSON object) and the
trainer's ``metrics.jsonl`` (one event per line)."""
from __future__ import annotations

import json
import os
from typing import Any, Dict, List, Optional

__all__ = ["last_json_line", "last_line_json", "read_events"]


def read_events(path: "os.PathLike[str] | str", kind: str) -> List[Dict[str, Any]]:
    """The records of ``metrics.jsonl`` whose ``event`` is ``kind`` (``[]`` when the file does not exist
    yet; a line still being written is skipped)."""
    if not os.path.isfile(path):
        return []
    events = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if isinstance(rec, dict) and rec.get("event") == kind:
                events.append(rec)
    return events


def last_json_line(text: str, key: Optional[str] = None) -> Optional[Dict[str, Any]]:
    """The last line of ``text`` that parses as a JSON object, and has ``key`` when one is given (``None``
    when there is none).  ``key`` skips JSON lines of other shapes that a tool's child processes print."""
    for line in reversed(text.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                value = json.loads(line)
            except ValueError:
                continue
            if isinstance(value, dict) and (key is None or key in value):
                return value
    return None


def last_line_json(text: str) -> Dict[str, Any]:
    """The JSON object on the last non-empty line of ``text``: the tools' output convention, checked
    strictly (unlike :func:`last_json_line`, no earlier line is looked at).

    Raises ValueError naming what it got when ``text`` is empty or its last line is not a JSON object.
    """
    for line in reversed(text.splitlines()):
        line = line.strip()
        if not line:
            continue
        try:
            value = json.loads(line)
        except ValueError as exc:
            raise ValueError(f"the last line is not JSON ({exc}): {_clip(line)!r}") from None
        if not isinstance(value, dict):
            raise ValueError(f"the last line is JSON {type(value).__name__}, not an object: {_clip(line)!r}")
        return value
    raise ValueError(f"no output: expected a JSON object on the last line, got {_clip(text)!r}")


def _clip(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} characters)"
