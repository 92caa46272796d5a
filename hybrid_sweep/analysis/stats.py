"""Run-level statistics for sweeps. The replication unit is the training run: a condition's value is one
number per run (its macro-averaged metric), and every test, interval and fit here works on those numbers.

- ``mean_ci``: mean and t-based 95 % CI over a condition's runs;
- ``compare_runs``: the difference of two conditions — Welch's t (unpaired), or, when both conditions ran
  the same seeds, a paired test on the per-seed differences (``paired_test``: the paired t below
  ``MIN_PERM_RUNS`` pairs, the sign-flip permutation from there); fewer than ``min_runs`` runs a side
  gives no p-value;
- ``ols_slope``: metric = a + b·log2(axis) (or a + b·axis) fitted by OLS on per-run values, t-based CI of b.

The variance model each assumes and the simulation that checks their calibration: docs/statistics.md.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

MIN_RUNS = 3  # fewer runs a side: the comparison is shown without a p-value
# Paired seeds from which the sign-flip permutation test replaces the paired t. Rule (docs/statistics.md):
# the permutation test is used only where its granularity cannot cost power in any family a report makes:
# its smallest two-sided p, 2 / 2**n, must be 20 times below Holm's first threshold .05 / K for families up
# to K = 80 (2 / 2**16 = 3.1e-5). Earlier (8 pairs) its smallest p, .0078, was above .05 / 8: power 0 at 8
# seeds under Holm over 8 tests, where the paired t at 7 seeds had .49 (issue 19).
MIN_PERM_RUNS = 16
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
            res = paired_test(d, level, min_perm_runs)
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


def paired_test(d, level: float = 0.95, min_perm_runs: int = MIN_PERM_RUNS) -> dict:
    """The paired test ``compare_runs`` uses on per-seed differences ``d`` (..., n): the paired t below
    ``min_perm_runs`` pairs, the sign-flip permutation test from there (batched)."""
    return paired_t(d, level) if np.shape(d)[-1] < min_perm_runs else sign_flip(d, level)


def sign_flip(d, level: float = 0.95, n_random: int = 9999, chunk: int = 4096) -> dict:
    """Paired t CI with the p of the sign-flip permutation test of the mean difference over seeds (exact,
    all 2**n sign patterns, up to 16 pairs; else ``n_random`` random ones plus the observed, seeded). With n
    pairs its smallest two-sided p is 2 / 2**n — .25 for 3 seeds, .0078 for 8 — hence only from
    ``MIN_PERM_RUNS`` pairs on (batched: d is (..., n); patterns go through in chunks, so memory stays
    (trials x chunk) where scipy's batched permutation_test holds every pattern at once)."""
    d = np.asarray(d, dtype=float)
    n = d.shape[-1]
    flat = d.reshape(-1, n)
    obs = np.abs(flat.mean(axis=1))
    exact = n <= 16
    if exact:
        bits = (np.arange(2 ** n)[:, None] >> np.arange(n)) & 1
        signs = 1.0 - 2.0 * bits
    else:
        signs = np.random.default_rng(0).choice([-1.0, 1.0], size=(n_random, n))
    count = np.zeros(len(flat))
    for start in range(0, len(signs), chunk):
        null = np.abs(flat @ signs[start:start + chunk].T) / n
        count += (null >= obs[:, None] * (1 - 1e-12) - 1e-15).sum(axis=1)
    p = count / len(signs) if exact else (count + 1) / (len(signs) + 1)
    return {**paired_t(d, level), "p": p.reshape(d.shape[:-1]) if d.ndim > 1 else float(p[0]),
            "test": f"sign-flip permutation over paired seeds ({'exact' if exact else f'{n_random:,} draws'}); paired t CI"}


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
