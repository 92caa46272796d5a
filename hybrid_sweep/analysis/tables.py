"""Paper-style tables (mean ± 95 % CI over seeds) from a results root's tables only: results.parquet,
runs.parquet and the per-query tables. Nothing here reads the run store's code or a run's config."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from hybrid_sweep.analysis.stats import mean_ci
from hybrid_sweep.errors import DataError

SCHEMA_KEY = b"hybrid_sweep"  # results.parquet's schema metadata: {"axes", "numeric_axes", "log_axes", ...}
# Fallback when that metadata is absent (tables written by an older collect). The columns of the
# evaluator's metric rows, and the run columns that are repetitions or bookkeeping, never conditions:
METRIC_ROW_COLUMNS = ("benchmark", "setting", "query_lang", "doc_lang", "metric", "value", "n_queries", "n_skipped")
NOT_CONDITIONS = ("run_id", "seed", "sweep", "variant", "trained")
PER_QUERY_COLUMNS = ("benchmark", "setting", "query_id", "group", "query_lang", "doc_lang", "ap", "rank_distance")


@dataclass
class AxisInfo:
    """The conditions' axis columns that vary across runs; which are numeric, which scale in doublings."""
    axes: list[str]
    numeric: list[str] = field(default_factory=list)
    log: list[str] = field(default_factory=list)
    source: str = "inferred"  # "schema" when read from results.parquet's metadata


def varying_axes(results: pd.DataFrame, candidates=None) -> list[str]:
    """Axis columns that vary across runs, never the seed (runs are its repetitions) or bookkeeping. Without
    ``candidates`` (collect's metadata), every run-level column: constant within each run and not one of
    the metric row's own columns."""
    if results.empty:
        return []
    if candidates is None:
        cols = [c for c in results.columns if c not in METRIC_ROW_COLUMNS and c not in NOT_CONDITIONS]
        per_run = results.groupby("run_id", dropna=False)[cols].nunique(dropna=False) if "run_id" in results else None
        candidates = [c for c in cols if per_run is None or (per_run[c] <= 1).all()]
    return [c for c in candidates if c in results and c not in NOT_CONDITIONS and results[c].astype(str).nunique() > 1]


def is_log_axis(values: pd.Series) -> bool:
    """Fallback rule (collect's metadata says it where present): a positive axis that counts (integer
    values: pairs, languages, steps) or spans three doublings (a learning rate) is fitted against log2;
    ratios and counts that include 0 linearly."""
    v = pd.to_numeric(values, errors="coerce").dropna()
    return bool(len(v) and (v > 0).all() and ((v == v.round()).all() or v.max() / v.min() >= 8))


def axis_info(root: Path, results: pd.DataFrame) -> AxisInfo:
    """Axes from results.parquet's schema metadata (written by collect) where present, else inferred."""
    path = Path(root) / "results.parquet"
    meta = (pq.read_schema(path).metadata or {}) if path.exists() else {}
    if SCHEMA_KEY in meta:
        try:
            info = json.loads(meta[SCHEMA_KEY])
            axes = varying_axes(results, list(info["axes"]))
        except (ValueError, KeyError, TypeError) as e:
            raise DataError(path, f"schema metadata {SCHEMA_KEY.decode()!r} is not valid ({e})") from e
        return AxisInfo(axes, [a for a in axes if a in info.get("numeric_axes", [])],
                        [a for a in axes if a in info.get("log_axes", [])], "schema")
    axes = varying_axes(results)
    numeric = [a for a in axes if pd.api.types.is_numeric_dtype(results[a]) and not pd.api.types.is_bool_dtype(results[a])]
    return AxisInfo(axes, numeric, [a for a in numeric if is_log_axis(results[a])])


def condition_labels(frame: pd.DataFrame, by: list[str]) -> pd.Series:
    """'axis=value, ...' per row (the condition's name in tables and tests)."""
    if not by:
        return pd.Series("all runs", index=frame.index)
    parts = [c + "=" + frame[c].astype(object).where(frame[c].notna(), "–").astype(str) for c in by]
    out = parts[0]
    for p in parts[1:]:
        out = out + ", " + p
    return out


def summary(results: pd.DataFrame, metric: str, by: list[str]) -> pd.DataFrame:
    """benchmark, *by, setting, mean, ci, n — macro-average rows, aggregated over seeds (n = runs)."""
    avg = results[(results.query_lang == "avg") & (results.metric == metric)]
    rows = []
    for key, grp in avg.groupby(["benchmark", *by, "setting"], dropna=False, sort=True):
        m, ci, n = mean_ci(grp.value)
        rows.append((*key, m, ci, n))
    return pd.DataFrame(rows, columns=["benchmark", *by, "setting", "mean", "ci", "n"])


def wide_markdown(table: pd.DataFrame, by: list[str], digits: int = 3) -> str:
    """Conditions as rows, settings as columns, cells 'mean ± ci'; ``seeds`` = runs per condition."""
    def cell(r):
        ci = "" if pd.isna(r["ci"]) else f" ± {r['ci']:.{digits}f}"
        return f"{r['mean']:.{digits}f}{ci}"
    t = table.assign(cell=table.apply(cell, axis=1))
    numeric = [c for c in by if pd.api.types.is_numeric_dtype(t[c])]  # order rows along numeric axes first
    t[by] = t[by].astype(object).where(t[by].notna(), "–")  # e.g. zero-shot runs have no ratio: keep their row
    wide = t.pivot_table(index=["benchmark", *by], columns="setting", values="cell", aggfunc="first")
    order = [s for s in ("mono", "cross", "multi") if s in wide.columns]
    wide = wide[order].reset_index()
    n = t.groupby(["benchmark", *by], dropna=False)["n"].max().reset_index(name="seeds")
    wide = wide.merge(n, on=["benchmark", *by])
    key = (lambda col: pd.to_numeric(col, errors="coerce").fillna(np.inf) if col.name in numeric else col.astype(str))
    wide = wide.sort_values(["benchmark", *numeric, *[c for c in by if c not in numeric]], key=key)
    return wide.to_markdown(index=False)


def per_query_frame(root: Path, results: pd.DataFrame, by: list[str]) -> tuple[pd.DataFrame, list[str]]:
    """Query-level rows of every finished run in ``results`` with its condition columns, seed and run id,
    from ``<root>/per_query.parquet`` (collected, with a run_id column; never from run folders). Returns the
    frame and the run ids that have no query rows."""
    root = Path(root)
    run_cols = [c for c in dict.fromkeys([*by, "seed"]) if c in results]
    runs = results.groupby("run_id", sort=False)[run_cols].first().reset_index() if "run_id" in results else None
    if runs is None or runs.empty:
        return pd.DataFrame(), []
    collected = root / "per_query.parquet"  # collect's table: the analysis reads tables only
    if collected.exists():
        names = pq.read_schema(collected).names
        if "run_id" not in names:
            raise DataError(collected, "no run_id column (a collected per-query table names each row's run)")
        frame = pd.read_parquet(collected, columns=[c for c in (*PER_QUERY_COLUMNS, "run_id") if c in names])
        frame = frame[frame.run_id.isin(runs.run_id)]
    else:  # a results root collected before per_query.parquet existed: no query-level rows
        frame = pd.DataFrame(columns=["run_id"])
    if "group" not in frame and "query_id" in frame:  # older tables: LAReQA query ids are "<lang>:<group id>"
        frame["group"] = frame.query_id.astype(str).str.split(":", n=1).str[-1]
    missing = sorted(set(runs.run_id) - set(frame.run_id))
    return frame.merge(runs, on="run_id", how="inner"), missing


def language_groups(results: pd.DataFrame, resource: dict[str, str], by: list[str]) -> pd.DataFrame:
    """mAP per query language grouped by resource level and by seen / unseen in training: condition x
    setting x group -> mean over languages, doc languages and seeds (benchmark languages only)."""
    rows = results[(results.query_lang != "avg") & (results.metric == "map")].copy()
    if rows.empty:
        return rows
    rows["level"] = rows.query_lang.map(resource).fillna("unknown")
    langs = rows.train_langs.fillna("").astype(str).str.split(",") if "train_langs" in rows else [["all"]] * len(rows)
    rows["seen"] = [q in ls or ls == ["all"] for q, ls in zip(rows.query_lang, langs)]
    rows["seen"] = rows["seen"].map({True: "seen", False: "unseen"})
    out = []
    for group in ("level", "seen") if (rows.level != "unknown").any() else ("seen",):
        g = rows.groupby(["benchmark", *by, "setting", group], dropna=False).value.mean().reset_index()
        out.append(g.rename(columns={group: "group"}).assign(grouping=group))
    return pd.concat(out, ignore_index=True)
