"""Exception types with messages that point at the offending file, line or key."""
from __future__ import annotations

import os
from typing import Optional


def cwd_hint(path: str) -> str:
    """`` (relative to the current directory /x)`` for a relative ``path``, else ``""``: for messages about
    paths that were not found."""
    return "" if os.path.isabs(path) else f" (relative to the current directory {os.getcwd()})"


class DBNetError(Exception):
    """Base class of every error this package raises on purpose."""


class ConfigError(DBNetError, ValueError):
    """A config file, override or module argument is invalid.

    ``key`` is the dotted path of the offending entry (``Architecture.Backbone.scale``),
    ``file`` the YAML file it came from.  Both are folded into the message.
    """

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
        """Return a copy located in ``file`` with ``prefix`` prepended to the key."""
        key = f"{prefix}.{self.key}" if prefix and self.key else (prefix or self.key)
        return ConfigError(self.raw_message, key=key, file=file or self.file)


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
