"""Evaluator end to end: run and qrels files it writes give pytrec_eval the same numbers it reports."""

import numpy as np
import pandas as pd
import pytest
import pytrec_eval
import torch

from hybrid_sweep.data.synthetic import synthetic_benchmark
from hybrid_sweep.evaluation.evaluator import evaluate_embeddings
from hybrid_sweep.evaluation.trec_io import read_qrels, read_run


@pytest.fixture(scope="module")
def small_bench(synthetic_cfg):
    cfg = {**synthetic_cfg, "articles": {"train": 1, "dev": 1, "test": 3}}
    return synthetic_benchmark(cfg, "test", ["qla", "qca", "qga"])


def _embeddings(bench, levels, seed=0):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(len(bench.all_questions()), 8, generator=g)
    c = torch.randn(len(bench.all_candidates()), 8, generator=g)
    if levels:  # coarse values -> many exactly tied scores
        q, c = torch.round(q * levels) / levels, torch.round(c * levels) / levels
        c[::3] = c[0]
    return q, c


@pytest.mark.parametrize("levels", [None, 1], ids=["random", "tie-heavy"])
def test_per_query_values_equal_pytrec_eval_on_written_files(small_bench, tmp_path, levels):
    q, c = _embeddings(small_bench, levels)
    out = evaluate_embeddings(small_bench, q, c, run_depth=None, output_dir=tmp_path,
                              write_runs=("mono", "cross", "multi"))
    pq = out.per_query
    n_files = 0
    for setting in ("mono", "cross", "multi"):
        for run_file in sorted((tmp_path / "runs" / small_bench.name / setting).glob("*.trec")):
            qrels = read_qrels(tmp_path / "qrels" / small_bench.name / setting / f"{run_file.stem}.qrels")
            ref = pytrec_eval.RelevanceEvaluator(qrels, {"map", "recip_rank"}).evaluate(read_run(run_file))
            ql, dl = run_file.stem.split("-")
            ours = pq[(pq.setting == setting) & (pq.query_lang == ql) & (pq.doc_lang == dl)].set_index("query_id")
            assert set(ours.index) == set(ref)
            for qid, m in ref.items():
                assert ours.loc[qid, "ap"] == pytest.approx(m["map"], abs=1e-12)
                assert ours.loc[qid, "rr"] == pytest.approx(m["recip_rank"], abs=1e-12)
            n_files += 1
    assert n_files == 3 + 6 + 3


def test_metrics_table_shape_and_macro_average(small_bench):
    q, c = _embeddings(small_bench, None)
    out = evaluate_embeddings(small_bench, q, c)
    m = out.metrics
    assert list(m.columns) == ["benchmark", "setting", "query_lang", "doc_lang", "metric", "value", "n_queries", "n_skipped", "depth"]
    assert not m.duplicated(["benchmark", "setting", "query_lang", "doc_lang", "metric"]).any()
    per_pool = m[m.query_lang != "avg"]
    avg = m[m.query_lang == "avg"].set_index(["setting", "metric"])
    for (setting, metric), grp in per_pool.groupby(["setting", "metric"]):
        assert avg.loc[(setting, metric), "value"] == pytest.approx(grp.value.mean())
        assert avg.loc[(setting, metric), "n_queries"] == grp.n_queries.sum()
    assert set(m[m.setting == "multi"].doc_lang) == {"all"}
    assert set(m[m.setting == "cross"].groupby(["query_lang", "doc_lang"]).size().index.get_level_values(0)) >= {"qla"}
    multi_only = m[m.metric.isin(["rank_distance", "same_lang@10"])]
    assert set(multi_only.setting) == {"multi"}


def test_rank_distance_and_same_language_share(small_bench):
    """Perfectly language-separated embeddings: all own-language candidates outrank all others."""
    langs = small_bench.langs
    lang_of_q = np.concatenate([[i] * len(d.questions) for i, d in enumerate(small_bench.languages.values())])
    q = torch.nn.functional.one_hot(torch.from_numpy(lang_of_q), len(langs)).float()
    c = torch.nn.functional.one_hot(torch.from_numpy(small_bench.candidate_langs()), len(langs)).float()
    out = evaluate_embeddings(small_bench, q, c, settings=("multi",))
    pq = out.per_query
    assert (pq["same_lang@10"] == 1.0).all()
    n_own = {lang: len(d.candidates) for lang, d in small_bench.languages.items()}
    # own-language answer ranks within the first n_own; others come after all own-language candidates
    assert (pq.rank_distance >= pq.query_lang.map(n_own) - pq.first_rank + 1).all()


def test_run_depth_limits_run_files(small_bench, tmp_path):
    q, c = _embeddings(small_bench, None)
    evaluate_embeddings(small_bench, q, c, run_depth=7, output_dir=tmp_path, write_runs=("mono",))
    run = pd.read_csv(tmp_path / "runs" / small_bench.name / "mono" / "qla-qla.trec", sep=" ", header=None)
    assert run.groupby(0).size().eq(7).all()
    assert run.groupby(0)[3].apply(lambda r: list(r) == list(range(1, 8))).all()
    assert not (tmp_path / "runs" / small_bench.name / "multi").exists()
    assert (tmp_path / "qrels" / small_bench.name / "multi" / "qla-all.qrels").exists()


def _drop_questions(bench, lang, keep):
    from dataclasses import replace

    from hybrid_sweep.data.benchmark import Benchmark

    langs = dict(bench.languages)
    data = langs[lang]
    langs[lang] = replace(data, questions=[q for q in data.questions if keep(q)])
    return Benchmark(bench.name, langs)


def test_cross_runs_with_a_fully_skipped_pool_write_no_run_and_finish(small_bench, tmp_path):
    """qga has no questions: every qla query is skipped in the qla->qga cross pool (issue: KeyError 'top')."""
    bench = _drop_questions(small_bench, "qga", lambda q: False)
    q, c = _embeddings(bench, None)
    out = evaluate_embeddings(bench, q, c, output_dir=tmp_path, write_runs=("mono", "cross", "multi"))
    runs = tmp_path / "runs" / bench.name / "cross"
    assert not (runs / "qla-qga.trec").exists() and (runs / "qla-qca.trec").exists()
    assert not (tmp_path / "runs" / bench.name / "mono" / "qga-qga.trec").exists()
    cross = out.metrics[(out.metrics.setting == "cross") & (out.metrics.query_lang != "avg")]
    assert "qga" not in set(cross.doc_lang) and "qga" not in set(cross.query_lang)
    assert (tmp_path / "qrels" / bench.name / "cross" / "qca-qla.qrels").exists()


def test_rank_distance_only_over_queries_with_two_or_more_relevant(small_bench):
    """Groups left with one language version (a subset) have rank distance 0 by construction: excluded, counted."""
    qla_groups = [q.group for q in small_bench.languages["qla"].questions]
    single = set(qla_groups[::3])  # these groups keep only their qla version
    bench = small_bench
    for lang in ("qca", "qga"):
        bench = _drop_questions(bench, lang, lambda q: q.group not in single)
    q, c = _embeddings(bench, None)
    out = evaluate_embeddings(bench, q, c, settings=("multi",))
    pq = out.per_query[out.per_query.query_lang == "qla"]
    is_single = pq.group.isin(single)
    assert is_single.sum() == len(single) > 0
    assert pq[is_single].rank_distance.isna().all() and pq[~is_single].rank_distance.notna().all()
    rows = out.metrics[out.metrics.query_lang == "qla"].set_index("metric")
    assert rows.loc["rank_distance", "value"] == pytest.approx(pq[~is_single].rank_distance.mean())
    assert rows.loc["rank_distance", "n_queries"] == (~is_single).sum()
    assert rows.loc["rank_distance_excluded", "value"] == len(single)
    avg = out.metrics[out.metrics.query_lang == "avg"].set_index("metric")
    assert avg.loc["rank_distance_excluded", "value"] == len(single)  # counts are summed, not averaged
