"""JSON lines: the tools' output convention (the last line a tool prints is one JSON object) and the
trainer's ``metrics.jsonl`` (one event per line)."""
from __future__ import annotations

import json
import os
from typing import Any, Dict, List, Optional

__all__ = ["last_json_line", "read_events"]


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


def last_json_line(text: str) -> Optional[Dict[str, Any]]:
    """The last line of ``text`` that parses as a JSON object (``None`` when there is none)."""
    for line in reversed(text.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                value = json.loads(line)
            except ValueError:
                continue
            if isinstance(value, dict):
                return value
    return None
