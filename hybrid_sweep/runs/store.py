"""Content-addressed run store (hand-written: Hydra cannot skip finished jobs or resume a multirun).

``run_id`` = short hash of the run's *semantic* config: the fields the typed stage configs mark as
changing results (``hybrid_sweep.config``; output locations, launcher, logging, devices and the sweep's
name are not), with switched-off stages left out (a zero-shot run hashes no training settings).
Layout: ``<results_root>/runs/<run_id>/`` with config.yaml, train_log.jsonl, checkpoints/, model/,
eval/<benchmark>/, metrics.parquet, per_query.parquet, run.json, and one status marker:
``DONE`` (written last, after every result file) or ``FAILED`` (the error). A run directory is owned by
whoever holds its ``.lock`` (``fcntl.flock``: the kernel releases it when the holder dies, even by
SIGKILL, so a crashed sweep never leaves a stale lock on the same file system).

Stage caches also live here: ``<results_root>/cache/<stage>/<key>/`` (``DONE`` marker, blocking lock:
a second run needing the same output waits instead of recomputing), and ``cache/embeddings`` for the
embedding store. The stages themselves only get an output folder.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

from hybrid_sweep.config import CONFIG_SCHEMA_VERSION, cache_identity, semantic_config
from hybrid_sweep.errors import ConfigError
from hybrid_sweep.io import waiting_lock, write_text

STORE_FILE = "store.json"  # {"schema_version": ...}: which run-id scheme the runs/ folder holds


def config_hash(data: dict, length: int = 12) -> str:
    blob = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:length]


def run_id(cfg) -> str:
    return config_hash(semantic_config(cfg))


def check_store_version(root: Path) -> None:
    """Refuse a results root whose runs were stored under another run-id scheme (one line), and stamp a
    new or matching one. Runs from before schema 2 carry no ``schema_version``."""
    root = Path(root)
    marker = root / "runs" / STORE_FILE
    if marker.exists():
        found = json.loads(marker.read_text()).get("schema_version")
    elif (root / "runs").is_dir() and any(p.is_dir() for p in (root / "runs").iterdir()):
        found = None  # runs written before the store was stamped
    else:
        found = CONFIG_SCHEMA_VERSION
    if found != CONFIG_SCHEMA_VERSION:
        raise ConfigError("results_root", f"{root} holds runs of config schema {found or '1'} whose run ids differ "
                          f"from schema {CONFIG_SCHEMA_VERSION}'s; use a new results_root (or move runs/ away)")
    if not marker.exists():
        write_text(marker, json.dumps({"schema_version": CONFIG_SCHEMA_VERSION}) + "\n")


def stage_cache_dir(root: Path, stage: str, cfg) -> Path:
    """``<results_root>/cache/<stage>/<key>``, the key derived from what the stage depends on."""
    return Path(root) / "cache" / stage / config_hash(cache_identity(cfg, stage))


def embeddings_dir(root: Path) -> Path:
    """Where the embedding store keeps encoded texts (one folder per results root)."""
    return Path(root) / "cache" / "embeddings"


def cached_stage(folder: Path, compute: Callable[[Path], None]) -> Path:
    """Run ``compute(folder)`` once: later callers (even concurrent ones, which wait on the lock) find
    ``DONE`` and reuse the folder."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with waiting_lock(folder / ".lock"):
        if not (folder / "DONE").exists():
            compute(folder)
            write_text(folder / "DONE", "")
    return folder


class RunDir:
    def __init__(self, root: Path, rid: str):
        self.root, self.id = Path(root), rid
        self.path = self.root / "runs" / rid

    @property
    def done(self) -> bool:
        return (self.path / "DONE").exists()

    @property
    def failed(self) -> bool:
        return (self.path / "FAILED").exists()

    def status(self, check_lock: bool = True) -> str:
        """done / running / failed / interrupted / pending (pass check_lock=False while holding the lock)."""
        if self.done:
            return "done"
        if check_lock and self.locked_by_other():
            return "running"
        if self.failed:
            return "failed"
        return "interrupted" if (self.path / "config.yaml").exists() else "pending"

    def locked_by_other(self) -> bool:
        if not (self.path / ".lock").exists():
            return False
        with open(self.path / ".lock", "a+") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(f, fcntl.LOCK_UN)
            return False

    @contextmanager
    def lock(self):
        """Exclusive, non-blocking: yields True if this process owns the run, False if another does."""
        self.path.mkdir(parents=True, exist_ok=True)
        f = open(self.path / ".lock", "a+")
        try:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            f.seek(0)
            f.truncate()
            f.write(f"{os.uname().nodename} {os.getpid()}\n")
            f.flush()
            yield True
        finally:
            f.close()  # releases the lock

    def mark_done(self) -> None:
        (self.path / "FAILED").unlink(missing_ok=True)
        write_text(self.path / "DONE", "")

    def mark_failed(self, error: str) -> None:
        write_text(self.path / "FAILED", error.rstrip() + "\n")

    def info(self) -> dict:
        p = self.path / "run.json"
        return json.loads(p.read_text()) if p.exists() else {}


def all_runs(root: Path) -> list[RunDir]:
    runs = Path(root) / "runs"
    return [RunDir(root, p.name) for p in sorted(runs.iterdir()) if p.is_dir()] if runs.exists() else []
