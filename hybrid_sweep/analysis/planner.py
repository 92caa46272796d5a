"""Seeds planner: how many seeds per level the declared primary test needs for a target power, and the
smallest effect the seeds a root has can detect (docs/statistics.md "Planning seeds").

Model of one primary contrast (a difference, or a slope as a weighted sum of condition means): its
estimate has variance sd_seed² / n + cluster_var, where ``sd_seed`` is the standard deviation of the
per-seed contrast values (for a difference: of the per-seed differences) and ``cluster_var`` the
question-level part that does not shrink with seeds (for a difference of two conditions with condition x
question effects of sd σ_q over Q questions: 2 σ_q² / Q). The power is that of the test at level
alpha / family (Bonferroni, the threshold Holm's first step applies to the smallest p of a family of K):
a noncentral t whose critical value is Banerjee's over the run part (n − 1 df) and the cluster part
(``clusters`` − 1 df), as the question-level test computes it, with Satterthwaite's df; without a cluster
part, exactly the paired t's power."""

from __future__ import annotations

import math

import numpy as np
from scipy import optimize, stats


def power(n: int, effect: float, sd_seed: float, cluster_var: float = 0.0, alpha: float = 0.05, family: int = 1,
          alternative: str = "two-sided", clusters: int = 100) -> float:
    """Power of the primary test with ``n`` seeds per level at true ``effect`` (for a one-sided test, its
    size in the alternative's direction)."""
    if n < 2:
        return 0.0
    run_var = sd_seed ** 2 / n
    se = math.sqrt(run_var + cluster_var)
    delta, a = effect / se, alpha / family
    if abs(delta) > 37:  # scipy's noncentral t returns NaN this far out; the power is 1 to double precision
        return 1.0 if (delta > 0 or alternative == "two-sided") else 0.0
    # critical value: Banerjee's rule over the run part (n − 1 df) and the cluster part (``clusters`` − 1 df),
    # as the question-level test uses; df of the noncentral t: Satterthwaite over the two parts
    parts = [(run_var, n - 1)] + ([(cluster_var, max(clusters, 2) - 1)] if cluster_var > 0 else [])
    df = se ** 4 / sum(v ** 2 / d for v, d in parts if v > 0)
    two = alternative == "two-sided"
    q = 1 - (a / 2 if two else a)
    crit = math.sqrt(sum(v * stats.t.ppf(q, d) ** 2 for v, d in parts) / se ** 2)
    if two:
        delta = abs(delta)  # symmetric in the effect's sign
        far_tail = np.nan_to_num(stats.nct.cdf(-crit, df, delta))  # scipy gives NaN for some tiny values
        return float(stats.nct.sf(crit, df, delta) + far_tail)
    return float(stats.nct.sf(crit, df, delta))


def seeds_needed(effect: float, sd_seed: float, cluster_var: float = 0.0, target: float = 0.8, alpha: float = 0.05,
                 family: int = 1, alternative: str = "two-sided", max_seeds: int = 1000, clusters: int = 100) -> int | None:
    """Smallest seeds per level (>= 3) whose power reaches ``target``; None where no number of seeds does
    (the question-level variance alone caps the power: more questions are needed, not more seeds)."""
    if power(max_seeds, effect, sd_seed, cluster_var, alpha, family, alternative, clusters) < target:
        return None
    lo, hi = 2, max_seeds  # power(lo) < target <= power(hi); power rises with n for a fixed effect
    if power(3, effect, sd_seed, cluster_var, alpha, family, alternative, clusters) >= target:
        return 3
    lo = 3
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if power(mid, effect, sd_seed, cluster_var, alpha, family, alternative, clusters) >= target:
            hi = mid
        else:
            lo = mid
    return hi


def minimum_detectable_effect(n: int, sd_seed: float, cluster_var: float = 0.0, target: float = 0.8,
                              alpha: float = 0.05, family: int = 1, alternative: str = "two-sided",
                              clusters: int = 100) -> float:
    """The effect the test detects with probability ``target`` at ``n`` seeds per level."""
    if n < 2 or not np.isfinite(sd_seed):
        return float("nan")
    se = math.sqrt(sd_seed ** 2 / n + cluster_var)
    if se == 0:
        return 0.0
    f = (lambda e: power(n, e, sd_seed, cluster_var, alpha, family, alternative, clusters) - target)
    return float(optimize.brentq(f, 0.0, 200 * se))


def components_from_row(se: float, run_var: float, cluster_var: float, n: int) -> tuple[float, float]:
    """(sd_seed, cluster_var) of a primary-table row (the run part's variance is sd_seed² / n)."""
    run_var = run_var if np.isfinite(run_var) else se ** 2
    return float(math.sqrt(max(run_var, 0.0) * n)), float(cluster_var if np.isfinite(cluster_var) else 0.0)


def plan_table(primary, target: float = 0.8, effect: float | None = None, alpha: float = 0.05, family: int | None = None):
    """Per primary row: sd_seed, cluster_var, the minimum detectable effect at the seeds present and, for
    ``effect`` (default: the row's own estimate), the seeds per level needed."""
    import pandas as pd

    k = family or max(int(primary.p.notna().sum()), 1)
    rows = []
    for _, r in primary.iterrows():
        n = int(r.n_min)
        sd, cv = components_from_row(r.se, r.run_var, r.cluster_var, n)
        e = abs(r.estimate) if effect is None else effect
        alt, q = r.alternative, int(r.clusters) if r.clusters else 100
        rows.append({"setting": r.setting, "group": r.group, "contrast": r.contrast, "seeds": n, "sd_seed": sd,
                     "cluster_var": cv, "family": k, "mde": minimum_detectable_effect(n, sd, cv, target, alpha, k, alt, q),
                     "effect": e, "seeds_needed": seeds_needed(e, sd, cv, target, alpha, k, alt, clusters=q) if e > 0 else None})
    return pd.DataFrame(rows)
