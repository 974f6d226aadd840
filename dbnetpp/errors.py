"""Every exception the project raises on purpose, with its exit code: one table for all tools.

=================================  ====  ==============================================================
exception                          exit  meaning (message form)
=================================  ====  ==============================================================
:class:`ConfigError`               2     the config, an override or the command line is invalid; nothing
                                         ran (``FILE: key 'Section.key': problem``)
:class:`OutputInUseError`          2     another run holds the output folder / file (names its pid)
:class:`UsageError`                2     a tool's inputs do not fit together, or a step of a multi-step
                                         tool failed (``tools/demo.py``, ``tools/finetune.py``, the launcher)
:class:`StepFailed`                2     a child process of a multi-step tool or benchmark failed (names
                                         the step, its exit code and the last lines of its log)
:class:`DataError`                 1     an input file is invalid (``FILE:LINE: problem``)
:class:`CheckpointError`           1     a weights / checkpoint file is missing, corrupt, unsafe or broken
:class:`LoaderError`               1     the data loader cannot make a batch
:class:`NonFiniteLossError`        1     training stopped: non-finite losses in a row, or NaN weights
``OSError``                        1     the file system refused (``PATH: reason``: full disk, permissions)
:class:`TrainingInterrupted`       128+  a signal stopped training after saving ``latest`` (130 SIGINT,
                                   sig   143 SIGTERM); ``AbortRequested`` (engine.guard): stopped at once
=================================  ====  ==============================================================

:func:`exit_code` reads the table; :func:`dbnetpp.cli.run_tool` prints ``PROG: error: MESSAGE`` (one line,
no traceback) and returns the code, for every tool under ``tools/`` and ``benchmarks/`` and the launcher.
"""
from __future__ import annotations

import collections
import os
import signal
from typing import List, Optional


def cwd_hint(path: str) -> str:
    """`` (relative to the current directory /x)`` for a relative ``path``, else ``""``: for messages about
    paths that were not found."""
    return "" if os.path.isabs(path) else f" (relative to the current directory {os.getcwd()})"


def quote(text: str, limit: int = 80) -> str:
    """``text`` for an error message: at most ``limit`` characters, and its length when cut (a bad line of a
    file may be megabytes long)."""
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


class DBNetError(Exception):
    """Base class of every error this package raises on purpose."""

    exit_code = 1


class ConfigError(DBNetError, ValueError):
    """A config file, override or module argument is invalid.

    ``key`` is the dotted path of the offending entry (``Architecture.Backbone.scale``),
    ``file`` the YAML file it came from.  Both are folded into the message.
    """

    exit_code = 2

    def __init__(self, message: str, key: str = "", file: Optional[str] = None):
        self.raw_message = message
        self.key = key
        self.file = file
        super().__init__(self._format())

    def _format(self) -> str:
        where = []
        if self.file:
            where.append(str(self.file))
        if self.key:
            where.append(f"key '{self.key}'")
        prefix = ": ".join(where)
        return f"{prefix}: {self.raw_message}" if prefix else self.raw_message

    def with_context(self, file: Optional[str] = None, prefix: str = "") -> "ConfigError":
        """Return a copy (of the same class) located in ``file`` with ``prefix`` prepended to the key."""
        key = f"{prefix}.{self.key}" if prefix and self.key else (prefix or self.key)
        return type(self)(self.raw_message, key=key, file=file or self.file)


class OutputInUseError(ConfigError):
    """Another process holds the lock of an output this run would write (:mod:`dbnetpp.output_lock`)."""


class UsageError(ConfigError):
    """A tool's inputs do not fit together (e.g. the launcher's options), or a step of a multi-step tool
    failed; the message says which and what to do."""


def log_tail(path: "os.PathLike[str] | str", lines: int) -> List[str]:
    """The last ``lines`` lines of the text file ``path`` (line ends removed, undecodable bytes replaced),
    read without holding the whole file; raises ``OSError`` when it cannot be read."""
    with open(path, encoding="utf-8", errors="replace") as f:
        return [line.rstrip("\r\n") for line in collections.deque(f, maxlen=lines)]


class StepFailed(UsageError):
    """A step of a multi-step tool or benchmark (a child process) failed: the message names the step, its
    exit code and the last lines of its output (:meth:`from_log`)."""

    @classmethod
    def from_log(cls, what: str, returncode: int, log: "os.PathLike[str] | str", lines: int = 25) -> "StepFailed":
        """``WHAT failed (exit N); last lines of LOG:`` followed by the last ``lines`` lines of the file ``log``."""
        try:
            tail = log_tail(log, lines)
        except OSError as exc:
            tail = [f"({exc.strerror or exc})"]
        return cls(f"{what} failed (exit {returncode}); last lines of {log}:\n" + "\n".join(tail))


class DataError(DBNetError, ValueError):
    """A data file (image, label line, GT file) is invalid.  Message names file[:line]."""

    def __init__(self, message: str, file: Optional[str] = None, line: Optional[int] = None):
        self.raw_message = message
        self.file = file
        self.line = line
        loc = ""
        if file is not None:
            loc = f"{file}:{line}" if line is not None else str(file)
        super().__init__(f"{loc}: {message}" if loc else message)


class CheckpointError(DBNetError, RuntimeError):
    """A checkpoint or pretrained-weight file is missing, corrupt or matches nothing."""


class LoaderError(DBNetError, RuntimeError):
    """The data loader could not make a batch (e.g. samples of different shapes); not a bad sample."""


class NonFiniteLossError(DBNetError, RuntimeError):
    """Too many consecutive steps had a NaN or infinite loss (or gradient)."""


class NonFiniteWeightsError(NonFiniteLossError):
    """An update left parameters holding NaN or infinity (e.g. a learning rate too large to represent
    the step): training stops at once, before anything is saved from those weights."""


class TrainingInterrupted(DBNetError, RuntimeError):
    """Raised after a graceful stop on a signal (``latest`` saved); ``exit_code`` is 128 + signum."""

    def __init__(self, signum: int):
        self.signum = signum
        self.exit_code = 128 + signum
        super().__init__(f"training stopped by {signal.Signals(signum).name}; 'latest' was saved")


def exit_code(exc: BaseException) -> int:
    """The exit code of ``exc`` by the table above (1 for an ``OSError`` or anything unlisted)."""
    code = getattr(exc, "exit_code", None)
    if isinstance(code, int) and not isinstance(code, bool):
        return code
    if isinstance(exc, KeyboardInterrupt):
        return 130
    return 1


def error_text(exc: BaseException) -> str:
    """The one-line message of ``exc``: its own for project errors; ``PATH: reason`` for an ``OSError``."""
    if isinstance(exc, OSError) and not isinstance(exc, DBNetError) and exc.strerror:
        where = exc.filename if exc.filename is not None else ""
        return f"{where}: {exc.strerror}" if where else exc.strerror
    return str(exc) or type(exc).__name__
