"""Calibration of the analysis' tests by simulation against known answers (docs/statistics.md).

Model of one simulated study: two conditions, ``n`` training runs each, a benchmark of ``CLUSTERS``
questions in ``LANGS`` languages (one pool per language, as in the monolingual setting). A query row's
value is

    0.5 + shift·[condition A] + question effect (sd .15, shared by its language versions and every run)
        + language-version effect (sd .1) + condition × question effect (``interaction``; 0 unless stated)
        + run shift (sd .01; a part ``seed_share`` of its variance shared by the runs with the same seed)
        + run × question effect (sd .05, shared by the question's language versions) + row noise (sd .1).

So query rows are clustered (language versions share effects) and runs vary as seeds do. Each scenario is
simulated once and both the default per-run test and the hierarchical bootstrap are measured on it.

Trials: a rate near .05 measured from T trials has binomial SE sqrt(.05 · .95 / T): .0049 for 2,000,
.0034 for 4,000, so the band [.03, .07] is 4 to 6 SEs wide on each side of .05. Welch's t with 3 runs a
side is conservative by construction (its size with equal variances is .0345: scipy, 400,000 draws), so
that scenario gets 20,000 trials (SE .0013): .0345 then sits 3.5 SEs above .03.
Print every rate with ``python -m tests.test_stats_calibration``.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pytest
from scipy import stats
from threadpoolctl import threadpool_limits

from hybrid_sweep.analysis.hierarchical import Cells, HierarchicalBootstrap
from hybrid_sweep.analysis.stats import MIN_PERM_RUNS, compare_runs, ols_slope, paired_test, sign_flip, welch

CLUSTERS, LANGS = 120, 3
RUN_SD, RUN_X_QUESTION_SD, ROW_SD = 0.01, 0.05, 0.1
BAND_REJECT, BAND_COVER = (0.03, 0.07), (0.93, 0.97)


@pytest.fixture(autouse=True, scope="module")
def one_blas_thread():
    """Many small matrix products: threads only contend (17x slower on a busy 2-core machine)."""
    with threadpool_limits(1):
        yield


def simulate(rng, trials: int, n: int, shift: float = 0.0, seed_share: float = 0.0, interaction: float = 0.0):
    """(trials, 2 conditions, n runs, clusters, languages) query values; condition 0 is A."""
    q, langs = CLUSTERS, LANGS

    def normal(sd, shape):
        return (sd * rng.standard_normal(shape, dtype=np.float32)).astype(np.float32)

    y = 0.5 + normal(0.15, (trials, 1, 1, q, 1)) + normal(0.1, (trials, 1, 1, q, langs))
    if interaction:
        y = y + normal(interaction, (trials, 2, 1, q, 1))
    y = y + normal(RUN_SD * np.sqrt(seed_share), (trials, 1, n, 1, 1))
    y = y + normal(RUN_SD * np.sqrt(1 - seed_share), (trials, 2, n, 1, 1))
    y = y + normal(RUN_X_QUESTION_SD, (trials, 2, n, q, 1)) + normal(ROW_SD, (trials, 2, n, q, langs))
    y[:, 0] += shift
    return y


def run_values(y):
    """Per-run macro average (mean over pools of the pool mean; pools are equal-sized here)."""
    return y.mean(axis=(-2, -1), dtype=np.float64)


def hierarchical(y, paired: bool, n_boot: int = 400, chunk: int = 100) -> dict:
    """The hierarchical bootstrap on every trial of ``y`` (seeds 0..n-1 in both conditions when paired),
    batched: the trials of a chunk share one draw of bootstrap weights, and their data are independent."""
    n = y.shape[2]
    seeds = tuple(range(n)) if paired else None
    ones = np.ones(y.shape[2:])
    parts = []
    for i, start in enumerate(range(0, len(y), chunk)):
        cells = {"A": Cells(y[start:start + chunk, 0], ones, seeds), "B": Cells(y[start:start + chunk, 1], ones, seeds)}
        parts.append(HierarchicalBootstrap(cells, n_boot=n_boot, seed=i).compare("A", "B"))
    return {k: np.concatenate([np.atleast_1d(r[k]) for r in parts]) for k in ("diff", "lo", "hi", "p")}


def default_test(x, paired: bool) -> dict:
    """The per-run test ``compare_runs`` picks for this design, on a batch of trials (``x``: trials, 2, n):
    Welch unpaired; on seed differences the paired t, the sign-flip from ``MIN_PERM_RUNS`` pairs on."""
    if not paired:
        return welch(x[:, 0], x[:, 1])
    return paired_test(x[:, 0] - x[:, 1])


def rates(res: dict, truth: float = 0.0) -> dict:
    p, lo, hi = (np.asarray(res[k], dtype=float) for k in ("p", "lo", "hi"))
    return {"reject": float((p < 0.05).mean()), "cover": float(((lo <= truth) & (truth <= hi)).mean()), "trials": len(p)}


@lru_cache(maxsize=None)
def scenario(n: int, paired: bool, trials: int, seed: int, interaction: float = 0.0) -> dict:
    """Rates of the default per-run test and of the hierarchical bootstrap under the null (shift 0)."""
    rng = np.random.default_rng(seed)
    per_run, boot = [], []
    for _ in range(trials // 1000):  # chunks keep memory small
        y = simulate(rng, 1000, n, seed_share=0.5 if paired else 0.0, interaction=interaction)
        per_run.append(default_test(run_values(y), paired))
        boot.append(hierarchical(y, paired) if n <= 5 else {})
    join = (lambda parts: {k: np.concatenate([np.atleast_1d(r[k]) for r in parts]) for k in ("p", "lo", "hi")})
    return {"default": rates(join(per_run)), "hierarchical": rates(join(boot)) if boot[0] else None}


SCENARIOS = {  # name: (runs a side, seeds paired, trials, seed)
    "3 unpaired": (3, False, 20000, 3), "5 unpaired": (5, False, 4000, 5),
    "3 paired": (3, True, 4000, 13), "5 paired": (5, True, 4000, 15), "8 paired": (8, True, 2000, 18),
}


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_default_per_run_test_is_calibrated_under_a_null_with_seed_variance(name):
    r = scenario(*SCENARIOS[name])["default"]
    assert BAND_REJECT[0] <= r["reject"] <= BAND_REJECT[1], r
    assert BAND_COVER[0] <= r["cover"] <= BAND_COVER[1], r


@pytest.mark.parametrize("name", sorted(n for n in SCENARIOS if not n.startswith("8")))
def test_hierarchical_bootstrap_is_calibrated_under_a_null_with_seed_variance_and_clustered_queries(name):
    r = scenario(*SCENARIOS[name])["hierarchical"]
    assert BAND_REJECT[0] <= r["reject"] <= BAND_REJECT[1], r
    assert BAND_COVER[0] <= r["cover"] <= BAND_COVER[1], r


def test_hierarchical_bootstrap_generalises_over_questions():
    """With condition × question effects (sd .05, mean 0 over the population of questions) the difference on
    the benchmark's own questions is not 0: tests conditional on them (the per-run tests) reject too often
    for the population question; the hierarchical bootstrap, which resamples questions, does not."""
    r = scenario(5, True, 2000, 25, interaction=0.05)
    assert BAND_REJECT[0] <= r["hierarchical"]["reject"] <= BAND_REJECT[1], r
    assert r["default"]["reject"] > BAND_REJECT[1], r


def expected_paired_power(n: int, shift: float, seed_share: float) -> float:
    """Power of the two-sided paired t at .05 in the simulation model (noncentral t)."""
    var_run = (RUN_SD ** 2 * (1 - seed_share) + (RUN_X_QUESTION_SD ** 2 + ROW_SD ** 2 / LANGS) / CLUSTERS)
    delta = shift / np.sqrt(2 * var_run / n)
    crit = stats.t.ppf(0.975, n - 1)
    return float(stats.nct.sf(crit, n - 1, delta) + stats.nct.cdf(-crit, n - 1, delta))


def test_known_shift_is_recovered_with_the_expected_power():
    rng = np.random.default_rng(30)
    n, shift, trials = 5, 0.02, 600
    y = simulate(rng, trials, n, shift=shift, seed_share=0.5)
    x = run_values(y)
    per_run = [compare_runs(x[t, 0], x[t, 1], range(n), range(n)) for t in range(trials)]
    diffs = np.array([r["diff"] for r in per_run])
    assert abs(diffs.mean() - shift) < 4 * diffs.std(ddof=1) / np.sqrt(trials)  # unbiased
    assert {r["test"] for r in per_run} == {"paired t on per-seed differences"}
    power = np.mean([r["p"] < 0.05 for r in per_run])
    expected = expected_paired_power(n, shift, 0.5)
    assert 0.5 < expected < 0.95 and abs(power - expected) < 4 * np.sqrt(expected * (1 - expected) / trials)
    boot = hierarchical(y, paired=True)
    assert np.allclose(boot["diff"], diffs)  # the same estimate as the per-run test
    assert rates(boot, truth=shift)["cover"] > 0.9
    assert np.mean(boot["p"] < 0.05) > expected - 0.1  # barely less power: its cluster part is small here


def holm_first_step_power(n: int, effect: float = 1.0, family: int = 8, trials: int = 4000, seed: int = 60) -> float:
    """Power of ``paired_test`` (the test ``compare_runs`` picks) to pass Holm's first threshold .05 / K with
    n seed pairs, per-seed differences ~ N(effect, 1)."""
    d = np.random.default_rng(seed + n).normal(effect, 1.0, (trials, n))
    return float((np.asarray(paired_test(d)["p"]) <= 0.05 / family).mean())


def test_power_never_drops_as_seeds_grow():
    """Issue 19: with the sign-flip from 8 pairs, power at 8 seeds was 0 under Holm over 8 tests (its smallest
    p, 2 / 2**8 = .0078, is above .05 / 8). Power at a fixed effect must not drop from 3 to 12 seeds (nor
    where the sign-flip takes over, ``MIN_PERM_RUNS``), up to Monte Carlo error (4,000 trials a point: SE
    <= .008; tolerance .02)."""
    power = [holm_first_step_power(n) for n in range(3, 13)]
    assert all(b >= a - 0.02 for a, b in zip(power, power[1:])), power
    assert power[8 - 3] > 0.2 and power[-1] > 0.5, power  # 8 seeds: no dead zone
    switch = [holm_first_step_power(n, effect=0.5, trials=1000) for n in (MIN_PERM_RUNS - 1, MIN_PERM_RUNS)]
    assert switch[1] >= switch[0] - 0.04, switch  # the t at 15 pairs vs the exact sign-flip at 16
    with_old_rule = float((np.asarray(sign_flip(np.random.default_rng(68).normal(1.0, 1.0, (500, 8)))["p"]) <= 0.05 / 8).mean())
    assert with_old_rule == 0.0  # the dead zone this replaces


def test_slope_ci_covers_the_true_slope():
    """metric = a + b·log2(axis) + run noise, 3 runs at each of 6 axis values; 4,000 trials (SE .0034)."""
    rng = np.random.default_rng(40)
    x = np.repeat([1, 2, 4, 8, 16, 32], 3)
    sd = np.sqrt(RUN_SD ** 2 + (RUN_X_QUESTION_SD ** 2 + ROW_SD ** 2 / LANGS) / CLUSTERS)
    y = 0.3 + 0.02 * np.log2(x) + rng.normal(0, sd, (4000, len(x)))
    fits = [ols_slope(x, row) for row in y]
    assert BAND_COVER[0] <= np.mean([f["lo"] <= 0.02 <= f["hi"] for f in fits]) <= BAND_COVER[1]
    assert abs(np.mean([f["slope"] for f in fits]) - 0.02) < 0.001
    ratios = np.repeat([0.0, 0.25, 0.5, 0.75, 1.0], 3)  # a ratio axis is fitted linearly; 1,500 trials (SE .0056)
    z = 0.4 - 0.05 * ratios + rng.normal(0, sd, (1500, len(ratios)))
    lin = [ols_slope(ratios, row, log=False) for row in z]
    assert BAND_COVER[0] <= np.mean([f["lo"] <= -0.05 <= f["hi"] for f in lin]) <= BAND_COVER[1]


def old_query_level_rejection(n: int = 3, trials: int = 1000, seed: int = 50) -> float:
    """The issue's contrast: the former test, over query rows of seed-averaged values (a sign-flip test;
    with 800 rows its p is that of the one-sample t used here), treats rows as the replicates."""
    y = simulate(np.random.default_rng(seed), trials, n)
    d = (y[:, 0].mean(axis=1) - y[:, 1].mean(axis=1)).reshape(trials, -1)
    return float((stats.ttest_1samp(d, 0.0, axis=1).pvalue < 0.05).mean())


def test_the_former_query_level_test_was_anti_conservative():
    assert old_query_level_rejection() > 0.3


if __name__ == "__main__":
    threadpool_limits(1)
    print("scenario (runs a side, seeds) | trials | test | rejection at .05 | 95 % CI coverage")
    for name, args in SCENARIOS.items():
        r = scenario(*args)
        test = "Welch t" if "unpaired" in name else "paired t"
        print(f"{name} | {args[2]} | {test} | {r['default']['reject']:.4f} | {r['default']['cover']:.4f}")
        if r["hierarchical"]:
            print(f"{name} | {args[2]} | hierarchical bootstrap | {r['hierarchical']['reject']:.4f} | "
                  f"{r['hierarchical']['cover']:.4f}")
    r = scenario(5, True, 2000, 25, interaction=0.05)
    for k in ("default", "hierarchical"):
        print(f"5 paired, condition x question sd .05 | 2000 | {k} | {r[k]['reject']:.4f} | {r[k]['cover']:.4f}")
    print(f"3 unpaired | 1000 | former sign-flip over query rows | {old_query_level_rejection():.4f} | -")
