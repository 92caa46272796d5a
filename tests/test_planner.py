"""Seeds planner (hybrid_sweep/analysis/planner.py, ``python -m hybrid_sweep.plan_seeds``) against simulation
of the same test: the power it predicts at the seeds it plans is what ``paired_test`` (the test
``compare_runs`` and the primary's run level use) achieves, within Monte Carlo error."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from hybrid_sweep.analysis.planner import minimum_detectable_effect, power, seeds_needed
from hybrid_sweep.analysis.stats import paired_test
from tests.conftest import ROOT
from tests.study_fixtures import fabricate, write_root


def simulated_power(n: int, effect: float, sd: float, family: int, trials: int = 4000, seed: int = 0,
                    alternative: str = "two-sided") -> float:
    d = np.random.default_rng(seed + n).normal(effect, sd, (trials, n))
    p = np.asarray(paired_test(d)["p"])
    if alternative == "greater":  # one-sided p of the same t
        p = np.where(d.mean(axis=1) > 0, p / 2, 1 - p / 2)
    return float((p <= 0.05 / family).mean())


@pytest.mark.parametrize("effect, sd, family, alternative", [(0.01, 0.008, 1, "two-sided"), (0.01, 0.008, 8, "two-sided"),
                                                             (0.006, 0.008, 1, "greater")])
def test_planned_seeds_reach_the_target_power_in_simulation(effect, sd, family, alternative):
    n = seeds_needed(effect, sd, target=0.8, family=family, alternative=alternative)
    assert n is not None and n >= 3
    trials = 4000  # SE of a power near .8: .0063
    at_n = simulated_power(n, effect, sd, family, trials, alternative=alternative)
    below = simulated_power(n - 1, effect, sd, family, trials, seed=1, alternative=alternative)
    se = np.sqrt(0.8 * 0.2 / trials)
    assert abs(at_n - power(n, effect, sd, 0.0, 0.05, family, alternative)) < 4 * se, (n, at_n)
    assert at_n >= 0.8 - 4 * se and (n == 3 or below < 0.8 + 4 * se), (n, at_n, below)


def test_minimum_detectable_effect_inverts_the_power():
    mde = minimum_detectable_effect(5, 0.008, family=8)
    assert power(5, mde, 0.008, family=8) == pytest.approx(0.8, abs=1e-6)
    assert seeds_needed(mde, 0.008, family=8) == 5
    assert minimum_detectable_effect(5, 0.008, family=8) > minimum_detectable_effect(10, 0.008, family=8)


def test_question_level_variance_caps_the_power():
    """The condition x question part does not shrink with seeds: past it no number of seeds suffices."""
    cluster_var = 2 * 0.05 ** 2 / 40  # two conditions, sd .05 over 40 questions
    assert seeds_needed(0.01, 0.008, cluster_var) is None
    assert seeds_needed(0.05, 0.008, cluster_var) is not None
    assert minimum_detectable_effect(1000, 0.0, cluster_var, clusters=40) > 2.7 * np.sqrt(cluster_var)


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "hybrid_sweep.plan_seeds", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)


def test_cli_from_stated_components_and_from_a_pilot_root(tmp_path):
    res = _cli("--sd-run", "0.008", "--effect", "0.01", "--family", "8")
    assert res.returncode == 0, res.stderr
    assert f"family 8): {seeds_needed(0.01, 0.008, family=8)}" in res.stdout and "minimum detectable effect with 3 seeds" in res.stdout
    results, per_query = fabricate(np.random.default_rng(9), {"hybrid": 0.05, "mono": 0.0, "cross": 0.0}, 3, axis="sampler")
    study = {"primary": {"axis": "sampler", "contrast": "pairs", "pairs": [["hybrid", "mono"], ["hybrid", "cross"]]}}
    write_root(tmp_path / "pilot", results, per_query, ["sampler"], study=study)
    res = _cli(str(tmp_path / "pilot"), "--effect", "0.05")
    assert res.returncode == 0, res.stderr
    assert "hybrid − mono" in res.stdout and "seeds_needed" in res.stdout and "mde" in res.stdout
    write_root(tmp_path / "undeclared", results, per_query, ["sampler"])
    for args, message in (([str(tmp_path / "undeclared")], "declares no primary hypothesis"),
                          ([str(tmp_path / "nothing")], "no results.parquet"), (["--effect", "0.1"], "--sd-run")):
        res = _cli(*args)
        assert res.returncode == 2 and message in res.stderr, res.stderr


def test_planner_matches_the_question_level_test_in_simulation():
    """With condition x question effects (sd .05, 120 questions) the question-level test's power at the
    planner's minimum detectable effect for 5 seeds is .8 (measured .821 over 1,000 studies; SE .013)."""
    from threadpoolctl import threadpool_limits

    from tests.test_stats_calibration import CLUSTERS, LANGS, ROW_SD, RUN_SD, RUN_X_QUESTION_SD, hierarchical, simulate

    inter, n = 0.05, 5
    sd_seed = np.sqrt(2 * (RUN_SD ** 2 * 0.5 + (RUN_X_QUESTION_SD ** 2 + ROW_SD ** 2 / LANGS) / CLUSTERS))
    cluster_var = 2 * inter ** 2 / CLUSTERS
    mde = minimum_detectable_effect(n, sd_seed, cluster_var, clusters=CLUSTERS)
    rng = np.random.default_rng(7 + n)
    with threadpool_limits(1):
        p = np.concatenate([hierarchical(simulate(rng, 500, n, shift=mde, seed_share=0.5, interaction=inter), paired=True)["p"]
                            for _ in range(2)])
    assert abs(np.mean(p < 0.05) - 0.8) < 4 * np.sqrt(0.8 * 0.2 / len(p)), np.mean(p < 0.05)
