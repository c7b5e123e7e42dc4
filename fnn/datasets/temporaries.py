"""The temporary ``.part`` files downloads write, and the removal of those a killed download left behind.

A download streams into ``.<name>.XXXXXXXX.part`` beside its target
(``XXXXXXXX``: eight of ``tempfile``'s characters) and holds an exclusive
``flock`` on it while it lives; the lock goes with the process, however it
ends. Before downloading ``<name>``, :func:`remove_stale` deletes the
temporaries of that name nobody holds and nobody has written to for
:data:`STALE_AGE` seconds: a ``kill -9``, a power cut or a signal arriving
mid-cleanup leaves nothing for good, and a concurrent download of the same
file in another process keeps its file. Nothing else is touched: other
names, links, folders, files of another pattern.
"""

from __future__ import annotations

import os
import re
import stat
import tempfile
import time
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: an open file cannot be deleted there, which protects a live download
    fcntl = None

SUFFIX = ".part"
STALE_AGE = 60.0  # seconds unwritten; a live download holds its lock from the instant after it creates the file


def prefix(name: str) -> str:
    """The start of every temporary file of the download of ``name``."""
    return f".{name}."


def is_temporary(filename: str, name: str) -> bool:
    """True when ``filename`` has exactly the form of a temporary of ``name``: ``.<name>.XXXXXXXX.part``."""
    return re.fullmatch(re.escape(prefix(name)) + r"[a-z0-9_]{8}" + re.escape(SUFFIX), filename) is not None


def create(folder, name: str) -> tuple:
    """``(fd, path)`` of a new temporary for ``name`` in ``folder``, open for writing and locked."""
    fd, path = tempfile.mkstemp(dir=folder, prefix=prefix(name), suffix=SUFFIX)
    if fcntl is not None:
        fcntl.flock(fd, fcntl.LOCK_EX)
    return fd, path


def _unheld(path) -> bool:
    """True when no process holds ``path``'s lock (probed without waiting, and released at once)."""
    if fcntl is None:
        return True
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def remove_stale(folder, name: str, now: float | None = None) -> list:
    """Delete the temporaries of ``name`` in ``folder`` that no live download holds; returns their paths.

    Only regular files named like :func:`is_temporary`, unwritten for
    :data:`STALE_AGE` seconds and unlocked, are removed.
    """
    folder = Path(folder)
    now = time.time() if now is None else now
    removed = []
    try:
        entries = list(os.scandir(folder))
    except FileNotFoundError:
        return removed
    for entry in entries:
        if not is_temporary(entry.name, name):
            continue
        try:
            info = entry.stat(follow_symlinks=False)
        except FileNotFoundError:
            continue
        if not stat.S_ISREG(info.st_mode) or now - info.st_mtime < STALE_AGE or not _unheld(entry.path):
            continue
        try:
            os.unlink(entry.path)
            removed.append(Path(entry.path))
        except OSError:  # gone already, or (Windows) still open: not ours to force
            pass
    return removed
