"""Mixture axes (RQ2: the shares of mono, cross and mixed batches, which sum to 1) analysed as one design.

Separate slopes on shares that sum to 1 confound each other: raising one share lowers the others, so a
truth where only the mixed share matters shows "effects" of the mono and cross shares (issue 19). Here the
shares are fitted together by Scheffé's linear mixture model, value = sum_i b_i x_i (no intercept; b_i is
the value of the pure mode i), by weighted least squares on the conditions' mean run values (weights: runs
per condition, so it equals OLS on per-run values). Reported are the **swaps** b_i − b_j: the change in the
metric when the whole batch budget moves from mode j to mode i. Each swap is a linear contrast of condition
means, tested at the run level (``run_contrast``: paired by seed). Exploratory: the paper's hypothesis
(hybrid vs each pure mode) is a planned contrast between named mixes, declared as the study's primary."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from hybrid_sweep.analysis.contrasts import run_contrast

SUM_TOLERANCE = 0.02  # shares stored rounded (e.g. 0.34, 0.33, 0.33)


def compositional_axes(results: pd.DataFrame, numeric: list[str]) -> list[str]:
    """The numeric axes that are shares of one whole: at least two, each within [0, 1], summing to 1 in every
    run that has them (runs without them, e.g. zero-shot ones, are ignored)."""
    cand = [a for a in numeric if a in results and pd.to_numeric(results[a], errors="coerce").dropna().between(0, 1).all()]
    if len(cand) < 2:
        return []
    shares = results[cand].apply(pd.to_numeric, errors="coerce").dropna()
    return cand if len(shares) and bool((shares.sum(axis=1) - 1).abs().le(SUM_TOLERANCE).all()) else []


def swap_weights(mixes: pd.DataFrame, runs: dict[str, int], components: list[str]) -> dict[tuple[str, str], dict[str, float]]:
    """(i, j) -> weights over conditions of b_i − b_j in the WLS Scheffé fit. ``mixes``: one row per
    condition (index = condition label), the component shares as columns."""
    x = mixes[components].to_numpy(dtype=float)
    n = np.array([runs[c] for c in mixes.index], dtype=float)
    m = np.linalg.solve(x.T @ (n[:, None] * x), x.T * n)  # (components, conditions): b = m @ means
    out = {}
    for i, j in itertools.combinations(range(len(components)), 2):
        out[(components[i], components[j])] = dict(zip(mixes.index, m[i] - m[j]))
    return out


def mixture_table(results: pd.DataFrame, components: list[str], metric: str = "map") -> pd.DataFrame:
    """One row per (benchmark, setting, swap): estimate, CI, p, test (unadjusted: the report adjusts it with
    every other exploratory test)."""
    avg = results[(results.query_lang == "avg") & (results.metric == metric)].dropna(subset=components)
    rows = []
    for (bench, setting), grp in avg.groupby(["benchmark", "setting"], sort=True):
        shares = grp[components].astype(float).round(6)
        label = shares.astype(str).agg(", ".join, axis=1)
        runs = pd.DataFrame({"condition": label, "seed": grp.seed if "seed" in grp else None, "value": grp.value})
        mixes = shares.assign(condition=label).drop_duplicates("condition").set_index("condition")
        if np.linalg.matrix_rank(mixes.to_numpy()) < len(components):
            continue  # too few distinct mixes to separate the components
        counts = runs.condition.value_counts().to_dict()
        for (i, j), w in swap_weights(mixes, counts, components).items():
            res = run_contrast(runs, w)
            rows.append({"benchmark": bench, "setting": setting, "metric": metric, "swap": f"{i} − {j}",
                         "estimate": res["diff"], "lo": res["lo"], "hi": res["hi"], "p": res["p"], "test": res["test"],
                         "model": "Scheffé linear mixture, WLS on condition means"})
    return pd.DataFrame(rows)
