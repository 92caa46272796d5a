"""Content-addressed run store (hand-written: Hydra cannot skip finished jobs or resume a multirun).

``run_id`` = short hash of the run's *semantic* config: the resolved config without the keys that do
not change results (output locations, launcher, logging, progress bars, the sweep's name, devices).
Layout: ``<results_root>/runs/<run_id>/`` with config.yaml, train_log.jsonl, checkpoints/, model/,
eval/<benchmark>/, metrics.parquet, per_query.parquet, run.json, and one status marker:
``DONE`` (written last, after every result file) or ``FAILED`` (the error). A run directory is owned by
whoever holds its ``.lock`` (``fcntl.flock``: the kernel releases it when the holder dies, even by
SIGKILL, so a crashed sweep never leaves a stale lock on the same file system).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from contextlib import contextmanager
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from hybrid_sweep.io import write_text

# Keys that never change a run's results (dotted paths into the composed config).
NON_SEMANTIC = (
    "results_root", "paths", "hydra", "plan", "analyze", "logger", "launcher", "sweep_name", "resources",
    "encoder.progress", "encoder.device", "encoder.cache_dir", "encoder.batch_size",
    "train.log_batches", "train.resume", "output_dir",
)
NON_SEMANTIC_EVAL = ("block_size", "write_runs", "run_depth")


def semantic_config(cfg: DictConfig) -> dict:
    data = OmegaConf.to_container(cfg, resolve=True)
    for key in NON_SEMANTIC:
        node, *rest = key.split(".")
        if rest:
            data.get(node, {}).pop(rest[0], None)
        else:
            data.pop(node, None)
    for ev in (data.get("evals") or {}).values():
        for key in NON_SEMANTIC_EVAL:
            ev.pop(key, None)
    if not (data.get("train") or {}).get("enabled", True):
        for key in ("train", "sampler", "data", "pretrain"):  # zero-shot runs do not depend on training settings
            data.pop(key, None)
    if not (data.get("pretrain") or {}).get("enabled", False):
        data.pop("pretrain", None)  # a disabled stage does not change results
    return data


def config_hash(data: dict, length: int = 12) -> str:
    blob = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:length]


def run_id(cfg: DictConfig) -> str:
    return config_hash(semantic_config(cfg))


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
