"""Hierarchical bootstrap for differences that must generalise over questions as well as over runs.

A condition's runs are resampled within the condition, and question clusters — a parallel group id with
all its language versions, and in the cross setting every (query language, candidate language) row of the
question — are resampled once per replicate and shared by every run of every condition, so the pairing of
conditions by question is kept. The statistic of a replicate is the runs' macro average (mean over pools
of each pool's mean), exactly as in results.parquet.

Calibration (docs/statistics.md; tests/test_stats_calibration.py):
- runs: ``n − 1`` of ``n`` runs are drawn with replacement (the rescaling bootstrap of Rao & Wu with
  m = n − 1), whose variance of the mean is s²/n exactly, not the (n − 1)/n of it a plain bootstrap gives;
- clusters: their bootstrap variance also contains the run × cluster noise that the run level already
  counts; that part is estimated from the run × cluster interaction mean square and subtracted;
- the interval and p are t-based, not bootstrap percentiles (which with 3 runs are far too narrow): the run
  parts have Welch–Satterthwaite df (n_A − 1, n_B − 1, or n − 1 for seed pairs), the cluster part
  clusters − 1, and the two combine by Banerjee's conservative rule (``banerjee_quantile``).

Hand-written because no library resamples two crossed levels; numpy and scipy do the rest.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import special

from hybrid_sweep.analysis.stats import MIN_RUNS, NAN


@dataclass
class Cells:
    """One condition's query-level values summed per (run, cluster, pool), with row counts; ``seeds`` names
    each run's seed (None where unknown: its runs are then never paired)."""
    sums: np.ndarray  # (runs, clusters, pools), optionally after leading batch axes
    counts: np.ndarray  # the same shape, or one that broadcasts to it
    seeds: tuple | None = None


def cells_from_frame(frame: pd.DataFrame, value: str, condition: str = "condition", run: str = "run_id",
                     cluster: str = "group", pool=("query_lang", "doc_lang"), seed: str | None = "seed") -> dict[str, Cells]:
    """Query rows of one benchmark and setting -> ``Cells`` per condition, on a cluster and pool index
    shared by all conditions."""
    f = frame[np.isfinite(frame[value].to_numpy(dtype=float))]
    q_code, q_index = pd.factorize(f[cluster].astype(str))
    p_code, p_index = pd.factorize(pd.MultiIndex.from_frame(f[list(pool)]))
    nq, npool = len(q_index), len(p_index)
    out = {}
    for cond, idx in f.groupby(condition, sort=True).indices.items():
        r_code, r_index = pd.factorize(f[run].to_numpy()[idx])
        flat = (r_code * nq + q_code[idx]) * npool + p_code[idx]
        size = len(r_index) * nq * npool
        sums = np.bincount(flat, weights=f[value].to_numpy(dtype=float)[idx], minlength=size)
        counts = np.bincount(flat, minlength=size).astype(float)
        seeds = None
        if seed and seed in f:
            by_run = f.iloc[idx].groupby(run, sort=False)[seed].first()
            seeds = tuple(by_run.loc[list(r_index)])
        shape = (len(r_index), nq, npool)
        out[cond] = Cells(sums.reshape(shape), counts.reshape(shape), seeds)
    return out


def resample_counts(rng: np.random.Generator, n_boot: int, n: int, draws: int) -> np.ndarray:
    """(n_boot, n): how often each of n units is drawn in each replicate of ``draws`` draws with
    replacement (a multinomial, via one bincount: much faster than per-row multinomial calls)."""
    idx = rng.integers(0, n, size=(n_boot, draws)) + n * np.arange(n_boot)[:, None]
    return np.bincount(idx.ravel(), minlength=n_boot * n).reshape(n_boot, n).astype(float)


def all_resamples(n: int, draws: int) -> np.ndarray:
    """Every ordered draw of ``draws`` of n units with replacement, as counts (n**draws, n): the exact
    ("ideal") bootstrap distribution, used at the run level where it is small (n = 3: 9; n = 5: 625)."""
    idx = np.array(list(itertools.product(range(n), repeat=draws))).reshape(-1, draws)
    return np.stack([(idx == i).sum(axis=1) for i in range(n)], axis=1).astype(float)


def _macro(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """Mean over the last axis (pools) of num / den, ignoring empty pools."""
    filled = den > 0
    ratio = np.divide(num, den, out=np.zeros(np.broadcast_shapes(num.shape, den.shape)), where=filled)
    with np.errstate(invalid="ignore", divide="ignore"):
        return ratio.sum(axis=-1) / filled.sum(axis=-1)


def banerjee_quantile(parts, alpha):
    """Two-sided critical value for a sum of independent variance estimates ``parts`` = [(v_i, df_i)]:
    sqrt(sum v_i t²(1 − alpha/2, df_i) / sum v_i) (Banerjee 1961; conservative for normal components).
    Elementwise over arrays."""
    total = sum(v for v, _ in parts)
    return np.sqrt(sum(v * special.stdtrit(d, 1 - np.asarray(alpha) / 2) ** 2 for v, d in parts) / total)


def banerjee_p(parts, t, steps: int = 60):
    """The alpha at which ``banerjee_quantile`` equals |t|: the two-sided p of that interval (bisection on
    log alpha, elementwise; the quantile falls as alpha grows)."""
    t = np.abs(np.asarray(t, dtype=float))
    lo, hi = np.full(t.shape, np.log(1e-15)), np.zeros(t.shape)
    for _ in range(steps):
        mid = (lo + hi) / 2
        above = banerjee_quantile(parts, np.exp(mid)) > t  # alpha too small
        lo, hi = np.where(above, mid, lo), np.where(above, hi, mid)
    return np.exp((lo + hi) / 2)


def condition_replicates(sums: np.ndarray, counts: np.ndarray, weights: np.ndarray) -> dict:
    """One condition's run values (..., n), cluster replicates (..., B) with its runs fixed, and run ×
    cluster interaction mean square (...). ``sums``/``counts``: (..., n, Q, P); ``weights``: (B, Q)."""
    n, q, p = sums.shape[-3:]
    lead = sums.shape[:-3]
    sums = np.asarray(sums, dtype=float)
    counts = np.broadcast_to(np.asarray(counts, dtype=float), sums.shape)
    runs = _macro(sums.sum(axis=-2), counts.sum(axis=-2))

    def resampled(a):  # (..., m, Q, P) -> (..., B, m, P): one matrix product over every batch, run and pool
        cols = np.moveaxis(a, -2, 0)
        return np.moveaxis((weights @ cols.reshape(q, -1)).reshape(-1, *cols.shape[1:]), 0, -3)

    if np.all(counts == counts[..., :1, :, :]):  # the usual case, every run saw the same queries: the mean over
        # runs of their macro averages is the macro average of the runs' mean sums (n times less work)
        reps = _macro(resampled(sums.mean(axis=-3, keepdims=True)), resampled(counts[..., :1, :, :]))[..., 0]
    else:
        reps = _macro(resampled(sums), resampled(counts)).mean(axis=-1)
    # each run's value as a mean over clusters of per-cluster contributions z (its linearisation); the
    # run x cluster interaction mean square of z is the noise both levels of the bootstrap count
    pool_n = counts.sum(axis=-2, keepdims=True)
    used = np.maximum((pool_n > 0).sum(axis=-1), 1)
    z = q * np.where(pool_n > 0, sums / np.where(pool_n > 0, pool_n, 1), 0).sum(axis=-1) / used
    resid = z - z.mean(axis=-1, keepdims=True) - z.mean(axis=-2, keepdims=True) + z.mean(axis=(-2, -1), keepdims=True)
    inter = (resid ** 2).sum(axis=(-2, -1)) / ((n - 1) * (q - 1)) if n > 1 and q > 1 else np.zeros(lead)
    return {"runs": runs, "cluster_reps": reps, "interaction": inter}


class HierarchicalBootstrap:
    """Replicates of every condition, computed once; ``compare(a, b)`` pairs two of them. Runs with the same
    seeds in both conditions are resampled as pairs (one draw of seeds for both), as the paired t does.
    Arrays may carry leading batch axes (independent studies, as in the calibration simulation): the
    results are then arrays over them."""

    def __init__(self, cells: dict[str, Cells], n_boot: int = 1000, seed: int = 0):
        n_clusters = {c.sums.shape[-2] for c in cells.values()}
        if len(n_clusters) != 1:
            raise ValueError("conditions must share one cluster index (build them with cells_from_frame)")
        self.n_clusters, self.n_boot = n_clusters.pop(), n_boot
        self.rng = np.random.default_rng(seed)
        weights = resample_counts(self.rng, n_boot, self.n_clusters, self.n_clusters)  # shared by all runs
        self.conditions = {name: {**condition_replicates(c.sums, c.counts, weights), "seeds": c.seeds}
                           for name, c in cells.items()}
        self._run_draws: dict[int, np.ndarray] = {}

    def _run_var(self, values: np.ndarray) -> np.ndarray:
        """Bootstrap variance of the mean of ``values`` (..., n) drawing n − 1 of the n runs: s² / n, where a
        plain bootstrap gives (n − 1) / n of it. Every resample is enumerated while there are few (exact),
        else ``n_boot`` random ones."""
        n = values.shape[-1]
        if n not in self._run_draws:
            exact = n ** (n - 1) <= 4 * self.n_boot
            draws = all_resamples(n, n - 1) if exact else resample_counts(self.rng, self.n_boot, n, n - 1)
            self._run_draws[n] = (draws / (n - 1), 0 if exact else 1)
        draws, ddof = self._run_draws[n]
        return np.var(values @ draws.T, axis=-1, ddof=ddof)

    def compare(self, a: str, b: str, level: float = 0.95, min_runs: int = MIN_RUNS, paired: bool | None = None) -> dict:
        """Difference of the conditions' mean run values with a CI and two-sided p whose variance is the
        bootstrap's: runs (or seed pairs) and question clusters, minus the run x cluster noise both count.
        The run parts combine with Welch–Satterthwaite df (as Welch's t does); the run and cluster parts
        combine by Banerjee's rule (critical value sqrt(sum v_i t_i² / sum v_i), each t_i at its own df),
        which stays conservative where Satterthwaite's df is liberal: few runs and a large cluster part."""
        return self.contrast({a: 1.0, b: -1.0}, level, min_runs, paired)

    def contrast(self, weights: dict[str, float], level: float = 0.95, min_runs: int = MIN_RUNS,
                 paired: bool | None = None, alternative: str = "two-sided") -> dict:
        """Linear contrast sum_k w_k · mean_k of conditions' mean run values (a difference: {a: 1, b: -1};
        an OLS slope on per-run values: w_k = n_k (x_k − x̄) / Sxx), with the variance of ``compare``:
        run parts (one per condition, or one over seeds when every condition ran the same seeds, paired
        as in the paired t) with Welch–Satterthwaite df, plus the cluster part of the replicates' contrast
        less the run x cluster noise, combined by Banerjee's rule. ``alternative`` greater / less gives
        the one-sided p of the same t (the CI stays two-sided at ``level``). Key ``diff`` is the estimate."""
        names = [k for k, w in weights.items() if w != 0]
        conds, w = [self.conditions[k] for k in names], [float(weights[k]) for k in names]
        q = self.n_clusters
        xs = [c["runs"] for c in conds]
        ns = [x.shape[-1] for x in xs]
        est = sum(wi * x.mean(axis=-1) for wi, x in zip(w, xs))
        out = {"diff": est, "lo": NAN, "hi": NAN, "p": NAN, "df": NAN, "se": NAN, "clusters": q, "paired": False,
               "n_min": min(ns, default=0)}
        if not names or min(ns) < max(min_runs, 2):
            return _scalars(out)
        seeds = [c["seeds"] for c in conds]
        can_pair = all(s is not None and len(set(s)) == len(s) == len(seeds[0]) and set(s) == set(seeds[0])
                       and not pd.isna(list(s)).any() for s in seeds)
        if paired and not can_pair:
            raise ValueError("paired comparison needs the same seeds, each once, in both conditions")
        cluster = sum(wi * c["cluster_reps"] for wi, c in zip(w, conds))
        cluster_var = np.var(cluster, axis=-1, ddof=1)
        cluster_var = np.maximum(cluster_var - sum(wi ** 2 * c["interaction"] / (q * n) for wi, c, n in zip(w, conds, ns)), 0.0)
        if can_pair and paired is not False:
            ref = list(seeds[0])
            per_seed = sum(wi * x[..., [list(s).index(r) for r in ref]] for wi, x, s in zip(w, xs, seeds))
            parts = [(self._run_var(per_seed), ns[0] - 1)]
        else:
            parts = [(wi ** 2 * self._run_var(x), n - 1) for wi, x, n in zip(w, xs, ns)]
        run_var = sum(v for v, _ in parts)
        with np.errstate(invalid="ignore", divide="ignore"):
            run_df = run_var ** 2 / sum(v ** 2 / d for v, d in parts)  # Welch–Satterthwaite over the run level
            parts = [(run_var, run_df), (cluster_var, max(q - 1, 1))]
            var = run_var + cluster_var
            se = np.sqrt(var)
            half = banerjee_quantile(parts, 1 - level) * se
            p = banerjee_p(parts, est / se)
            df = var ** 2 / sum(v ** 2 / d for v, d in parts)  # reported only: Satterthwaite df of the total
        p = one_sided(p, est, alternative)
        bad = ~(run_var > 0)
        out.update(lo=np.where(bad, NAN, est - half), hi=np.where(bad, NAN, est + half), p=np.where(bad, NAN, p),
                   df=np.where(bad, NAN, df), se=se, paired=bool(can_pair and paired is not False),
                   run_var=run_var, cluster_var=cluster_var, n_min=min(ns))
        return _scalars(out)


def one_sided(p_two, estimate, alternative: str):
    """One-sided p from the two-sided p of a test with a symmetric null distribution: half of it when the
    estimate lies on the alternative's side, else 1 − half (elementwise); ``two-sided`` returns it as is."""
    if alternative == "two-sided":
        return p_two
    if alternative not in ("greater", "less"):
        raise ValueError(f"alternative must be two-sided, greater or less, not {alternative!r}")
    right_side = (np.asarray(estimate) > 0) if alternative == "greater" else (np.asarray(estimate) < 0)
    return np.where(right_side, np.asarray(p_two) / 2, 1 - np.asarray(p_two) / 2)


def _scalars(out: dict) -> dict:
    """0-d arrays (an unbatched comparison) as floats."""
    return {k: float(v) if isinstance(v, np.ndarray) and v.ndim == 0 else v for k, v in out.items()}
