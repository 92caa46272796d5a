"""Run-level statistics for sweeps. The replication unit is the training run: a condition's value is one
number per run (its macro-averaged metric), and every test, interval and fit here works on those numbers.

- ``mean_ci``: mean and t-based 95 % CI over a condition's runs;
- ``compare_runs``: the difference of two conditions — Welch's t (unpaired), or, when both conditions ran
  the same seeds, a paired t on the per-seed differences (an exact sign-flip permutation over seeds once
  there are ``min_perm_runs`` pairs); fewer than ``min_runs`` runs a side gives no p-value;
- ``ols_slope``: metric = a + b·log2(axis) (or a + b·axis) fitted by OLS on per-run values, t-based CI of b.

The variance model each assumes and the simulation that checks their calibration: docs/statistics.md.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

MIN_RUNS = 3  # fewer runs a side: the comparison is shown without a p-value
MIN_PERM_RUNS = 8  # paired seeds from which the exact sign-flip test can reach p < .01 (2 / 2**8 = .008)
NAN = float("nan")


def mean_ci(values, level: float = 0.95) -> tuple[float, float, int]:
    """(mean, half-width of the t confidence interval, n). Half-width is NaN for n < 2."""
    x = np.asarray(pd.Series(values).dropna(), dtype=float)
    n = len(x)
    if n == 0:
        return NAN, NAN, 0
    if n < 2:
        return float(x.mean()), NAN, 1
    half = stats.t.ppf(0.5 + level / 2, n - 1) * x.std(ddof=1) / np.sqrt(n)
    return float(x.mean()), float(half), n


def _by_seed(values: np.ndarray, seeds) -> dict | None:
    """Finite values keyed by seed, or None when seeds are missing or repeat (runs cannot be paired)."""
    if seeds is None or len(seeds) != len(values):
        return None
    keyed = {s: v for s, v in zip(seeds, values) if np.isfinite(v)}
    if len(keyed) != np.isfinite(values).sum() or any(pd.isna(s) for s in keyed):
        return None
    return keyed


def compare_runs(a, b, seeds_a=None, seeds_b=None, paired: bool | None = None, level: float = 0.95,
                 min_runs: int = MIN_RUNS, min_perm_runs: int = MIN_PERM_RUNS) -> dict:
    """Difference mean(a) − mean(b) of two conditions' per-run values, with its CI and two-sided p.

    ``paired=None`` pairs the runs by seed when both conditions ran exactly the same seeds (the same seed
    draws the same initialisation and batch order, so seed effects shared by both conditions cancel);
    ``False`` forces Welch's t, ``True`` requires pairing. Returns diff, lo, hi, p, df, test, n_A, n_B,
    mean_A, mean_B."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    xa, xb = a[np.isfinite(a)], b[np.isfinite(b)]
    out = {"mean_A": float(xa.mean()) if len(xa) else NAN, "mean_B": float(xb.mean()) if len(xb) else NAN,
           "n_A": len(xa), "n_B": len(xb)}
    out["diff"] = out["mean_A"] - out["mean_B"]
    if min(len(xa), len(xb)) < min_runs:
        return {**out, "lo": NAN, "hi": NAN, "p": NAN, "df": NAN, "test": f"none (fewer than {min_runs} runs a side)"}
    sa, sb = _by_seed(a, seeds_a), _by_seed(b, seeds_b)
    can_pair = sa is not None and sb is not None and set(sa) == set(sb)
    if paired and not can_pair:
        raise ValueError("paired comparison needs the same seeds, each once, in both conditions")
    if can_pair and paired is not False:
        d = np.array([sa[s] - sb[s] for s in sa])
        if np.all(d == d[0]):  # no spread: t is undefined, the CI collapses onto the difference
            res = {"lo": d[0], "hi": d[0], "p": 1.0 if d[0] == 0 else NAN, "df": len(d) - 1,
                   "test": "paired (differences without spread)"}
        else:
            res = paired_t(d, level) if len(d) < min_perm_runs else sign_flip(d, level)
    else:
        res = welch(xa, xb, level)
    return {**out, **{k: (float(v) if k != "test" else v) for k, v in res.items()}}


def welch(a, b, level: float = 0.95) -> dict:
    """Welch's t over the last axis (batched: a is (..., n_A), b is (..., n_B))."""
    res = stats.ttest_ind(a, b, equal_var=False, axis=-1)
    ci = res.confidence_interval(level)
    return {"lo": ci.low, "hi": ci.high, "p": res.pvalue, "df": res.df, "test": "Welch t on per-run values"}


def paired_t(d, level: float = 0.95) -> dict:
    """One-sample t on per-seed differences over the last axis (batched)."""
    res = stats.ttest_1samp(d, 0.0, axis=-1)
    ci = res.confidence_interval(level)
    return {"lo": ci.low, "hi": ci.high, "p": res.pvalue, "df": res.df, "test": "paired t on per-seed differences"}


def sign_flip(d, level: float = 0.95) -> dict:
    """Paired t CI with the p of the sign-flip permutation test of the mean difference over seeds (exact,
    all 2**n sign patterns, up to 16 pairs; else 9,999 random ones). With n pairs its smallest two-sided p
    is 2 / 2**n — .25 for 3 seeds — hence only from ``MIN_PERM_RUNS`` pairs on (batched)."""
    d = np.asarray(d, dtype=float)
    exact = d.shape[-1] <= 16
    perm = stats.permutation_test((d,), lambda x, axis: np.mean(x, axis=axis), permutation_type="samples",
                                  vectorized=True, n_resamples=np.inf if exact else 9999, axis=-1,
                                  rng=np.random.default_rng(0))
    return {**paired_t(d, level), "p": perm.pvalue,
            "test": f"sign-flip permutation over paired seeds ({'exact' if exact else '9,999 draws'}); paired t CI"}


def ols_slope(x, y, log: bool = True, level: float = 0.95) -> dict:
    """OLS fit y = a + b·log2(x) (or a + b·x with ``log=False``) on per-run values (one point per run),
    with the t-based CI and p of b (df = runs − 2). Assumes the per-run values scatter independently
    around the line; systematic departures of whole conditions from it (lack of fit) are not covered."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    keep = np.isfinite(x) & np.isfinite(y) & ((x > 0) if log else True)
    x, y = (np.log2(x[keep]) if log else x[keep]), y[keep]
    levels = len(np.unique(x))
    empty = {"slope": NAN, "intercept": NAN, "lo": NAN, "hi": NAN, "p": NAN, "df": NAN, "n_runs": len(x),
             "n_levels": levels, "test": "OLS t on per-run values"}
    if levels < 2:
        return empty
    res = stats.linregress(x, y)
    df = len(x) - 2
    if df < 1:
        return {**empty, "slope": float(res.slope), "intercept": float(res.intercept)}
    half = stats.t.ppf(0.5 + level / 2, df) * res.stderr
    return {**empty, "slope": float(res.slope), "intercept": float(res.intercept), "lo": float(res.slope - half),
            "hi": float(res.slope + half), "p": float(res.pvalue), "df": df}
