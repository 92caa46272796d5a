"""Arrow-backed training corpora: one store per source, converted once, memory-mapped by every process.

A store holds the source's rows in the training schema (``ROW_SCHEMA``: one example per row) in an Arrow
IPC file, and its structure as integer arrays (``.npy``): per row the group code, language code, whether it
has a query / a positive, and its number of hard negatives; per group its name and a 64-bit hash (for the
held-out split). Holdout, budgets, pivot and training languages are boolean masks over rows, so a
restricted corpus is a view of the same mapped file. The sampler draws row ids; a batch reads only its
own texts (``texts_at``).

Conversion (``cached_store``) runs once per (source content, options) key under a file lock, so the first
process converts and every other rank and later run opens the finished folder (``DONE`` is written last).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from hybrid_sweep.data.lareqa import check_lang_code
from hybrid_sweep.errors import DataError
from hybrid_sweep.io import waiting_lock, write_text

FORMAT_VERSION = 1
ROW_SCHEMA = pa.schema([("group", pa.string()), ("lang", pa.string()), ("query", pa.string()),
                        ("positive", pa.string()), ("negatives", pa.list_(pa.string()))])
REQUIRED = ("group", "lang", "query", "positive")
CHUNK_ROWS = 1 << 19  # rows per record batch on disk (string offsets stay 32-bit below 2 GB per chunk)
_ARRAYS = ("group", "lang", "has_query", "has_positive", "n_neg")


def string_hash64(arr) -> np.ndarray:
    """FNV-1a 64 of every string of ``arr``, vectorised over character positions (no Python loop per row)."""
    arr = pc.cast(arr, pa.large_string())
    arr = arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr
    n = len(arr)
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int64)[arr.offset: arr.offset + n + 1]
    data = np.frombuffer(arr.buffers()[2], dtype=np.uint8) if arr.buffers()[2] is not None else np.zeros(0, np.uint8)
    lengths = np.diff(offsets)
    h = np.full(n, 0xCBF29CE484222325, dtype=np.uint64)
    for k in range(int(lengths.max(initial=0))):
        idx = np.flatnonzero(lengths > k)
        h[idx] = (h[idx] ^ data[offsets[idx] + k].astype(np.uint64)) * np.uint64(0x100000001B3)
    return h


def mix64(x: np.ndarray, seed: int) -> np.ndarray:
    """splitmix64 finaliser of ``x`` xor a seed: a uniform 64-bit value per input, different per seed."""
    with np.errstate(over="ignore"):
        z = x.astype(np.uint64) ^ np.uint64((seed * 0x9E3779B97F4A7C15) % 2**64)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def _first_bad(mask) -> int | None:
    bad = np.flatnonzero(np.asarray(mask, dtype=bool))
    return int(bad[0]) if len(bad) else None


def normalise_batch(batch: pa.RecordBatch | pa.Table, source: str, first_row: int = 0) -> pa.RecordBatch:
    """Check one batch of rows against the training schema and return it as ``ROW_SCHEMA``.
    Every problem is one ``DataError`` naming the source, the field and (for row problems) the row."""
    names = batch.schema.names
    for col in REQUIRED:
        if col not in names:
            raise DataError(source, f"missing column '{col}' (have: {', '.join(names)})")
    cols = {}
    group = batch.column("group")
    if pa.types.is_integer(group.type):
        group = pc.cast(group, pa.string())
    elif not (pa.types.is_string(group.type) or pa.types.is_large_string(group.type) or pa.types.is_null(group.type)):
        raise DataError(source, f"field 'group' has type {group.type}; group ids must be strings or integers")
    for col in ("query", "positive", "lang"):
        t = batch.column(col).type
        if not (pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_null(t)):
            raise DataError(source, f"field '{col}' has type {t}; expected text")
        cols[col] = pc.cast(batch.column(col), pa.string())
    cols["group"] = pc.cast(group, pa.string())
    for col in ("group", "lang"):
        empty = pc.fill_null(pc.equal(pc.utf8_length(cols[col]), 0), True)
        bad = _first_bad(empty)
        if bad is not None:
            raise DataError(source, f"row {first_row + bad}: missing field '{col}'")
    has_q = pc.fill_null(pc.greater(pc.utf8_length(cols["query"]), 0), False)
    has_p = pc.fill_null(pc.greater(pc.utf8_length(cols["positive"]), 0), False)
    bad = _first_bad(pc.invert(pc.or_(has_q, has_p)))
    if bad is not None:
        raise DataError(source, f"row {first_row + bad}: both 'query' and 'positive' are empty")
    for lang in pc.unique(cols["lang"]).to_pylist():
        check_lang_code(lang, f"{source} field 'lang'")
    if "negatives" in names and not pa.types.is_null(batch.column("negatives").type):
        negs = batch.column("negatives")
        if pa.types.is_string(negs.type) or pa.types.is_large_string(negs.type):
            negs = pc.if_else(pc.is_null(negs), pa.scalar(None, pa.list_(pa.string())),
                              pa.ListArray.from_arrays(pa.array(np.arange(len(negs) + 1, dtype=np.int32)),
                                                       pc.cast(negs, pa.string())))
        elif not (pa.types.is_list(negs.type) or pa.types.is_large_list(negs.type)) or not (
                pa.types.is_string(negs.type.value_type) or pa.types.is_large_string(negs.type.value_type)
                or pa.types.is_null(negs.type.value_type)):
            raise DataError(source, f"field 'negatives' has type {negs.type}; expected a list of texts")
        cols["negatives"] = pc.cast(negs, pa.list_(pa.string()))
    else:
        cols["negatives"] = pa.nulls(len(batch), pa.list_(pa.string()))
    arrays = [c.combine_chunks() if isinstance(c, pa.ChunkedArray) else c for c in (cols[n] for n in ROW_SCHEMA.names)]
    return pa.RecordBatch.from_arrays(arrays, schema=ROW_SCHEMA)


@dataclass(frozen=True)
class Example:
    """One language version of a training group (the in-memory view of a store row)."""

    query: str | None
    positive: str | None
    negatives: tuple[str, ...] = ()


@dataclass
class TrainGroup:
    """A parallel group: its language versions."""

    group: str
    items: dict[str, Example]


@dataclasses.dataclass
class CorpusStore:
    """One training source: Arrow rows plus integer index arrays; ``active`` masks the rows in use."""

    name: str
    table: pa.Table
    group: np.ndarray          # int32 per row: group code, in order of first appearance
    lang: np.ndarray           # int16 per row: index into ``langs``
    has_query: np.ndarray      # bool per row
    has_positive: np.ndarray   # bool per row
    n_neg: np.ndarray          # int32 per row: number of hard negatives
    langs: list[str]
    group_names: pa.Array      # string per group code
    group_hash: np.ndarray     # uint64 per group code
    parallel: bool = True
    cross_only: bool = False   # translation pairs (FLORES): query == positive within a language
    active: np.ndarray | None = None
    n_negatives: int | None = None  # the source's own hard-negative count (None: the sampler's)
    chunk_starts: np.ndarray = dataclasses.field(init=False, repr=False)

    def __post_init__(self):
        lengths = [len(b) for b in self.table.column("group").chunks]
        self.chunk_starts = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)

    # --- views ---------------------------------------------------------------------------------
    def view(self, name: str | None = None, **changes) -> CorpusStore:
        return dataclasses.replace(self, name=name or self.name, **changes)

    def active_mask(self) -> np.ndarray:
        return np.ones(len(self.group), dtype=bool) if self.active is None else self.active

    def lang_mask(self, languages: Iterable[str]) -> np.ndarray:
        codes = [i for i, lang in enumerate(self.langs) if lang in set(languages)]
        return np.isin(self.lang, np.array(codes, dtype=self.lang.dtype))

    @property
    def n_rows(self) -> int:
        return int(self.active_mask().sum())

    @property
    def n_examples(self) -> int:
        """Rows that can serve as a training example (they hold a query)."""
        return int((self.active_mask() & self.has_query).sum())

    @property
    def languages(self) -> list[str]:
        present = np.unique(self.lang[self.active_mask()])
        return sorted(self.langs[i] for i in present)

    @property
    def has_negatives(self) -> bool:
        return bool((self.n_neg[self.active_mask()] > 0).any())

    def group_codes(self) -> np.ndarray:
        return np.unique(self.group[self.active_mask()])

    def groups_for(self, query_lang: str, passage_lang: str) -> list[int]:
        """Sorted group codes with a query in ``query_lang`` and a positive in ``passage_lang``."""
        act = self.active_mask()
        q = self.group[act & self.has_query & self.lang_mask([query_lang])]
        p = self.group[act & self.has_positive & self.lang_mask([passage_lang])]
        return np.intersect1d(q, p).tolist()

    # --- texts ---------------------------------------------------------------------------------
    def take(self, column: str, rows) -> pa.Array:
        """``column`` at ``rows`` (in that order), reading only the chunks that hold them: a chunked
        ``take`` would first concatenate the whole column."""
        col, rows = self.table.column(column), np.asarray(rows, dtype=np.int64)
        if col.num_chunks == 1:
            return col.chunk(0).take(pa.array(rows))
        chunk = np.searchsorted(self.chunk_starts, rows, side="right") - 1
        if len(rows) == 0:
            return pa.array([], col.type)
        order = np.argsort(chunk, kind="stable")
        bounds = [0, *(np.flatnonzero(np.diff(chunk[order])) + 1).tolist(), len(order)]
        parts = []
        for a, b in zip(bounds[:-1], bounds[1:]):
            c = int(chunk[order[a]])
            parts.append(col.chunk(c).take(pa.array(rows[order[a:b]] - self.chunk_starts[c])))
        inverse = np.empty_like(order)
        inverse[order] = np.arange(len(order))
        return pa.concat_arrays(parts).take(pa.array(inverse))

    def texts_at(self, column: str, rows) -> list:
        return self.take(column, rows).to_pylist()

    def texts(self) -> list[str]:
        rows = np.flatnonzero(self.active_mask())
        out = []
        for col in ("query", "positive"):
            out += [t for t in self.texts_at(col, rows) if t]
        out += [t for negs in self.texts_at("negatives", rows) if negs for t in negs if t]
        return out

    @property
    def groups(self):
        """The old in-memory view (``TrainGroup`` per group, first row per language): small corpora only."""
        rows = np.flatnonzero(self.active_mask())
        cols = {c: self.texts_at(c, rows) for c in ("query", "positive", "negatives")}
        names = self.group_names.take(pa.array(self.group[rows].astype(np.int64))).to_pylist()
        out: dict[str, dict] = {}
        for i, r in enumerate(rows):
            lang = self.langs[self.lang[r]]
            query = cols["query"][i] if self.has_query[r] else None
            positive = cols["positive"][i] if self.has_positive[r] else None
            out.setdefault(names[i], {}).setdefault(lang, Example(query, positive, tuple(cols["negatives"][i] or ())))
        return [TrainGroup(g, items) for g, items in out.items()]


def store_from_table(name: str, table: pa.Table, parallel: bool = True, cross_only: bool = False) -> CorpusStore:
    """Index arrays of a table already in ``ROW_SCHEMA`` (validated by ``normalise_batch``)."""
    if table.num_rows == 0:
        raise DataError(name, "no training rows")
    groups = pc.unique(table.column("group"))  # first-appearance order
    langs = pc.unique(table.column("lang")).to_pylist()
    lang_code = np.asarray(pc.index_in(table.column("lang"), value_set=pa.array(langs)).to_numpy(), dtype=np.int16)
    return CorpusStore(
        name=name, table=table,
        group=np.asarray(pc.index_in(table.column("group"), value_set=groups).to_numpy(), dtype=np.int32),
        lang=lang_code,
        has_query=np.asarray(pc.fill_null(pc.greater(pc.utf8_length(table.column("query")), 0), False).to_numpy()),
        has_positive=np.asarray(pc.fill_null(pc.greater(pc.utf8_length(table.column("positive")), 0), False).to_numpy()),
        n_neg=np.asarray(pc.fill_null(pc.list_value_length(table.column("negatives")), 0).to_numpy(), dtype=np.int32),
        langs=langs, group_names=groups, group_hash=string_hash64(groups), parallel=parallel, cross_only=cross_only)


def store_from_batches(name: str, batches: Iterable[pa.RecordBatch], source: str, **kw) -> CorpusStore:
    """An in-memory store from raw batches (checked with ``normalise_batch``)."""
    out, n = [], 0
    for b in batches:
        out.append(normalise_batch(b, source, n))
        n += len(b)
    return store_from_table(name, pa.Table.from_batches(out, schema=ROW_SCHEMA), **kw)


# --- the on-disk cache -------------------------------------------------------------------------
def cache_key(parts: dict) -> str:
    blob = json.dumps({"format": FORMAT_VERSION, **parts}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def file_fingerprint(path) -> dict:
    """What identifies a file's content cheaply: resolved path, size and modification time (ns)."""
    path = Path(path).expanduser().resolve()
    if not path.exists():
        raise DataError(path, "file not found")
    st = path.stat()
    return {"path": str(path), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def open_store(folder: Path, name: str | None = None) -> CorpusStore:
    folder = Path(folder)
    meta = json.loads((folder / "meta.json").read_text())
    table = pa.ipc.open_file(pa.memory_map(str(folder / "rows.arrow"))).read_all()
    groups = pa.ipc.open_file(pa.memory_map(str(folder / "groups.arrow"))).read_all()
    arrays = {a: np.asarray(np.load(folder / f"{a}.npy", mmap_mode="r")) for a in _ARRAYS}  # mapped, plain ndarray
    arrays["has_query"], arrays["has_positive"] = arrays["has_query"].view(bool), arrays["has_positive"].view(bool)
    return CorpusStore(name=name or meta["name"], table=table, langs=meta["langs"],
                       group_names=groups.column("name").combine_chunks(),
                       group_hash=np.asarray(groups.column("hash").to_numpy()), parallel=meta["parallel"],
                       cross_only=meta["cross_only"], **arrays)


def _write_store(tmp: Path, name: str, batches: Iterable[pa.RecordBatch], source: str, parallel: bool,
                 cross_only: bool) -> None:
    n, pending = 0, []
    with pa.OSFile(str(tmp / "rows.arrow"), "wb") as sink, pa.ipc.new_file(sink, ROW_SCHEMA) as writer:
        for b in batches:  # few large record batches: a batch's reads touch few chunks
            pending.append(normalise_batch(b, source, n))
            n += len(b)
            if sum(len(p) for p in pending) >= CHUNK_ROWS:
                writer.write_table(pa.Table.from_batches(pending, ROW_SCHEMA).combine_chunks())
                pending = []
        if pending:
            writer.write_table(pa.Table.from_batches(pending, ROW_SCHEMA).combine_chunks())
    table = pa.ipc.open_file(pa.memory_map(str(tmp / "rows.arrow"))).read_all()
    store = store_from_table(name, table, parallel, cross_only)
    for a in _ARRAYS:
        np.save(tmp / f"{a}.npy", np.ascontiguousarray(getattr(store, a)))
    groups = pa.table({"name": store.group_names, "hash": pa.array(store.group_hash)})
    with pa.OSFile(str(tmp / "groups.arrow"), "wb") as sink, pa.ipc.new_file(sink, groups.schema) as writer:
        writer.write_table(groups)
    write_text(tmp / "meta.json", json.dumps({"name": name, "langs": store.langs, "parallel": parallel,
                                             "cross_only": cross_only, "rows": n, "source": source}))


def cached_store(cache_root: Path, key_parts: dict, name: str, source: str,
                 batches: Callable[[], Iterable[pa.RecordBatch]], parallel: bool = True,
                 cross_only: bool = False) -> CorpusStore:
    """Open the store for ``key_parts`` under ``cache_root``, converting it first if needed (one process
    converts, under a lock; the others wait and open). ``batches`` yields the source's raw rows."""
    folder = Path(cache_root) / cache_key(key_parts | {"parallel": parallel, "cross_only": cross_only})
    if not (folder / "DONE").exists():
        folder.parent.mkdir(parents=True, exist_ok=True)
        with waiting_lock(folder.with_suffix(".lock")):
            if not (folder / "DONE").exists():
                tmp = folder.with_name(folder.name + ".partial")
                shutil.rmtree(tmp, ignore_errors=True)
                tmp.mkdir()
                try:
                    _write_store(tmp, name, batches(), source, parallel, cross_only)
                except pa.ArrowInvalid as err:
                    raise DataError(source, f"cannot read ({str(err).splitlines()[0][:200]})") from None
                finally:
                    if not (tmp / "meta.json").exists():
                        shutil.rmtree(tmp, ignore_errors=True)
                shutil.rmtree(folder, ignore_errors=True)
                tmp.rename(folder)
                write_text(folder / "DONE", "")
    return open_store(folder, name)
