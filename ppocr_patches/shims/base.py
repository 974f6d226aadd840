"""What every shim declares: the upstream text it relies on, checked before anything runs."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, List


class PatchError(RuntimeError):
    """The checkout is not what a shim expects (the message names the file)."""


@dataclass(frozen=True)
class Expect:
    """``path`` (relative to the checkout) must exist and match the regex ``pattern``
    (or, with ``absent=True``, must not match it)."""

    path: str
    pattern: str
    why: str
    absent: bool = False

    def problem(self, root: Path) -> str:
        """'' when satisfied, else a one-line description naming the file."""
        file = root / self.path
        if not file.is_file():
            return f"{file}: missing ({self.why})"
        text = file.read_text(encoding="utf-8", errors="replace")
        found = re.search(self.pattern, text, flags=re.MULTILINE) is not None
        if found and self.absent:
            return f"{file}: unexpectedly contains /{self.pattern}/ ({self.why})"
        if not found and not self.absent:
            return f"{file}: does not contain /{self.pattern}/ ({self.why})"
        return ""


def check(root: Path, expects: Iterable[Expect]) -> List[str]:
    return [p for p in (e.problem(root) for e in expects) if p]
