"""Command-line pieces shared by the tools: PaddleOCR's ``-c CONFIG`` and ``-o Section.key=value`` options."""
from __future__ import annotations

import argparse
import math
from typing import Optional

__all__ = ["add_config_args", "positive_float", "positive_int", "tool_parser"]


def tool_parser(doc: str, epilog: bool = False) -> argparse.ArgumentParser:
    """A parser described by a tool's module docstring: its first paragraph, and with ``epilog`` the rest
    (kept as written) after the options."""
    head, _, rest = (doc or "").partition("\n\n")
    return argparse.ArgumentParser(description=head, epilog=rest if epilog else None,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)


def add_config_args(parser: argparse.ArgumentParser, default: Optional[str] = None,
                    example: str = "Global.epoch_num=10") -> None:
    """``-c/--config`` (required unless ``default``) and ``-o/--opt`` (several values, may be repeated)."""
    parser.add_argument("-c", "--config", required=default is None, default=default,
                        help="YAML config (PaddleOCR schema)" + (f"; default {default}" if default else ""))
    parser.add_argument("-o", "--opt", nargs="+", action="extend", default=[], metavar="Section.key=value",
                        help=f"override config entries (e.g. {example}); takes several values and may be repeated")


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value
