"""Comparisons of conditions for a report: the planned ones (adjacent steps of each numeric axis, or every
condition against the reference) with Holm's correction, and every pair with Benjamini–Hochberg's.

Each row carries the default run-level test (``compare_runs``: one value per run) and the hierarchical
bootstrap over runs and question clusters (columns ``*_q``), each with raw and adjusted p, the runs a side,
the test's name and the correction with its family size. No condition is dropped. The report replaces the
per-table adjustment by one Holm family over every exploratory test it shows (``multiplicity.adjust_union``)."""

from __future__ import annotations

import itertools

import pandas as pd

from hybrid_sweep.analysis.hierarchical import HierarchicalBootstrap, cells_from_frame
from hybrid_sweep.analysis.multiplicity import add_adjusted
from hybrid_sweep.analysis.stats import MIN_RUNS, compare_runs
from hybrid_sweep.analysis.tables import condition_labels

QUERY_COLUMN = {"map": "ap", "rank_distance": "rank_distance"}  # results metric -> per-query column
METRICS = {"map": None, "rank_distance": ("multi",)}  # metric -> settings it is compared in (None: all)
COLUMNS = ["benchmark", "setting", "metric", "A", "B", "n_A", "n_B", "mean_A", "mean_B", "diff", "lo", "hi", "p",
           "p_adj", "test", "lo_q", "hi_q", "p_q", "p_q_adj", "clusters", "correction"]


def run_values(results: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """One row per run and (benchmark, setting, metric): its macro-averaged value, condition and seed."""
    avg = results[results.query_lang == "avg"].copy()
    avg["condition"] = condition_labels(avg, by)
    if "seed" not in avg:
        avg["seed"] = None
    return avg[["benchmark", "setting", "metric", "condition", *by, "run_id", "seed", "value"]]


def planned_pairs(conditions: pd.DataFrame, by: list[str], numeric: list[str]) -> list[tuple[str, str, str]]:
    """(A, B, why) of the planned comparisons: for every numeric axis, each step against the step below it
    with all other axes equal (A = the larger value); with no numeric axis, every condition against the
    reference (the first in sorted order). In the all-pairs table, too, A is the later condition in the
    conditions' natural order (numeric axes by value), so ``diff`` reads as the gain of moving up."""
    pairs = []
    for axis in numeric:
        others = [c for c in by if c != axis and not _moves_with(conditions, c, axis)]
        groups = conditions.groupby(others, dropna=False) if others else [((), conditions)]
        for _, grp in groups:
            steps = grp.dropna(subset=[axis]).sort_values(axis)
            for (_, lo), (_, hi) in itertools.pairwise(steps.iterrows()):
                pairs.append((hi.condition, lo.condition, f"adjacent {axis}"))
    if not numeric:
        labels = sorted(conditions.condition)
        pairs = [(c, labels[0], "vs reference") for c in labels[1:]]
    return pairs


def _moves_with(conditions: pd.DataFrame, column: str, axis: str) -> bool:
    """True when ``column`` and ``axis`` determine each other across the conditions (e.g. the training
    languages and their count): such a column is the same axis spelled twice, not another factor."""
    both = conditions[[column, axis]].astype(str)
    return bool(both.groupby(axis)[column].nunique().le(1).all() and both.groupby(column)[axis].nunique().le(1).all())


def compare_conditions(results: pd.DataFrame, by: list[str], numeric: list[str], per_query: pd.DataFrame | None = None,
                       n_boot: int = 1000) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(planned, all_pairs) tables over every benchmark, setting and metric (see the module docstring)."""
    values = run_values(results, by)
    conditions = values.drop_duplicates("condition")[["condition", *by]]
    planned = planned_pairs(conditions, by, numeric)
    first = [*[c for c in by if c in numeric], *[c for c in by if c not in numeric]]  # numeric axes order the pairs
    order = conditions.sort_values(first, key=_natural).condition.tolist() if by else list(conditions.condition)
    all_pairs = [(later, earlier, "pair") for earlier, later in itertools.combinations(order, 2)]
    rows = {"planned": [], "all": []}
    for (bench, setting, metric), grp in values.groupby(["benchmark", "setting", "metric"], sort=True):
        if metric not in METRICS or (METRICS[metric] and setting not in METRICS[metric]):
            continue
        boot = _bootstrap(per_query, by, bench, setting, metric, n_boot)
        runs = {c: g for c, g in grp.groupby("condition")}
        for kind, pairs in (("planned", planned), ("all", all_pairs)):
            for a, b, why in pairs:
                if a in runs and b in runs:
                    rows[kind].append({"benchmark": bench, "setting": setting, "metric": metric, "A": a, "B": b,
                                       "comparison": why, **_compare(runs[a], runs[b], boot, a, b)})
    return (_table(rows["planned"], "holm"), _table(rows["all"], "fdr_bh"))


def _natural(col: pd.Series) -> pd.Series:
    """Numeric axes sort by value, the rest as text (missing values last)."""
    return col.astype(float).fillna(float("inf")) if pd.api.types.is_numeric_dtype(col) else col.astype(str)


def _bootstrap(per_query, by, bench, setting, metric, n_boot) -> HierarchicalBootstrap | None:
    col = QUERY_COLUMN.get(metric)
    if per_query is None or per_query.empty or col not in per_query:
        return None
    rows = per_query[(per_query.benchmark == bench) & (per_query.setting == setting)]
    if rows.empty or not rows[col].notna().any():
        return None
    rows = rows.assign(condition=condition_labels(rows, by))
    return HierarchicalBootstrap(cells_from_frame(rows, col), n_boot=n_boot)


def _compare(ra: pd.DataFrame, rb: pd.DataFrame, boot: HierarchicalBootstrap | None, a: str, b: str) -> dict:
    res = compare_runs(ra.value, rb.value, list(ra.seed), list(rb.seed))
    out = {k: res[k] for k in ("n_A", "n_B", "mean_A", "mean_B", "diff", "lo", "hi", "p", "test")}
    out.update(lo_q=float("nan"), hi_q=float("nan"), p_q=float("nan"), clusters=0)
    if boot is not None and a in boot.conditions and b in boot.conditions and min(res["n_A"], res["n_B"]) >= MIN_RUNS:
        q = boot.compare(a, b)
        out.update(lo_q=q["lo"], hi_q=q["hi"], p_q=q["p"], clusters=q["clusters"])
    return out


def _table(rows: list[dict], method: str) -> pd.DataFrame:
    if not rows:
        return pd.DataFrame(columns=[*COLUMNS, "comparison"])
    table = add_adjusted(pd.DataFrame(rows), method, columns=("p", "p_q"))
    return table[[*COLUMNS, "comparison"]]
