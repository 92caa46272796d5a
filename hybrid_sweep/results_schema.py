"""The results tables' schema: columns, types, allowed values and a ``schema_version``, written into
every table's Arrow metadata under ``b"hybrid_sweep"`` as JSON::

    {"schema_version": "2", "table": "results", "axes": [...], "numeric_axes": [...], "log_axes": [...],
     "inputs": "<fingerprint of the run files the table was built from>"}

collect writes ``results.parquet`` / ``runs.parquet`` through ``write_table``; analysis, tracking and
notebooks read them through ``read_table`` / ``table_metadata`` (the axes come from the metadata, so a
reader needs no list of its own). The axis columns are derived from the typed configs' marks."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from hybrid_sweep.config import axis_specs
from hybrid_sweep.errors import DataError
from hybrid_sweep.io import atomic_path

SCHEMA_VERSION = "2"  # 2: axes from the typed configs, `sampler` derived from the ratio, metadata added
METADATA_KEY = b"hybrid_sweep"

# Metric rows (each run's metrics.parquet, and the first columns of results.parquet).
METRIC_COLUMNS = {"benchmark": "string", "setting": "string", "query_lang": "string", "doc_lang": "string",
                  "metric": "string", "value": "float", "n_queries": "integer", "n_skipped": "integer",
                  "depth": "string", "max_length": "integer"}
# Metric columns added after tables were first written: absent in older metrics / results files, read
# as missing values (nullable integers), never an error. max_length: the encoder's max tokens.
LATER_METRIC_COLUMNS = ("max_length",)
# What each evaluator's metric row tuple holds (every evaluator and the MTEB bridge build their frames from
# it; the later columns are added once per evaluation).
ROW_COLUMNS = [c for c in METRIC_COLUMNS if c not in LATER_METRIC_COLUMNS]
RUN_COLUMNS = {"run_id": "string", "status": "string", "error": "string", "sweep": "string",
               "overrides": "string", "config_hash": "string", "git_commit": "string", "versions": "string",
               "device": "string", "variant": "string",
               "pairs": "string"}  # the resolved training pairs "X-Y,..."; runs.parquet adds the axes and <stage>_s

ALLOWED = {"setting": ("mono", "cross", "multi"),
           "status": ("done", "failed", "interrupted", "running", "pending")}
KINDS = {"string": pd.api.types.is_object_dtype, "float": pd.api.types.is_float_dtype,
         "integer": pd.api.types.is_integer_dtype}


def axes() -> list[str]:
    return [s.name for s in axis_specs()]


def numeric_axes() -> list[str]:
    return [s.name for s in axis_specs() if s.numeric]


def log_axes() -> list[str]:
    return [s.name for s in axis_specs() if s.scale == "log"]


def columns(table: str) -> list[str]:
    """The columns a table must have: results = metric columns + run_id, sweep, variant + axes;
    runs = run columns + axes."""
    if table == "results":
        return [*METRIC_COLUMNS, "run_id", "sweep", "variant", *axes()]
    if table == "runs":
        return [*RUN_COLUMNS, *axes()]
    raise ValueError(f"unknown table {table!r}")


def metadata(table: str, inputs: str | None = None, extra: dict | None = None) -> dict:
    """``extra``: more facts about the table (collect adds the study's declared hypotheses as ``study``)."""
    return {"schema_version": SCHEMA_VERSION, "table": table, "axes": axes(), "numeric_axes": numeric_axes(),
            "log_axes": log_axes(), "inputs": inputs, **(extra or {})}


def check(frame: pd.DataFrame, table: str, where: str) -> None:
    """Columns present, declared types, allowed values; a DataError naming the file and column."""
    if frame.empty:
        return
    missing = [c for c in columns(table) if c not in frame.columns and c not in LATER_METRIC_COLUMNS]
    if missing:
        raise DataError(where, f"missing column {missing[0]!r}")
    types = METRIC_COLUMNS if table == "results" else {}
    for col, kind in types.items():
        if col in frame and kind != "string" and not KINDS[kind](frame[col]):
            raise DataError(where, f"column {col!r} must be {kind}, got {frame[col].dtype}")
    for col, allowed in ALLOWED.items():
        if col in frame:
            bad = sorted(set(frame[col].dropna()) - set(allowed))
            if bad:
                raise DataError(where, f"column {col!r}: value {bad[0]!r} not one of {', '.join(allowed)}")


def write_table(path: Path, frame: pd.DataFrame, table: str, inputs: str | None = None,
                extra: dict | None = None) -> None:
    """Check ``frame`` against the schema and write it atomically with the schema metadata."""
    if table == "results":
        frame = conform_metrics(frame, str(path))
    check(frame, table, str(path))
    arrow = pa.Table.from_pandas(frame, preserve_index=False)
    meta = dict(arrow.schema.metadata or {})
    meta[METADATA_KEY] = json.dumps(metadata(table, inputs, extra)).encode()
    with atomic_path(path) as tmp:
        pq.write_table(arrow.replace_schema_metadata(meta), tmp)


def table_metadata(path: Path) -> dict | None:
    """The table's ``hybrid_sweep`` metadata, or None (no file, or a table from before schema 2)."""
    try:
        raw = (pq.read_schema(path).metadata or {}).get(METADATA_KEY)
    except (FileNotFoundError, pa.ArrowInvalid):
        return None
    return json.loads(raw) if raw else None


def read_table(path: Path) -> tuple[pd.DataFrame, dict]:
    """A results table and its metadata; a table of another schema version is one DataError."""
    meta = table_metadata(path)
    if meta is None or meta.get("schema_version") != SCHEMA_VERSION:
        found = (meta or {}).get("schema_version", "1 (no metadata)")
        raise DataError(path, f"results schema {found}, expected {SCHEMA_VERSION}; run python -m hybrid_sweep.collect "
                              f"{Path(path).parent} again")
    frame = pd.read_parquet(path)
    return (conform_metrics(frame, str(path)) if meta.get("table") == "results" else frame), meta


def conform_metrics(frame: pd.DataFrame, where: str = "metrics") -> pd.DataFrame:
    """Metric rows with every later column (``LATER_METRIC_COLUMNS``) present, as nullable integers:
    rows of older runs (no ``max_length``) and newer ones concatenate into one readable table."""
    if frame.empty and not len(frame.columns):
        return frame
    frame = frame.copy()
    for col in LATER_METRIC_COLUMNS:
        values = frame[col] if col in frame else pd.Series(pd.NA, index=frame.index, dtype="object")
        try:
            frame[col] = pd.array(values.astype("object").where(values.notna(), None), dtype="Int64")
        except (TypeError, ValueError):
            raise DataError(where, f"column {col!r} must be integer, got {values.dtype}") from None
    return frame


def described_columns(table: str) -> str:
    """The table's columns as the docs list them (README, config_schema.md): ``a, b, c`` in code quotes.
    tests/test_docs_columns.py holds the docs' lists to this, so they cannot drift from the schema."""
    extra = {"runs": ["train_s", "evaluate_s"]}.get(table, [])  # the stage wall times runs.parquet adds
    return ", ".join(f"`{c}`" for c in [*columns(table), *extra])
