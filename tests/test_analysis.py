"""Analysis: the statistics against references, and the report of a real small sweep."""

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from hybrid_sweep.analysis.stats import log_slope, mean_ci, paired_randomization, seed_query_bootstrap
from tests.conftest import ROOT


def test_mean_ci_matches_scipy():
    x = [0.61, 0.64, 0.58, 0.66]
    m, half, n = mean_ci(x)
    lo, hi = stats.t.interval(0.95, len(x) - 1, loc=np.mean(x), scale=stats.sem(x))
    assert (m, n) == (pytest.approx(np.mean(x)), 4) and half == pytest.approx((hi - lo) / 2)
    assert np.isnan(mean_ci([0.5])[1])


def test_log_slope_recovers_a_known_trend():
    rng = np.random.default_rng(0)
    x = np.repeat([1, 2, 4, 8, 16, 32], 3)
    y = 0.2 + 0.05 * np.log2(x) + rng.normal(0, 0.005, len(x))
    fit = log_slope(x, y)
    assert fit["lo"] < fit["slope"] < fit["hi"] and fit["hi"] - fit["lo"] < 0.01
    assert fit["slope"] == pytest.approx(0.05, abs=0.005)
    lin = log_slope([0, 0.25, 0.5, 1.0], [1, 1.5, 2, 3], log=False)
    assert lin["slope"] == pytest.approx(2.0)


def test_paired_randomization_detects_shift_and_not_noise():
    rng = np.random.default_rng(1)
    a = rng.random(400)
    shifted = paired_randomization(a + 0.05 + rng.normal(0, 0.05, 400), a)
    assert shifted["p_value"] < 0.001 and shifted["diff"] == pytest.approx(0.05, abs=0.01)
    null = [paired_randomization(a + rng.normal(0, 0.05, 400), a, n_perm=500, seed=s)["p_value"] for s in range(40)]
    assert 0.2 < np.mean(null) < 0.8  # roughly uniform under no effect


def test_seed_query_bootstrap_carries_seed_variance():
    rng = np.random.default_rng(2)
    q = rng.random(500)
    # one seed each, a real shift: the interval matches the t interval over queries and excludes 0
    d = 0.05 + rng.normal(0, 0.05, 500)
    one = seed_query_bootstrap([q + d], [q])
    lo, hi = stats.t.interval(0.95, 499, loc=d.mean(), scale=stats.sem(d))
    assert one["diff"] == pytest.approx(d.mean()) and one["p_boot"] < 0.01
    assert one["lo"] == pytest.approx(lo, abs=0.002) and one["hi"] == pytest.approx(hi, abs=0.002)
    # seeds that disagree: every query is 0.01 better on the seed average (a sign-flip test over queries
    # calls that certain) but seed-to-seed spread is ±0.1, so the seed-aware interval straddles 0
    a = np.stack([q + 0.1, q - 0.1, q + 0.03])
    b = np.stack([q + 0.05, q - 0.05, q])
    flip = paired_randomization(a.mean(axis=0), b.mean(axis=0))
    both = seed_query_bootstrap(a, b)
    assert flip["p_value"] < 0.001
    assert both["lo"] < 0 < both["hi"] and both["p_boot"] > 0.2


def test_report_of_a_small_sweep(tmp_path):
    cmd = [sys.executable, "-m", "hybrid_sweep", "-m", "sampler.n_pairs=1,30", "train.seed=0,1", "train.max_steps=4",
           "train.batch_size=8", "train.eval_every=0", "encoder.progress=false", "evals.synthetic.subset.articles=2",
           f"results_root={tmp_path}"]
    res = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, (res.stdout + res.stderr)[-3000:]
    out = tmp_path / "analysis"
    report = (out / "report.md").read_text()
    assert "Table 1: mAP" in report and "scaling_synthetic-test_n_pairs_map.png" in report
    for name in ("table1_map.csv", "table1_map.tex", "table2_rank_distance.csv", "fits.csv", "heatmap_synthetic-test.png",
                 "heatmap_synthetic-test.svg", "scaling_synthetic-test_n_pairs_map.svg"):
        assert (out / name).exists(), name
    table = pd.read_csv(out / "table1_map.csv")
    assert set(table.n) == {2} and table.ci.notna().all()  # two seeds per condition -> an interval
    tests = pd.read_csv(out / "paired_tests.csv")
    assert set(tests.seeds_A) == {2} and (tests.lo <= tests["diff"]).all() and (tests["diff"] <= tests.hi).all()
    fits = pd.read_csv(out / "fits.csv")
    assert set(fits.axis) == {"n_pairs"} and set(fits.setting) == {"mono", "cross", "multi"}


def test_analyze_cli_errors(tmp_path):
    res = subprocess.run([sys.executable, "-m", "hybrid_sweep.analyze", str(tmp_path)], cwd=ROOT,
                         capture_output=True, text=True)
    assert res.returncode == 2 and "no results.parquet" in res.stderr


def test_runs_differing_only_off_the_command_line_are_not_pooled_as_seeds():
    """Two generations of the same runs (a config key added by a newer version) share axes, overrides and
    seeds; collect keeps them apart as conditions instead of counting six seeds where there are three."""
    from hybrid_sweep.collect import separate_hidden_differences

    rows, configs = [], {}
    for gen, extra in (("old", {}), ("new", {"encoder.tiny.vocab_from": "all_languages"})):
        for seed in (0, 1, 2):
            rid = f"{gen}{seed}"
            rows.append({"run_id": rid, "seed": seed, "n_pairs": 30, "variant": "sampler.n_pairs=30"})
            configs[rid] = {"train.seed": seed, "sampler.n_pairs": 30, **extra}
    rows.append({"run_id": "other", "seed": 0, "n_pairs": 1, "variant": "sampler.n_pairs=1"})
    configs["other"] = {"train.seed": 0, "sampler.n_pairs": 1}
    assert separate_hidden_differences(rows, configs) == ["encoder.tiny.vocab_from"]
    variants = {r["run_id"]: r["variant"] for r in rows}
    assert variants["old0"] == "sampler.n_pairs=30 encoder.tiny.vocab_from=<absent>"
    assert variants["new2"] == "sampler.n_pairs=30 encoder.tiny.vocab_from=all_languages"
    assert variants["other"] == "sampler.n_pairs=1"  # nothing to separate: untouched
