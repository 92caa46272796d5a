"""Statistics for sweeps: t-based CIs over seeds, a bootstrap CI of a log-linear slope, a paired
randomisation test over queries, and a bootstrap over seeds and queries for the difference of two
conditions (hand-written: scipy's bootstrap resamples one level only)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats


def mean_ci(values, level: float = 0.95) -> tuple[float, float, int]:
    """(mean, half-width of the t confidence interval, n). Half-width is NaN for n < 2."""
    x = np.asarray(pd.Series(values).dropna(), dtype=float)
    n = len(x)
    if n == 0:
        return float("nan"), float("nan"), 0
    if n < 2:
        return float(x.mean()), float("nan"), 1
    half = stats.t.ppf(0.5 + level / 2, n - 1) * x.std(ddof=1) / np.sqrt(n)
    return float(x.mean()), float(half), n


def log_slope(x, y, n_boot: int = 2000, seed: int = 0, level: float = 0.95, log: bool = True) -> dict:
    """Least-squares fit y = a + b * log2(x) (or a + b * x with ``log=False``); bootstrap (resampling
    points) CI of b."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    keep = np.isfinite(x) & np.isfinite(y) & ((x > 0) if log else True)
    x, y = (np.log2(x[keep]) if log else x[keep]), y[keep]
    if len(np.unique(x)) < 2:
        return {"slope": float("nan"), "intercept": float("nan"), "lo": float("nan"), "hi": float("nan")}
    b, a = np.polyfit(x, y, 1)
    rng = np.random.default_rng(seed)
    boots = []
    for _ in range(n_boot):
        i = rng.integers(len(x), size=len(x))
        if len(np.unique(x[i])) > 1:
            boots.append(np.polyfit(x[i], y[i], 1)[0])
    lo, hi = np.quantile(boots, [(1 - level) / 2, (1 + level) / 2])
    return {"slope": float(b), "intercept": float(a), "lo": float(lo), "hi": float(hi)}


def paired_randomization(a, b, n_perm: int = 10000, seed: int = 0) -> dict:
    """Two-sided sign-flip test of mean(a - b) over paired observations (queries).

    Returns the mean difference, Cohen's d_z (mean / sd of differences), the p-value and n.
    """
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    d = d[np.isfinite(d)]
    n = len(d)
    if n == 0:
        return {"diff": float("nan"), "effect_size": float("nan"), "p_value": float("nan"), "n": 0}
    observed = abs(d.mean())
    rng = np.random.default_rng(seed)
    signs = rng.choice([-1.0, 1.0], size=(n_perm, n))
    null = np.abs((signs * d).mean(axis=1))
    p = (1 + np.sum(null >= observed - 1e-15)) / (n_perm + 1)
    sd = d.std(ddof=1) if n > 1 else float("nan")
    return {"diff": float(d.mean()), "effect_size": float(d.mean() / sd) if sd and sd > 0 else float("nan"),
            "p_value": float(p), "n": n}


def seed_query_bootstrap(a, b, n_boot: int = 2000, seed: int = 0, level: float = 0.95, chunk: int = 250) -> dict:
    """Difference of two conditions' means when each has several seeds: ``a`` is (seeds_A, queries),
    ``b`` (seeds_B, queries), columns paired by query. Every replicate resamples the seeds of each
    condition and the queries (shared by both, keeping the pairing), so the interval carries seed-to-seed
    variance as well as query sampling. Returns the observed difference, its percentile CI and the
    two-sided bootstrap p-value (twice the smaller tail mass beyond 0)."""
    a, b = np.atleast_2d(np.asarray(a, dtype=float)), np.atleast_2d(np.asarray(b, dtype=float))
    keep = np.isfinite(a).all(axis=0) & np.isfinite(b).all(axis=0)
    a, b = a[:, keep], b[:, keep]
    n = a.shape[1]
    if n == 0:
        return {"diff": float("nan"), "lo": float("nan"), "hi": float("nan"), "p_boot": float("nan")}
    rng = np.random.default_rng(seed)
    diffs = []
    for start in range(0, n_boot, chunk):
        m = min(chunk, n_boot - start)
        w = rng.multinomial(n, np.full(n, 1 / n), size=m).T / n  # (queries, m): resampled query weights
        ca = rng.multinomial(len(a), np.full(len(a), 1 / len(a)), size=m) / len(a)  # (m, seeds_A)
        cb = rng.multinomial(len(b), np.full(len(b), 1 / len(b)), size=m) / len(b)
        diffs.append((ca * (a @ w).T).sum(axis=1) - (cb * (b @ w).T).sum(axis=1))
    d = np.concatenate(diffs)
    lo, hi = np.quantile(d, [(1 - level) / 2, (1 + level) / 2])
    p = min(1.0, 2 * min((d <= 0).mean(), (d >= 0).mean()))
    return {"diff": float(a.mean() - b.mean()), "lo": float(lo), "hi": float(hi), "p_boot": float(max(p, 1 / n_boot))}
