"""Command-line pieces shared by the tools: PaddleOCR's ``-c CONFIG`` and ``-o Section.key=value`` options,
argument types, and :func:`run_tool`, which turns every project error into one line and its exit code."""
from __future__ import annotations

import argparse
import math
import signal
import sys
from typing import Callable, List, Optional

from .errors import DBNetError, error_text, exit_code

__all__ = ["add_config_args", "int_list", "positive_float", "positive_int", "run_tool", "sigterm_as_interrupt",
           "tool_parser", "unit_float"]


def run_tool(prog: str, body: Callable[[], int]) -> int:
    """``body()``'s exit code; a project error (:mod:`dbnetpp.errors`' table) or an ``OSError`` becomes the one
    line ``PROG: error: MESSAGE`` on stderr and its exit code, a signal's stop ``PROG: MESSAGE`` and 128 + signal,
    never a traceback.  Anything else is a bug and keeps its traceback."""
    try:
        return body()
    except (DBNetError, OSError) as exc:
        code = exit_code(exc)
        sys.stdout.flush()
        print(f"{prog}: {'' if code > 100 else 'error: '}{error_text(exc)}", file=sys.stderr, flush=True)
        return code
    except KeyboardInterrupt as exc:  # engine.guard.AbortRequested (a signal), or Ctrl-C before handlers were set
        sys.stdout.flush()
        print(f"{prog}: {str(exc) or 'interrupted (SIGINT)'}", file=sys.stderr, flush=True)
        return exit_code(exc)


def sigterm_as_interrupt() -> None:
    """Let SIGTERM stop this process as Ctrl-C does: a ``KeyboardInterrupt`` ("interrupted by SIGTERM"), so a
    benchmark stops the run it waits on (:func:`dbnetpp.launch.run_until`) and :func:`run_tool` exits 130."""
    def interrupt(signum: int, _frame) -> None:
        raise KeyboardInterrupt(f"interrupted by {signal.Signals(signum).name}")

    signal.signal(signal.SIGTERM, interrupt)


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


def int_list(minimum: int, what: str, example: str) -> Callable[[str], List[int]]:
    """argparse type: comma-separated integers, each at least ``minimum`` (e.g. ``int_list(32, "long sides",
    "960,1280")``)."""
    def parse(text: str) -> List[int]:
        try:
            values = [int(v) for v in text.split(",") if v.strip()]
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected comma-separated {what} such as {example}; got {text!r}") \
                from None
        if not values or any(v < minimum for v in values):
            raise argparse.ArgumentTypeError(f"{what} must be >= {minimum}, got {text!r}")
        return values
    return parse


def _float_where(text: str, ok: Callable[[float], bool], expected: str) -> float:
    """``text`` as a float for which ``ok`` holds (NaN never does), else ArgumentTypeError."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if math.isnan(value) or not ok(value):
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
    return value


def unit_float(text: str) -> float:
    """argparse type: a number in [0, 1] (thresholds, probabilities)."""
    return _float_where(text, lambda v: 0.0 <= v <= 1.0, "a number in [0, 1]")


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0."""
    return _float_where(text, lambda v: math.isfinite(v) and v > 0, "a positive number")
