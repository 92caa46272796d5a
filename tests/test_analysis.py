"""Analysis: the statistics against references, the report of a simulated results root with a known
answer, and the report of a real small sweep. Calibration by simulation: tests/test_stats_calibration.py."""

import itertools
import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import statsmodels.api as sm
from scipy import stats
from statsmodels.stats.multitest import multipletests

from hybrid_sweep.analysis.comparisons import planned_pairs
from hybrid_sweep.analysis.hierarchical import HierarchicalBootstrap, all_resamples, cells_from_frame
from hybrid_sweep.analysis.multiplicity import adjust
from hybrid_sweep.analysis.stats import compare_runs, mean_ci, ols_slope
from hybrid_sweep.analysis.tables import SCHEMA_KEY, axis_info, per_query_frame, varying_axes
from hybrid_sweep.errors import DataError
from tests.conftest import ROOT


def test_mean_ci_matches_scipy():
    x = [0.61, 0.64, 0.58, 0.66]
    m, half, n = mean_ci(x)
    lo, hi = stats.t.interval(0.95, len(x) - 1, loc=np.mean(x), scale=stats.sem(x))
    assert (m, n) == (pytest.approx(np.mean(x)), 4) and half == pytest.approx((hi - lo) / 2)
    assert np.isnan(mean_ci([0.5])[1])


def test_ols_slope_matches_statsmodels_and_recovers_a_known_trend():
    rng = np.random.default_rng(0)
    x = np.repeat([1, 2, 4, 8, 16, 32], 3)
    y = 0.2 + 0.05 * np.log2(x) + rng.normal(0, 0.005, len(x))
    fit = ols_slope(x, y)
    ref = sm.OLS(y, sm.add_constant(np.log2(x))).fit()
    assert fit["slope"] == pytest.approx(ref.params[1]) and fit["p"] == pytest.approx(ref.pvalues[1])
    assert (fit["lo"], fit["hi"]) == (pytest.approx(ref.conf_int()[1][0]), pytest.approx(ref.conf_int()[1][1]))
    assert fit["df"] == len(x) - 2 and fit["n_runs"] == 18 and fit["n_levels"] == 6
    assert fit["slope"] == pytest.approx(0.05, abs=0.005)
    assert ols_slope([0, 0.25, 0.5, 1.0], [1, 1.5, 2, 3], log=False)["slope"] == pytest.approx(2.0)
    assert np.isnan(ols_slope([4, 4, 4], [0.1, 0.2, 0.3])["slope"])  # one level: nothing to fit


def test_compare_runs_picks_welch_paired_or_sign_flip_and_matches_references():
    a, b = [0.61, 0.64, 0.58, 0.66], [0.55, 0.60, 0.57]
    welch = compare_runs(a, b)
    ref = stats.ttest_ind(a, b, equal_var=False)
    assert welch["test"] == "Welch t on per-run values" and welch["p"] == pytest.approx(ref.pvalue)
    assert welch["lo"] == pytest.approx(ref.confidence_interval().low) and welch["df"] == pytest.approx(ref.df)
    # the same seeds in a different order: paired by seed, not by position
    paired = compare_runs([0.61, 0.64, 0.58], [0.57, 0.55, 0.60], seeds_a=[0, 1, 2], seeds_b=[2, 0, 1])
    ref = stats.ttest_rel([0.61, 0.64, 0.58], [0.55, 0.60, 0.57])
    assert paired["test"] == "paired t on per-seed differences" and paired["p"] == pytest.approx(ref.pvalue)
    assert paired["df"] == 2
    assert compare_runs(a[:3], b, [0, 1, 2], [0, 1, 3])["test"].startswith("Welch")  # different seeds
    with pytest.raises(ValueError, match="same seeds"):
        compare_runs(a[:3], b, [0, 1, 2], [0, 1, 3], paired=True)
    # 8 seed pairs: still the paired t (the sign-flip's smallest p, 2 / 2**8, would cost power under Holm);
    # the sign-flip test itself (from MIN_PERM_RUNS pairs) against brute force over all 256 sign patterns
    rng = np.random.default_rng(1)
    x, y = rng.normal(0.5, 0.02, 8), rng.normal(0.49, 0.02, 8)
    assert compare_runs(x, y, range(8), range(8))["test"] == "paired t on per-seed differences"
    flip = compare_runs(x, y, range(8), range(8), min_perm_runs=8)
    d = x - y
    null = [abs(np.mean(np.array(s) * d)) for s in itertools.product([-1, 1], repeat=8)]
    assert flip["test"].startswith("sign-flip") and flip["p"] == pytest.approx(np.mean(np.array(null) >= abs(d.mean()) - 1e-12))
    few = compare_runs([0.6, 0.7], [0.5, 0.55, 0.52])
    assert few["test"].startswith("none (fewer than 3") and np.isnan(few["p"]) and few["diff"] == pytest.approx(0.65 - np.mean([0.5, 0.55, 0.52]))


def test_multiplicity_matches_statsmodels_and_skips_untested_rows():
    p = np.array([0.01, np.nan, 0.04, 0.03, 0.2])
    holm, size = adjust(p, "holm")
    assert size == 4 and np.isnan(holm[1])
    assert np.allclose(holm[[0, 2, 3, 4]], multipletests(p[[0, 2, 3, 4]], method="holm")[1])
    bh, _ = adjust(p, "fdr_bh")
    assert np.all(bh[[0, 2, 3, 4]] >= p[[0, 2, 3, 4]]) and np.all(holm[[0, 2, 3, 4]] >= bh[[0, 2, 3, 4]])


def _query_frame(rng, runs, groups=30, langs=("aa", "bb", "cc"), cross=False):
    """Query rows of several runs: every group in every language (and, for cross, every other doc lang),
    with a few groups missing in one language so pools differ in size."""
    rows = []
    for run, cond, seed in runs:
        for g in range(groups):
            for ql in langs:
                if g % 7 == 0 and ql == "cc":
                    continue
                for dl in ([d for d in langs if d != ql] if cross else [ql]):
                    rows.append((run, cond, seed, f"{ql}:{g}", str(g), ql, dl, rng.random()))
    return pd.DataFrame(rows, columns=["run_id", "condition", "seed", "query_id", "group", "query_lang", "doc_lang", "ap"])


def test_hierarchical_bootstrap_statistic_is_the_macro_average_and_clusters_are_questions():
    rng = np.random.default_rng(3)
    runs = [(f"r{c}{s}", c, s) for c in "AB" for s in range(3)]
    frame = _query_frame(rng, runs, cross=True)
    cells = cells_from_frame(frame, "ap")
    assert cells["A"].sums.shape == (3, 30, 6)  # runs x question clusters (all language rows) x pools
    boot = HierarchicalBootstrap(cells, n_boot=200)
    macro = frame.groupby(["run_id", "query_lang", "doc_lang"]).ap.mean().groupby("run_id").mean()
    assert np.allclose(boot.conditions["A"]["runs"], macro.loc[["rA0", "rA1", "rA2"]])
    res = boot.compare("A", "B")
    assert res["paired"] and res["diff"] == pytest.approx(macro.loc[["rA0", "rA1", "rA2"]].mean() - macro.loc[["rB0", "rB1", "rB2"]].mean())
    assert res["lo"] < res["diff"] < res["hi"] and 0 < res["p"] <= 1
    # run level: drawing n - 1 of n runs over every resample gives exactly s² / n
    x = np.array([0.1, 0.4, 0.35])
    assert boot._run_var(x) == pytest.approx(np.var(x, ddof=1) / 3)
    assert all_resamples(3, 2).shape == (9, 3) and (all_resamples(3, 2).sum(axis=1) == 2).all()


def test_planned_pairs_are_adjacent_steps_or_against_the_reference():
    conds = pd.DataFrame({"n_pairs": [1, 4, 2, 1, 2], "data": ["x", "x", "x", "y", "y"]})
    conds["condition"] = [f"n_pairs={n}, data={d}" for n, d in zip(conds.n_pairs, conds.data)]
    pairs = planned_pairs(conds, ["n_pairs", "data"], ["n_pairs"])
    assert {(a, b) for a, b, _ in pairs} == {("n_pairs=2, data=x", "n_pairs=1, data=x"),
                                             ("n_pairs=4, data=x", "n_pairs=2, data=x"),
                                             ("n_pairs=2, data=y", "n_pairs=1, data=y")}
    ref = planned_pairs(conds.assign(condition=conds.data + conds.n_pairs.astype(str)), ["data"], [])
    assert len(ref) == 4 and {b for _, b, _ in ref} == {"x1"}


def test_an_axis_spelled_twice_still_gives_adjacent_steps():
    """The training languages and their count move together: one axis, not a second factor."""
    conds = pd.DataFrame({"train_langs": ["de,en", "ar,de,en,zh", "ar,de,en,es,hi,vi,zh"], "n_train_langs": [2, 4, 7]})
    conds["condition"] = [f"n={n}" for n in conds.n_train_langs]
    pairs = planned_pairs(conds, ["train_langs", "n_train_langs"], ["n_train_langs"])
    assert [(a, b) for a, b, _ in pairs] == [("n=4", "n=2"), ("n=7", "n=4")]


def fake_root(root, conditions: dict, seeds=(0, 1, 2), shift_per_step=0.0, metadata=True, collected=True):
    """A results root as collect writes it, from simulated query values: ``conditions`` maps n_pairs ->
    number of seeds; the true mAP is 0.5 + shift_per_step · log2(n_pairs)."""
    rng = np.random.default_rng(7)
    results, runs, per_query = [], [], []
    for n_pairs, n_seeds in conditions.items():
        for seed in seeds[:n_seeds]:
            run_id = f"run{n_pairs}-{seed}"
            q = _query_frame(rng, [(run_id, None, seed)], groups=40)
            q["ap"] = np.clip(0.5 + shift_per_step * np.log2(n_pairs) + rng.normal(0, 0.01) + rng.normal(0, 0.1, len(q)), 0, 1)
            q = q.drop(columns=["condition", "seed"]).assign(benchmark="bench", setting="mono", rank_distance=np.nan)
            pools = q.groupby(["query_lang", "doc_lang"]).ap.agg(["mean", "size"]).reset_index()
            m = pd.DataFrame({"benchmark": "bench", "setting": "mono", "query_lang": list(pools.query_lang) + ["avg"],
                              "doc_lang": list(pools.doc_lang) + ["avg"], "metric": "map",
                              "value": list(pools["mean"]) + [pools["mean"].mean()],
                              "n_queries": list(pools["size"]) + [pools["size"].sum()], "n_skipped": 0})
            results.append(m.assign(run_id=run_id, sweep="s", variant=f"sampler.n_pairs={n_pairs}", n_pairs=n_pairs,
                                    encoder="tiny", seed=seed, trained=True))
            runs.append({"run_id": run_id, "status": "done", "error": None, "n_pairs": n_pairs, "seed": seed})
            per_query.append(q.assign(run_id=run_id))
            if not collected:
                (root / "runs" / run_id).mkdir(parents=True)
                q.drop(columns="run_id").to_parquet(root / "runs" / run_id / "per_query.parquet")
    table = pa.Table.from_pandas(pd.concat(results, ignore_index=True), preserve_index=False)
    if metadata:
        meta = {"schema_version": "1", "axes": ["encoder", "n_pairs", "seed"], "numeric_axes": ["n_pairs"],
                "log_axes": ["n_pairs"]}
        table = table.replace_schema_metadata({**(table.schema.metadata or {}), SCHEMA_KEY: json.dumps(meta).encode()})
    pq.write_table(table, root / "results.parquet")
    pd.DataFrame(runs).to_parquet(root / "runs.parquet")
    if collected:
        pd.concat(per_query, ignore_index=True).to_parquet(root / "per_query.parquet")
    return pd.read_parquet(root / "results.parquet")


def test_axes_come_from_schema_metadata_or_from_the_run_columns_that_vary(tmp_path):
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    results = fake_root(tmp_path / "a", {1: 3, 2: 3})
    info = axis_info(tmp_path / "a", results)
    assert (info.axes, info.numeric, info.log, info.source) == (["n_pairs"], ["n_pairs"], ["n_pairs"], "schema")
    plain = fake_root(tmp_path / "b", {1: 3, 2: 3}, metadata=False)
    info = axis_info(tmp_path / "b", plain)
    assert info.source == "inferred" and info.axes == ["n_pairs"]  # not seed, run_id, variant or value columns
    assert "seed" not in varying_axes(plain)


def test_per_query_rows_come_from_the_collected_table_only(tmp_path):
    """The analysis reads tables only: collect's per_query.parquet, never a run folder's files."""
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    results = fake_root(tmp_path / "a", {1: 3, 2: 3})
    frame, missing = per_query_frame(tmp_path / "a", results, ["n_pairs"])
    assert missing == [] and set(frame.run_id) == set(results.run_id) and {"group", "n_pairs", "seed"} <= set(frame.columns)
    results = fake_root(tmp_path / "b", {1: 3, 2: 3}, collected=False)  # per-run files only, no collected table
    frame_b, missing_b = per_query_frame(tmp_path / "b", results, ["n_pairs"])
    assert frame_b.empty and sorted(missing_b) == sorted(set(results.run_id))
    pd.DataFrame({"ap": [0.1]}).to_parquet(tmp_path / "b" / "per_query.parquet")
    with pytest.raises(DataError, match="per_query.parquet: no run_id column"):
        per_query_frame(tmp_path / "b", results, ["n_pairs"])


def test_analysis_does_not_import_the_run_store_or_collect():
    code = ("import sys, hybrid_sweep.analysis.report; "
            "print([m for m in sys.modules if m.startswith(('hybrid_sweep.runs', 'hybrid_sweep.collect', "
            "'hybrid_sweep.training', 'hybrid_sweep.encoders'))])")
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and res.stdout.strip() == "[]", res.stdout + res.stderr


def test_report_of_a_simulated_study_keeps_every_condition_and_corrects_for_multiplicity(tmp_path):
    from hybrid_sweep.analysis.report import analyze

    steps = {1: 3, 2: 3, 4: 3, 8: 3, 16: 3, 32: 3, 64: 3, 128: 3, 256: 3, 512: 2}  # ten conditions, one with 2 seeds
    fake_root(tmp_path, steps, shift_per_step=0.02)
    report = analyze(tmp_path).read_text()
    pairs = pd.read_csv(tmp_path / "analysis" / "paired_tests.csv")
    planned = pd.read_csv(tmp_path / "analysis" / "planned_tests.csv")
    assert len(pairs) == 45  # every pair of the ten conditions (no cap)
    assert len(planned) == 9 and set(planned.comparison) == {"adjacent n_pairs"}
    # one Holm family over every exploratory test the report shows (planned pairs counted once)
    assert planned.correction.str.startswith("Holm").all() and pairs.correction.str.startswith("Holm").all()
    assert pairs.correction.iloc[0].endswith("family of 37")  # 36 tested pairs (9 lack a p) + 1 slope
    tested = pairs.dropna(subset=["p"])
    assert (tested.p_adj >= tested.p - 1e-12).all() and (tested.p_q_adj >= tested.p_q - 1e-12).all()
    assert set(tested.test) == {"paired t on per-seed differences"}
    few = pairs[(pairs.n_A < 3) | (pairs.n_B < 3)]
    assert len(few) == 9 and few[["p", "lo", "p_q"]].isna().all().all()
    assert "fewer than 3 runs a side" in report and "Holm" in report and "exploratory" in report
    assert "No primary hypothesis is declared" in report
    # the known answer: 0.02 per doubling, recovered by the fit; a step of 8 doublings is detected
    fits = pd.read_csv(tmp_path / "analysis" / "fits.csv")
    fit = fits[(fits.metric == "map") & (fits.setting == "mono")].iloc[0]
    assert fit.lo < 0.02 < fit.hi and fit.fit == "log2" and fit.n_runs == 29
    far = pairs[(pairs.A == "n_pairs=256") & (pairs.B == "n_pairs=1")].iloc[0]
    assert far.p < 0.05 and far.p_adj >= far.p and far.lo_q < far["diff"] < far.hi_q and far.clusters == 40
    assert fit.p_adj < 0.05  # the slope survives the report-wide family of 37


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
    tests = pd.read_csv(out / "paired_tests.csv")  # two seeds a side: differences without a p-value, and a warning
    assert set(tests.n_A) == {2} and tests.p.isna().all() and tests["diff"].notna().all()
    assert set(tests.metric) == {"map", "rank_distance"} and "fewer than 3 runs a side" in report
    fits = pd.read_csv(out / "fits.csv")
    assert set(fits.axis) == {"n_pairs"} and set(fits.setting) == {"mono", "cross", "multi"}
    assert (fits.n_runs == 4).all() and (fits.df == 2).all() and fits.correction.str.startswith("Holm").all()


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
