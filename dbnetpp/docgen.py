"""Pieces of the documentation generators (``docs/gen_config_reference.py``,
``tests/reliability/gen_doc.py``): Markdown tables and the shared ``[--check]`` command line, by which a
generated document is (re)written or checked against what its generator renders."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Callable, Iterable, List, Optional, Sequence

__all__ = ["generator_main", "table"]


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def table(head: Sequence[str], rows: Iterable[Sequence[Any]]) -> List[str]:
    """A Markdown table as lines: ``head`` as written, each cell of ``rows`` on one line with ``|`` escaped."""
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return lines


def generator_main(argv: Optional[Sequence[str]], description: str, default_out: Path, command: str,
                   new_text: Callable[[str, Path], str]) -> int:
    """The command line of a generator: ``--check`` exits 1 (writing nothing) when the document differs from
    ``new_text(current text, path)``, else the document is (re)written.  ``command`` is how to regenerate it."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--check", action="store_true", help="exit 1 if the document is stale, write nothing")
    ap.add_argument("--out", default=str(default_out), help=f"document path (default {default_out.name})")
    args = ap.parse_args(argv)
    path = Path(args.out)
    current = path.read_text(encoding="utf-8") if path.exists() else ""
    text = new_text(current, path)
    if args.check:
        if current != text:
            print(f"{path} is stale: run {command}", file=sys.stderr)
            return 1
        print(f"{path} is up to date")
        return 0
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    print(f"wrote {path}")
    return 0
