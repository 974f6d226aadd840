"""The tools' output convention: the last line a tool prints is one JSON object."""
from __future__ import annotations

import json
from typing import Any, Dict, Optional

__all__ = ["last_json_line"]


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
