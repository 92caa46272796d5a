"""Linear contrasts of condition means at the run level, and the contrast weights of the designs a study
declares: a difference of two levels, and the OLS slope over an axis (a weighted sum of condition means).

The run-level test of a contrast (``run_contrast``) is the one ``compare_runs`` uses for a difference:
paired by seed when every condition ran the same seeds (the per-seed contrast values through
``paired_test``: the paired t, the sign-flip from ``MIN_PERM_RUNS`` pairs), else a Welch-type t with
Satterthwaite df. The question-level test is ``HierarchicalBootstrap.contrast`` with the same weights."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from hybrid_sweep.analysis.hierarchical import one_sided
from hybrid_sweep.analysis.stats import MIN_RUNS, NAN, paired_test


def trend_weights(x: dict[str, float], n: dict[str, int]) -> dict[str, float]:
    """Weights w_k with sum_k w_k · mean_k = the OLS slope of per-run values on x (n_k runs at x_k):
    w_k = n_k (x_k − x̄) / Sxx, x̄ and Sxx over runs."""
    total = sum(n.values())
    xbar = sum(n[k] * x[k] for k in x) / total
    sxx = sum(n[k] * (x[k] - xbar) ** 2 for k in x)
    if sxx <= 0:
        raise ValueError("a trend needs at least two distinct axis values")
    return {k: n[k] * (x[k] - xbar) / sxx for k in x}


def run_contrast(runs: pd.DataFrame, weights: dict[str, float], alternative: str = "two-sided",
                 level: float = 0.95, min_runs: int = MIN_RUNS) -> dict:
    """``runs``: columns ``condition``, ``seed``, ``value`` (one row per run). Returns estimate (``diff``),
    lo, hi (two-sided CI), p (for ``alternative``), df, se, test, n_min (fewest runs of a condition)."""
    groups = {k: runs[runs.condition == k] for k, w in weights.items() if w != 0}
    w = {k: float(weights[k]) for k in groups}
    ns = {k: int(g.value.notna().sum()) for k, g in groups.items()}
    est = sum(w[k] * g.value.mean() for k, g in groups.items()) if groups else NAN
    out = {"diff": est, "lo": NAN, "hi": NAN, "p": NAN, "df": NAN, "se": NAN, "n_min": min(ns.values(), default=0),
           "test": f"none (fewer than {min_runs} runs in a condition)"}
    if not groups or out["n_min"] < min_runs:
        return out
    seed_sets = [g.dropna(subset=["value"]).seed for g in groups.values()]
    paired = all(s.notna().all() and s.is_unique and set(s) == set(seed_sets[0]) for s in seed_sets)
    if paired:
        wide = pd.concat({k: g.set_index("seed").value for k, g in groups.items()}, axis=1).dropna()
        per_seed = wide.to_numpy() @ np.array([w[k] for k in wide.columns])
        if np.ptp(per_seed) == 0:
            return {**out, "lo": est, "hi": est, "p": 1.0 if est == 0 else NAN, "test": "paired (no spread)"}
        res = paired_test(per_seed, level)
        res = {k: float(v) if k != "test" else v for k, v in res.items()}
        se = float(per_seed.std(ddof=1) / np.sqrt(len(per_seed)))
        test = res["test"].replace("per-seed differences", "per-seed contrast values")
        return {**out, "lo": res["lo"], "hi": res["hi"], "p": float(one_sided(res["p"], est, alternative)),
                "df": res.get("df", len(per_seed) - 1), "se": se, "test": test}
    parts = [(w[k] ** 2 * g.value.var(ddof=1) / ns[k], ns[k] - 1) for k, g in groups.items()]
    var = sum(v for v, _ in parts)
    if not var > 0:
        return out
    df = var ** 2 / sum(v ** 2 / d for v, d in parts)
    se = float(np.sqrt(var))
    half = stats.t.ppf(0.5 + level / 2, df) * se
    p = 2 * stats.t.sf(abs(est) / se, df)
    return {**out, "lo": est - half, "hi": est + half, "p": float(one_sided(p, est, alternative)), "df": float(df),
            "se": se, "test": "Welch-type t on per-run values (Satterthwaite df)"}
