"""Atomic file writes (every result file appears whole or not at all; failed writes as one line), path
parts made from config / data values that cannot leave their folder, and data files read line by line
with errors naming ``file:line``."""

from __future__ import annotations

import errno
import fcntl
import os
import re
import tempfile
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from hybrid_sweep.errors import ConfigError, DataError
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


def lock_held(path: str | os.PathLike) -> bool:
    """Whether another open file description holds an ``flock`` on ``path`` (False when no file exists);
    a holder that died does not count: the kernel released its lock."""
    if not os.path.exists(path):
        return False
    with open(path, "a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(f, fcntl.LOCK_UN)
        return False


def write_text(path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_parquet(path, frame: pd.DataFrame) -> None:
    with atomic_path(path) as tmp:
        frame.to_parquet(tmp, index=False)


def write_csv(path, frame: pd.DataFrame) -> None:
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)


# --- path parts from config and data values ---------------------------------------------------------
SAFE_PART = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+=@-]{0,199}")  # a language, benchmark, setting or tag
# (accepts everything config.checks.LABEL accepts, so a value the config let through is never refused late)


def safe_part(value, field: str | None = None, where=None) -> str:
    """``value`` as one file-name part: non-empty, letters / digits / ``_ . + = @ -`` only, not starting
    with a dot (so no separator, no ``.`` or ``..``, no absolute path, no NUL, no space). Otherwise one
    ``ConfigError`` naming ``field`` when the value comes from the config, else a ``DataError`` naming
    ``where`` (the folder or file it was to be written under)."""
    text = "" if value is None else str(value)
    if SAFE_PART.fullmatch(text):
        return text
    msg = (f"{text!r} cannot be part of a file name (use letters, digits and _ . + = @ -; "
           "no path separator or leading dot)") if text else "empty; it names an output file"
    if field is not None:
        raise ConfigError(field, msg)
    raise DataError(where or "output", msg)


def inside(folder, *parts, field: str | None = None, suffix: str = "") -> Path:
    """``folder / part / ... / last+suffix``, each part checked with ``safe_part``, and the result checked
    to lie inside ``folder`` (lexically: symlinks a user placed inside the folder are followed on purpose,
    e.g. ``runs/`` on another disk). ``suffix`` (``.trec``) is ours, so it is not checked."""
    if not parts:
        raise ValueError("inside() needs at least one part")
    base = Path(os.path.abspath(folder))
    names = [safe_part(p, field, base) for p in parts]
    path = Path(os.path.abspath(base.joinpath(*names[:-1], names[-1] + suffix)))
    if base not in path.parents:
        raise DataError(base, f"{path} is outside this folder")
    return path


# --- data files read line by line ---------------------------------------------------------------------
def text_lines(path):
    """``(line number, text)`` of a UTF-8 text file without its line ending; bytes that are not UTF-8 are
    one DataError naming ``file:line`` and the column. A file that does not exist is one DataError."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "file not found")
    with open(path, "rb") as f:
        for n, raw in enumerate(f, 1):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise DataError(f"{path}:{n}", f"not UTF-8 text (byte 0x{raw[err.start]:02x} at column "
                                               f"{err.start + 1}); re-encode the file as UTF-8") from None
            yield n, text.rstrip("\r\n")


def read_text(path) -> str:
    """A whole UTF-8 text file; a byte that is not UTF-8 is one DataError naming ``file:line``."""
    return "\n".join(line for _, line in text_lines(path))


def jsonl_records(path):
    """``(line number, object)`` of each non-blank line of a JSONL file; a malformed line (or bytes that
    are not UTF-8) is one DataError naming ``file:line``."""
    import json

    for n, line in text_lines(path):
        if not line.strip():
            continue
        try:
            yield n, json.loads(line)
        except json.JSONDecodeError as err:
            raise DataError(f"{path}:{n}", f"malformed JSON ({err.msg}, column {err.colno})") from None


def first_bad_jsonl_line(path) -> None:
    """Raise the ``file:line`` DataError of the first line that is not UTF-8 JSON (used when a bulk
    reader such as Arrow's failed without saying where); return None if every line parses."""
    for _ in jsonl_records(path):
        pass
