"""Atomic file writes: every result file appears whole or not at all; failed writes as one line."""

from __future__ import annotations

import errno
import fcntl
import os
import re
import tempfile
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from hybrid_sweep.errors import DataError
from hybrid_sweep.faults import fault_point

_UMASK = os.umask(0o022)
os.umask(_UMASK)
FILE_MODE = 0o666 & ~_UMASK  # mkstemp creates 0600; results should be as readable as any other file
NO_ROOM = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS}
DENIED = {errno.EACCES, errno.EPERM}
_WRAPPED_OS_ERROR = re.compile(r"\(os error (\d+)\)")  # how safetensors (Rust) reports an OSError


def storage_error(err: BaseException, where=None) -> DataError | None:
    """The one-line form of a failed file operation (disk full, quota, file too large, read-only file
    system, permission denied), or None for any other error. Names the file when the error does."""
    code = err.errno if isinstance(err, OSError) else None
    if code is None and isinstance(err, Exception):
        match = _WRAPPED_OS_ERROR.search(str(err))
        code = int(match.group(1)) if match else None
    if code not in NO_ROOM | DENIED:
        return None
    path = getattr(err, "filename", None) or where or "output"
    return DataError(path, f"cannot write ({os.strerror(code)})" if code in NO_ROOM else "permission denied")


TMP_GLOB = ".*.tmp"  # what atomic_path leaves behind when its process is killed


@contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)  # matches TMP_GLOB
    os.close(fd)
    try:
        os.chmod(tmp, FILE_MODE)
        yield Path(tmp)
        fault_point(f"during_write:{path.name}")  # the new file is complete but not yet in place
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def waiting_lock(path: str | os.PathLike):
    """Exclusive ``flock`` on ``path``, waiting for the holder (released by the kernel if it dies)."""
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


def write_text(path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_parquet(path, frame: pd.DataFrame) -> None:
    with atomic_path(path) as tmp:
        frame.to_parquet(tmp, index=False)


def write_csv(path, frame: pd.DataFrame) -> None:
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)
