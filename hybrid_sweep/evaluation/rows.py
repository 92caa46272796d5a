"""The tidy metric rows every evaluation produces: one row per (benchmark, setting, query_lang, doc_lang,
metric), columns ``results_schema.ROW_COLUMNS``, plus the macro rows (``query_lang = avg``).

One builder for every path (the engine in ``task_evaluator``, the MTEB bridge's rows go through the same
column list), so a metric is named, averaged and counted the same way wherever it comes from.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

MULTI_POOL = "all"  # doc_lang of a multilingual pool
FULL = "full"  # the `depth` column: metrics from the full ranking of the pool
COUNT_METRICS = ("rank_distance_excluded",)  # counts: the macro row sums them


@dataclass
class EvalOutput:
    metrics: pd.DataFrame  # long: benchmark, setting, query_lang, doc_lang, metric, value, n_queries, n_skipped, depth
    per_query: pd.DataFrame  # benchmark, setting, query_id, group, query_lang, doc_lang, ap, rr, first_rank, ...


def with_max_length(out: EvalOutput, max_length: int | None) -> EvalOutput:
    """The metric rows with the encoder's max tokens (``max_length``, nullable integer) as a column."""
    out.metrics["max_length"] = pd.array([max_length] * len(out.metrics), dtype="Int64")
    return out


def metric_rows(key: tuple, values: dict, names, n: int, n_skipped: int, depth: str,
                rank_distance: np.ndarray | None = None, extra: dict | None = None) -> list[tuple]:
    """The metric rows of one pool (``key`` = benchmark, setting, query_lang, doc_lang): the mean of each
    named per-query metric; with ``rank_distance`` (per query, NaN where not defined) its mean over the
    queries it is defined for; then the mean of each ``extra`` metric; then, with ``rank_distance``, the
    count of queries left out of it (``rank_distance_excluded``: a subset can cut a group to one item)."""
    rows = [(*key, name, float(np.mean(values[name])), n, n_skipped, depth) for name in names]
    counted = None if rank_distance is None else ~np.isnan(rank_distance)
    if counted is not None and counted.any():
        rows.append((*key, "rank_distance", float(rank_distance[counted].mean()), int(counted.sum()),
                     n_skipped, depth))
    rows.extend((*key, name, float(np.mean(v)), n, n_skipped, depth) for name, v in (extra or {}).items())
    if counted is not None:
        rows.append((*key, "rank_distance_excluded", float((~counted).sum()), n, n_skipped, depth))
    return rows


def macro_rows(metrics: pd.DataFrame) -> pd.DataFrame:
    """Macro average over the pools of each (benchmark, setting, metric): query_lang = 'avg'. Count metrics
    are summed; ``depth`` is the pools' depth, or 'mixed' where they differ."""
    if metrics.empty:
        return metrics
    g = metrics.groupby(["benchmark", "setting", "metric"], sort=False)
    out = g.agg(value=("value", "mean"), total=("value", "sum"), n_queries=("n_queries", "sum"),
                n_skipped=("n_skipped", "sum"), depth=("depth", lambda d: d.iloc[0] if d.nunique() == 1 else "mixed"),
                multi=("doc_lang", lambda d: (d == MULTI_POOL).all())).reset_index()
    out["value"] = np.where(out.metric.isin(COUNT_METRICS), out["total"], out["value"])
    out["query_lang"] = "avg"
    out["doc_lang"] = np.where(out["multi"], MULTI_POOL, "avg")
    return out[metrics.columns]
