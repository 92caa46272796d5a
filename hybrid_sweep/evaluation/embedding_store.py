"""On-disk embedding store: each corpus is encoded once per model, then memory-mapped by every run.

Layout under the root the caller gives (the run store passes ``<results_root>/cache/embeddings``)::

    <model_fp>/<corpus_fp>/embeddings.npy   fp16 [n_rows, dim], read as a memmap
                           manifest.json    written last: its presence means the entry is complete
                           shards/          while encoding: shard-<i>.npy (whole or absent), locks

Encoding goes shard by shard. A shard appears by ``os.replace`` of a complete temporary file, so a
process killed with SIGKILL leaves whole shards or none, and a rerun encodes only the missing ones.
Each shard has an ``flock``: a second process (a concurrent sweep) skips shards being encoded by
another, encodes the free ones, then waits for the rest; the kernel drops a dead holder's lock, and the
waiter encodes that shard itself. The last process to finish joins the shards into ``embeddings.npy``
under the entry's lock, writes the manifest and deletes the shards.

Under torchrun a ``plan`` (``evaluation.sharded.ShardPlan``) splits the shards between the ranks of one
job: shard i belongs to rank ``i % world``; every rank encodes its own, and rank 0 then waits for the
others' (a rank that exited without writing its shards is one DataError, never a hang) and assembles.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from hybrid_sweep.errors import ConfigError, DataError
from hybrid_sweep.io import atomic_path, waiting_lock, write_text

FP16_MAX = float(np.finfo(np.float16).max)
FORMAT = 1  # bump when the layout changes


def corpus_fingerprint(ids: Iterable[str], texts: Iterable[str], kind: str = "passage") -> str:
    """Hash of the ordered (id, text) rows and the text kind (query/passage prefixes differ)."""
    h = hashlib.sha256(f"corpus-v1\0{kind}\0".encode())
    n = 0
    for doc_id, text in zip(ids, texts, strict=True):
        for part in (str(doc_id), str(text)):
            raw = part.encode("utf-8")
            h.update(len(raw).to_bytes(8, "little") + raw)
        n += 1
    h.update(n.to_bytes(8, "little"))
    return h.hexdigest()[:24]


def model_fingerprint(module: torch.nn.Module, **settings) -> str:
    """Hash of a model's weights (names, dtypes, shapes, bytes) and the settings that change its output
    (prefixes, max length, normalisation, ...; any JSON-able keywords)."""
    h = hashlib.sha256(b"model-v1\0")
    h.update(json.dumps(settings, sort_keys=True, default=str).encode())
    for name, tensor in sorted(module.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        h.update(f"{name}\0{t.dtype}\0{tuple(t.shape)}\0".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()[:24]


def encoder_fingerprint(encoder) -> str:
    """``model_fingerprint`` of a ``hybrid_sweep.encoders.Encoder`` with its prefixes and max length."""
    return model_fingerprint(encoder.model, prefixes=encoder.prefixes, normalize=encoder.normalize,
                             max_length=getattr(encoder.model, "max_seq_length", None))


def shard_rows_for(n_rows: int, parts: int = 32, lo: int = 256, hi: int = 65536) -> int:
    """Rows per shard for a corpus of ``n_rows``: about ``parts`` shards (so the ranks of a job share the
    work evenly), within [lo, hi]. It depends on the corpus alone, never on the number of ranks, so
    every process of every job cuts a corpus at the same rows (the corpus fingerprint fixes n_rows)."""
    return int(min(hi, max(lo, -(-int(n_rows) // parts))))


@contextmanager
def _try_lock(path: Path):
    """Yield True with an exclusive lock held, or False at once if another process holds it."""
    with open(path, "a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True


class EmbeddingStore:
    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    def entry(self, model_fp: str, corpus_fp: str) -> Path:
        for name, fp in (("model_fp", model_fp), ("corpus_fp", corpus_fp)):
            if not fp or not all(c.isalnum() or c in "-_." for c in fp) or fp.startswith("."):
                raise ConfigError(name, f"fingerprint {fp!r} must be a non-empty file name (letters, digits, -_.)")
        return self.root / model_fp / corpus_fp

    def complete(self, model_fp: str, corpus_fp: str) -> bool:
        return (self.entry(model_fp, corpus_fp) / "manifest.json").is_file()

    def embeddings(self, model_fp: str, corpus_fp: str, n_rows: int,
                   encode_rows: Callable[[int, int], np.ndarray | torch.Tensor],
                   shard_rows: int = 65536, plan=None) -> np.ndarray | None:
        """The fp16 [n_rows, dim] embeddings as a read-only memmap; ``encode_rows(start, stop)`` is
        called only for the row ranges (shards) no process has stored yet. With a ``plan`` (one rank of
        a job) only this rank's shards are encoded; rank 0 waits for the others' and returns the
        embeddings, every other rank returns None once its own shards are stored."""
        if int(shard_rows) < 1:
            raise ConfigError("shard_rows", f"must be >= 1 (got {shard_rows})")
        entry, n_rows, shard_rows = self.entry(model_fp, corpus_fp), int(n_rows), int(shard_rows)
        if not (entry / "manifest.json").is_file():
            try:
                mine = plan.owns if plan is not None else None
                self._encode_missing(entry, n_rows, encode_rows, shard_rows, mine)
                if plan is not None and plan.rank != 0:
                    return None
                if plan is not None:
                    self._await_shards(entry, n_rows, shard_rows, plan)
                self._assemble(entry, entry / "shards", len(range(0, n_rows, shard_rows)), n_rows, shard_rows)
            except FileNotFoundError:  # another process completed the entry and removed shards/ meanwhile
                if not (entry / "manifest.json").is_file():
                    raise
        if plan is not None and plan.rank != 0:
            return None
        return self._open(entry, n_rows)

    def _open(self, entry: Path, n_rows: int) -> np.ndarray:
        manifest = json.loads((entry / "manifest.json").read_text())
        if manifest.get("n_rows") != n_rows or manifest.get("format") != FORMAT:
            raise DataError(entry / "manifest.json", f"holds {manifest.get('n_rows')} rows (format "
                            f"{manifest.get('format')}), asked for {n_rows} (format {FORMAT}); delete the folder")
        if n_rows == 0:
            return np.zeros((0, manifest["dim"]), np.float16)
        data = np.load(entry / "embeddings.npy", mmap_mode="r")
        if data.shape != (n_rows, manifest["dim"]) or data.dtype != np.float16:
            raise DataError(entry / "embeddings.npy", f"shape {data.shape} {data.dtype} does not match its manifest")
        return data

    def _encode_missing(self, entry: Path, n_rows: int, encode_rows, shard_rows: int, mine=None) -> None:
        """Store every missing shard (those ``mine(i)`` picks, default all); the caller assembles."""
        shards = entry / "shards"
        shards.mkdir(parents=True, exist_ok=True)
        starts = list(range(0, n_rows, shard_rows))
        busy = []
        for i, start in enumerate(starts):  # first pass: shards nobody is encoding
            if mine is not None and not mine(i):
                continue
            with _try_lock(shards / f"shard-{i:06d}.lock") as got:
                if not got:
                    busy.append(i)
                elif not self._done(entry, shards, i):
                    self._write_shard(shards, i, start, min(start + shard_rows, n_rows), encode_rows)
        for i in busy:  # then wait for the others; encode what a dead holder left undone
            if (entry / "manifest.json").is_file():
                return
            with waiting_lock(shards / f"shard-{i:06d}.lock"):
                if not self._done(entry, shards, i):
                    start = starts[i]
                    self._write_shard(shards, i, start, min(start + shard_rows, n_rows), encode_rows)

    def _await_shards(self, entry: Path, n_rows: int, shard_rows: int, plan) -> None:
        """Rank 0: poll until every shard is stored. A missing shard whose rank no longer holds its
        liveness lock (it exited or died) is one DataError; its own shards stay for a rerun."""
        shards = entry / "shards"
        missing = [i for i in range(len(range(0, n_rows, shard_rows))) if not self._done(entry, shards, i)]
        while missing:
            gone = {r for r in {plan.owner(i) for i in missing} if not plan.alive(r)}
            for i in missing:  # a shard is re-checked after its rank's lock: no race with its last write
                if plan.owner(i) in gone and not self._done(entry, shards, i):
                    raise DataError(shards / f"shard-{i:06d}.npy", f"rank {plan.owner(i)} of {plan.world} exited "
                                    "without writing this shard (see that rank's log); stored shards stay for a rerun")
            time.sleep(plan.poll_s)
            missing = [i for i in missing if not self._done(entry, shards, i)]

    @staticmethod
    def _done(entry: Path, shards: Path, i: int) -> bool:
        return (entry / "manifest.json").is_file() or (shards / f"shard-{i:06d}.npy").is_file()

    @staticmethod
    def _write_shard(shards: Path, i: int, start: int, stop: int, encode_rows) -> None:
        emb = encode_rows(start, stop)
        emb = emb.detach().float().cpu().numpy() if torch.is_tensor(emb) else np.asarray(emb, dtype=np.float32)
        if emb.ndim != 2 or emb.shape[0] != stop - start:
            raise DataError("encode_rows", f"rows {start}:{stop} gave shape {emb.shape}, expected ({stop - start}, dim)")
        if not np.isfinite(emb).all() or np.abs(emb).max(initial=0) > FP16_MAX:
            raise DataError("encode_rows", f"rows {start}:{stop}: non-finite or beyond float16 range embeddings")
        with atomic_path(shards / f"shard-{i:06d}.npy") as tmp, open(tmp, "wb") as f:
            np.save(f, emb.astype(np.float16))

    def _assemble(self, entry: Path, shards: Path, n_shards: int, n_rows: int, shard_rows: int) -> None:
        with waiting_lock(entry / "assemble.lock"):
            if (entry / "manifest.json").is_file():
                return
            parts = [np.load(shards / f"shard-{i:06d}.npy", mmap_mode="r") for i in range(n_shards)]
            for i, part in enumerate(parts):  # e.g. left by a process that used another shard size
                if len(part) != min(shard_rows, n_rows - i * shard_rows):
                    raise DataError(shards / f"shard-{i:06d}.npy", f"holds {len(part)} rows, expected "
                                    f"{min(shard_rows, n_rows - i * shard_rows)}; delete {shards}")
            dims = {p.shape[1] for p in parts}
            if len(dims) > 1:
                raise DataError(shards, f"shards disagree on the embedding dimension: {sorted(dims)}")
            dim = dims.pop() if dims else 0
            if n_rows:
                with atomic_path(entry / "embeddings.npy") as tmp:
                    out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float16, shape=(n_rows, dim))
                    row = 0
                    for part in parts:
                        out[row : row + len(part)] = part
                        row += len(part)
                    out.flush()
                    del out
            manifest = {"format": FORMAT, "n_rows": n_rows, "dim": dim, "dtype": "float16", "n_shards": n_shards}
            write_text(entry / "manifest.json", json.dumps(manifest, indent=1) + "\n")
        shutil.rmtree(shards, ignore_errors=True)
