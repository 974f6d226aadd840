"""One run per output: an exclusive lock on an output folder (or file) for the life of a run.

Two trainings started on one ``save_model_dir`` would interleave ``train.log`` and race on ``latest``;
two evaluations writing one ``--json`` would leave whichever finished last.  Each tool takes the lock of
its outputs before writing anything:

* a folder ``D`` is locked by ``D/.dbnetpp.lock``; a file ``F`` by ``.F.lock`` beside it;
* the lock is a ``flock`` on that file, so the kernel releases it when the process ends, however it
  ends; the file records who holds it (pid, host, command, start time) for the message a second run
  gets, and is removed when the run releases the lock;
* a lock file left by a process that died is *stale*: the next run takes it over and says whose it was.

Linux and macOS (``fcntl``).
"""
from __future__ import annotations

import datetime
import fcntl
import json
import os
import socket
import sys
from typing import Callable, List, Optional

from .errors import ConfigError, OutputInUseError

LOCK_NAME = ".dbnetpp.lock"


def lock_path(target: str, folder: bool) -> str:
    """The lock file of ``target``: inside a folder, beside a file."""
    target = os.path.abspath(target)
    if folder:
        return os.path.join(target, LOCK_NAME)
    head, tail = os.path.split(target)
    return os.path.join(head, f".{tail}.lock")


def _holder_text(fd: int) -> str:
    os.lseek(fd, 0, os.SEEK_SET)
    raw = os.read(fd, 4096).decode("utf-8", "replace").strip()
    if not raw:
        return ""
    try:
        info = json.loads(raw)
        return (f"pid {info.get('pid')} on {info.get('host')} ({info.get('command')}, started "
                f"{info.get('started')})")
    except (ValueError, AttributeError):
        return repr(raw[:200])


def _describe_self(what: str) -> bytes:
    command = " ".join([os.path.basename(sys.argv[0] or "python")] + sys.argv[1:])[:300]
    info = {"pid": os.getpid(), "host": socket.gethostname(), "command": command, "what": what,
            "started": datetime.datetime.now().isoformat(timespec="seconds")}
    return (json.dumps(info) + "\n").encode("utf-8")


class OutputLock:
    """A held lock; :meth:`release` (or leaving the ``with`` block) removes the lock file and frees it."""

    def __init__(self, target: str, path: str, fd: int, stale: str, created: str):
        self.target, self.path, self._fd, self._created = target, path, fd, created
        self.stale = stale
        """who held the lock file this run took over (a process that died), or ``""``"""

    def release(self) -> None:
        """Remove the lock file (and the folder when this lock created it and nothing was written), free the lock."""
        if self._fd is None:
            return
        try:
            if os.stat(self.path).st_ino == os.fstat(self._fd).st_ino:
                os.unlink(self.path)
            if self._created and not os.listdir(self._created):
                os.rmdir(self._created)  # made for this run, which wrote nothing there
        except OSError:
            pass
        os.close(self._fd)
        self._fd = None

    def __del__(self) -> None:  # an owner dropped without release (e.g. a Trainer built but never run)
        self.release()

    def __enter__(self) -> "OutputLock":
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def lock_output(target: str, what: str, key: str = "", folder: bool = True,
                warn: Optional[Callable[[str], None]] = None) -> OutputLock:
    """Take the exclusive lock of ``target`` (creating the folder when ``folder``) for ``what``
    (e.g. "training").  :class:`OutputInUseError` naming the holder when another process has it,
    :class:`ConfigError` when the place cannot be written; ``warn`` is told when a stale lock of a
    dead process is taken over."""
    try:
        return _lock(target, what, key, folder, warn)
    except OSError as exc:
        raise ConfigError(f"cannot write {'the output folder' if folder else 'beside'} {os.path.abspath(target)}: "
                          f"{exc.strerror or exc}", key=key) from None


def _lock(target: str, what: str, key: str, folder: bool, warn: Optional[Callable[[str], None]]) -> OutputLock:
    if not folder and os.path.isdir(target):
        raise ConfigError(f"{os.path.abspath(target)} is a folder; give the path of the file to write", key=key)
    if folder and os.path.exists(target) and not os.path.isdir(target):
        raise ConfigError(f"{os.path.abspath(target)} is a file; give a folder to write into", key=key)
    home = target if folder else os.path.dirname(os.path.abspath(target))
    created = home if not os.path.isdir(home) else ""
    os.makedirs(home, exist_ok=True)
    path = lock_path(target, folder)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder_text(fd) or "another process"
            os.close(fd)
            raise OutputInUseError(
                f"{os.path.abspath(target)} is in use by {holder}; two runs would mix their outputs. Wait for it "
                f"to finish or choose another {'folder' if folder else 'file'} (lock file: {path})", key=key) from None
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:  # otherwise the holder released (and removed) it between our open and flock: retry
            break
        os.close(fd)
    stale = _holder_text(fd)
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, _describe_self(what))
    lock = OutputLock(target, path, fd, stale, created)
    if stale and warn is not None:
        warn(f"{os.path.abspath(target)}: took over the lock left by {stale}, which is no longer running")
    return lock


def lock_outputs(targets: List[tuple], what: str, warn: Optional[Callable[[str], None]] = None) -> List[OutputLock]:
    """Locks of several ``(path, folder, key)`` outputs of one run, all or none.  Two outputs on one path
    are refused first (one would silently replace the other)."""
    seen = {}
    for path, _folder, key in targets:
        real = os.path.realpath(path)
        if real in seen:
            raise ConfigError(f"{seen[real]} and {key} name the same path {path}: one would replace the other; "
                              f"give them different paths", key=key)
        seen[real] = key
    held: List[OutputLock] = []
    try:
        for path, folder, key in targets:
            held.append(lock_output(path, what, key=key, folder=folder, warn=warn))
    except BaseException:
        for lock in held:
            lock.release()
        raise
    return held


__all__ = ["LOCK_NAME", "OutputInUseError", "OutputLock", "lock_output", "lock_outputs", "lock_path"]
