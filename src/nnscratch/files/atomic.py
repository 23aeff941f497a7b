"""Atomic writes: a file is either the old one or the complete new one, never half of one.

Every output of nnscratch (model files, checkpoints, metrics, figures, CSV
copies) is written to a temporary file in the same folder, flushed to disk,
and renamed over the target only when complete: a crash, even SIGKILL,
leaves the previous file in place.
"""
from __future__ import annotations

import functools
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path


@functools.cache
def _umask() -> int:
    """The process's umask (the only way to read it is to set it, so once, and put it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(path, suffix: str = ""):
    """Yield a temporary path beside ``path``; rename it onto ``path`` on success."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + suffix, dir=path.parent or ".")
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes the file private; give it the usual mode
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
