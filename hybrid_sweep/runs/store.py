"""Content-addressed run store (hand-written: Hydra cannot skip finished jobs or resume a multirun).

``run_id`` = short hash of the settings that change the fine-tuned weights (the checkpoint key: the
fields the typed stage configs mark ``run_id``, minus evaluation, output locations, launcher, logging,
devices and the sweep's name), with switched-off stages left out (a zero-shot run hashes no training
settings). Each evaluation entry has its own key (``eval_key``), so a run is trained once and evaluated
on any number of benchmarks, added at any time.

Layout: ``<results_root>/runs/<run_id>/`` with config.yaml (the last request), train_log.jsonl,
checkpoints/, model/, train_summary.json (the fine-tuning stage is complete), ``evals.json`` (every
evaluation entry ever requested: name -> key and entry), ``eval/<name>/<eval_key>/`` (metrics.parquet
written last, per_query.parquet, runs/, qrels/), run.json, ``artefacts.json`` (size and hash of what the
run produced) and one status marker: ``DONE`` (written last) or ``FAILED`` (the error). A run directory
is owned by whoever holds its ``.lock`` (``fcntl.flock``: the kernel releases it when the holder dies,
even by SIGKILL; the lock file names the holder, so a take-over is reported).

Stage caches also live here: ``<results_root>/cache/<stage>/<key>/`` (``DONE`` marker, blocking lock:
a second run needing the same output waits instead of recomputing), and ``cache/embeddings`` for the
embedding store. The stages themselves only get an output folder.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

from hybrid_sweep.config import CONFIG_SCHEMA_VERSION, cache_identity, eval_identity, semantic_config
from hybrid_sweep.errors import ConfigError
from hybrid_sweep.io import lock_held, waiting_lock, write_text

log = logging.getLogger("hybrid_sweep")
STORE_FILE = "store.json"  # {"schema_version": ...}: which run-id scheme the runs/ folder holds


def config_hash(data: dict, length: int = 12) -> str:
    blob = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:length]


def run_id(cfg) -> str:
    """The checkpoint key: what the fine-tuned weights depend on (evaluation entries excluded)."""
    return config_hash(semantic_config(cfg))


def eval_key(cfg, name: str) -> str:
    """The key of one evaluation entry within its run."""
    return config_hash({"schema": CONFIG_SCHEMA_VERSION, **eval_identity(cfg, name)})


def requested_evals(cfg) -> dict[str, dict]:
    """``{name: {"key": ..., "entry": <the entry as a plain dict>}}`` for every entry of ``cfg.evals``."""
    from omegaconf import OmegaConf

    return {name: {"key": eval_key(cfg, name), "entry": OmegaConf.to_container(entry, resolve=True)}
            for name, entry in cfg.evals.items()}


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
    if found == "2" and CONFIG_SCHEMA_VERSION == "3":
        raise ConfigError("results_root", f"{root} holds runs of config schema 2 (evaluations inside the run id); "
                          f"`python -m hybrid_sweep.migrate {root}` moves them to schema 3 without recomputing anything")
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


EVALS_FILE = "evals.json"          # every evaluation entry requested of the run: name -> {key, entry}
ARTEFACTS_FILE = "artefacts.json"  # what the finished run produced: relative path -> [size, hash]
TRAINED_FILE = "train_summary.json"  # written last by the fine-tuning stage: the checkpoint is complete
HASH_MAX_BYTES = 64 << 20  # files up to this size are hashed whole; larger ones (weights) by size only


def file_digest(path: Path) -> list:
    """[size, blake2b hex or None]: cheap enough for every result file, size alone for large weights."""
    size = path.stat().st_size
    if size > HASH_MAX_BYTES:
        return [size, None]
    with open(path, "rb") as f:  # streamed: the file is never held in memory whole
        return [size, hashlib.file_digest(f, lambda: hashlib.blake2b(digest_size=16)).hexdigest()]


class RunDir:
    def __init__(self, root: Path, rid: str):
        self.root, self.id = Path(root), rid
        self.path = self.root / "runs" / rid

    # --- markers and status -----------------------------------------------------------------------
    @property
    def done(self) -> bool:
        return (self.path / "DONE").exists()

    @property
    def failed(self) -> bool:
        return (self.path / "FAILED").exists()

    @property
    def trained(self) -> bool:
        return (self.path / TRAINED_FILE).exists()

    def status(self, check_lock: bool = True, wanted: dict | None = None) -> str:
        """done / running / failed / interrupted / pending (pass check_lock=False while holding the lock).
        With ``wanted`` (requested evaluations), a finished run lacking one of them is ``evaluate``."""
        if self.done:
            return "done" if wanted is None or self.complete(wanted) else "evaluate"
        if check_lock and self.locked_by_other():
            return "running"
        if self.failed:
            return "failed"
        return "interrupted" if (self.path / "config.yaml").exists() else "pending"

    # --- evaluations ------------------------------------------------------------------------------
    def eval_dir(self, name: str, key: str) -> Path:
        from hybrid_sweep.io import inside

        return inside(self.path / "eval", name, key)

    def evals(self) -> dict[str, dict]:
        """Every evaluation entry requested of this run so far (``evals.json``)."""
        p = self.path / EVALS_FILE
        return json.loads(p.read_text()) if p.exists() else {}

    def request(self, wanted: dict[str, dict]) -> bool:
        """Add (or re-key) the wanted entries in ``evals.json``; entries not named stay. True if it changed."""
        current = self.evals()
        merged = {**current, **wanted}
        if merged == current:
            return False
        write_text(self.path / EVALS_FILE, json.dumps(merged, indent=1, sort_keys=True) + "\n")
        return True

    def complete(self, wanted: dict[str, dict]) -> bool:
        """Cheap check (stat only) that the run is DONE with every wanted evaluation recorded and intact."""
        if not self.done:
            return False
        recorded, manifest = self.evals(), self.artefacts()
        for name, want in wanted.items():
            if recorded.get(name, {}).get("key") != want["key"]:
                return False
            rel = str(Path("eval", name, want["key"], "metrics.parquet"))
            try:
                if rel not in manifest or (self.path / rel).stat().st_size != manifest[rel][0]:
                    return False
            except FileNotFoundError:
                return False
        return True

    # --- artefacts --------------------------------------------------------------------------------
    def artefact_paths(self) -> list[str]:
        """The files DONE vouches for: the checkpoint's summary and weights, each evaluation's tables."""
        out = []
        if self.trained:
            out.append(TRAINED_FILE)
            out += [str(p.relative_to(self.path)) for p in sorted((self.path / "model").rglob("*.safetensors"))]
        for name, e in self.evals().items():
            for f in ("metrics.parquet", "per_query.parquet"):
                if (self.path / "eval" / name / e["key"] / f).exists():
                    out.append(str(Path("eval", name, e["key"], f)))
        return out

    def artefacts(self) -> dict[str, list]:
        p = self.path / ARTEFACTS_FILE
        try:
            return json.loads(p.read_text()) if p.exists() else {}
        except ValueError:
            return {}

    def verify(self, deep: bool = True) -> list[tuple[str, str]]:
        """(relative path, what is wrong) for every recorded artefact that is missing or differs."""
        problems = []
        for rel, (size, digest) in self.artefacts().items():
            p = self.path / rel
            if not p.exists():
                problems.append((rel, "missing"))
            elif p.stat().st_size != size:
                problems.append((rel, f"{p.stat().st_size} bytes, recorded {size}"))
            elif deep and digest is not None and file_digest(p)[1] != digest:
                problems.append((rel, "content differs from the recorded hash"))
        return problems

    def invalidate(self, rel: str) -> str:
        """Make the stage that wrote ``rel`` run again: an evaluation's folder loses its completion mark,
        a bad checkpoint file sends the fine-tuning stage (and so every evaluation) back to its last
        checkpoint. Returns what will be recomputed."""
        parts = Path(rel).parts
        (self.path / "DONE").unlink(missing_ok=True)
        if parts[0] == "eval":
            (self.path / Path(*parts[:3]) / "metrics.parquet").unlink(missing_ok=True)
            return f"evaluation {parts[1]}"
        (self.path / TRAINED_FILE).unlink(missing_ok=True)
        for p in (self.path / "eval").glob("*/*/metrics.parquet"):
            p.unlink()
        return "fine-tuning (from its last checkpoint) and every evaluation"

    # --- locking ----------------------------------------------------------------------------------
    def locked_by_other(self) -> bool:
        return lock_held(self.path / ".lock")

    @contextmanager
    def lock(self):
        """Exclusive, non-blocking: yields True if this process owns the run, False if another does.
        The lock file names its holder; a holder that died (kill -9: the kernel dropped its lock) is
        reported when the run is taken over."""
        self.path.mkdir(parents=True, exist_ok=True)
        f = open(self.path / ".lock", "a+")
        try:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            f.seek(0)
            holder = f.read().strip()
            if holder:
                log.warning("%s: taking over from %s, which died holding the run", self.id, holder)
            f.seek(0)
            f.truncate()
            f.write(f"{os.uname().nodename} pid {os.getpid()}\n")
            f.flush()
            try:
                yield True
            finally:
                f.seek(0)
                f.truncate()  # an empty lock file: released in order
                f.flush()
        finally:
            f.close()  # releases the lock

    def mark_done(self) -> None:
        (self.path / "FAILED").unlink(missing_ok=True)
        manifest = {rel: file_digest(self.path / rel) for rel in self.artefact_paths()}
        write_text(self.path / ARTEFACTS_FILE, json.dumps(manifest, indent=1, sort_keys=True) + "\n")
        write_text(self.path / "DONE", "")

    def mark_failed(self, error: str) -> None:
        (self.path / "DONE").unlink(missing_ok=True)
        write_text(self.path / "FAILED", error.rstrip() + "\n")

    def info(self) -> dict:
        p = self.path / "run.json"
        return json.loads(p.read_text()) if p.exists() else {}


def all_runs(root: Path) -> list[RunDir]:
    runs = Path(root) / "runs"
    return [RunDir(root, p.name) for p in sorted(runs.iterdir()) if p.is_dir()] if runs.exists() else []
