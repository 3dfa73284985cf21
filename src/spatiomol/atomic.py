"""Atomic file writes: results are never half-written, whatever kills the process."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary file next to ``path``; on success it replaces ``path`` atomically.

    The writer fills the yielded path (any library that writes to a path); the file is
    then flushed to disk and moved onto ``path`` with ``os.replace``. On any error the
    temporary file is removed and ``path`` is untouched. ``suffix`` lets writers that
    insist on an extension (``numpy.savez`` appends ``.npz``) keep it.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise
