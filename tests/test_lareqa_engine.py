"""The LAReQA pools go through the one evaluation engine: on real XQuAD-R pools, every row equals a
brute-force reference written here (full sort under trec_eval's tie rule: score descending, then
document id descending), rank distance and the same-language share included."""

import hashlib

import numpy as np
import pytest
import torch

from hybrid_sweep.data.benchmark import as_retrieval_task
from hybrid_sweep.data.lareqa import load_lareqa
from hybrid_sweep.data.retrieval_task import DocTable, QueryTable, RetrievalTask, TaskPool
from hybrid_sweep.evaluation.evaluator import POOL_METRICS, evaluate_embeddings
from hybrid_sweep.evaluation.task_evaluator import evaluate_task_embeddings

LANGS = ["en", "de", "zh"]


def _embed(texts, dim=16, levels=None):
    """A deterministic vector per text; ``levels`` rounds the values so that scores tie exactly."""
    out = np.stack([np.random.default_rng(int(hashlib.sha1(t.encode()).hexdigest()[:12], 16)).standard_normal(dim)
                    for t in texts]).astype(np.float32)
    if levels:
        out = np.round(out * levels) / levels
    return torch.from_numpy(out)


@pytest.fixture(scope="module")
def xquad_subset(data_root):
    return load_lareqa("xquad_r", data_root / "lareqa" / "xquad-r", LANGS).subset(5)


def _reference(bench, q_emb, c_emb, setting):
    """Per (query_lang, doc_lang): per-query AP, RR, first rank, rank distance, same-language share of the
    top 10, from a full sort of every pool."""
    qs, cs = bench.all_questions(), bench.all_candidates()
    lang_of = np.array([c.cid.split(":")[0] for c in cs])
    out = {}
    for pool in bench.pools(setting):
        ids = [cs[j].cid for j in pool.candidates]
        by_id = sorted(range(len(ids)), key=ids.__getitem__, reverse=True)  # id descending
        rows = []
        for qi, rel in zip(pool.queries, pool.relevant):
            scores = (q_emb[qi] @ c_emb[pool.candidates].T).numpy()
            order = sorted(by_id, key=lambda j: -scores[j])  # stable: ties keep id-descending order
            cand = pool.candidates[order]
            ranks = np.sort(np.flatnonzero(np.isin(cand, rel)) + 1)
            ap = np.mean(np.arange(1, len(ranks) + 1) / ranks)
            same = np.mean(lang_of[cand[:10]] == qs[qi].qid.split(":")[0])
            rows.append((ap, 1 / ranks[0], ranks[0], ranks[-1] - ranks[0] if len(ranks) > 1 else np.nan, same))
        out[(pool.query_lang, pool.doc_lang)] = np.array(rows, dtype=float).reshape(-1, 5)
    return out


@pytest.mark.parametrize("levels", [None, 2], ids=["random", "tie-heavy"])
def test_xquad_r_pools_equal_a_brute_force_reference(xquad_subset, levels):
    bench = xquad_subset
    q = _embed([x.text for x in bench.all_questions()], levels=levels)
    c = _embed([x.text for x in bench.all_candidates()], levels=levels)
    out = evaluate_embeddings(bench, q, c, settings=("mono", "cross", "multi"))
    pq, metrics = out.per_query, out.metrics
    n_pools = 0
    for setting in ("mono", "cross", "multi"):
        for (ql, dl), ref in _reference(bench, q, c, setting).items():
            ours = pq[(pq.setting == setting) & (pq.query_lang == ql) & (pq.doc_lang == dl)]
            np.testing.assert_allclose(ours[["ap", "rr", "first_rank"]].to_numpy(float), ref[:, :3], atol=1e-12)
            rows = metrics[(metrics.setting == setting) & (metrics.query_lang == ql) & (metrics.doc_lang == dl)].set_index("metric")
            assert rows.loc["map", "value"] == pytest.approx(ref[:, 0].mean(), abs=1e-12)
            if setting == "multi":
                np.testing.assert_allclose(ours["rank_distance"].to_numpy(float), ref[:, 3], atol=0)
                np.testing.assert_allclose(ours["same_lang@10"].to_numpy(float), ref[:, 4], atol=1e-12)
                assert rows.loc["same_lang@10", "value"] == pytest.approx(ref[:, 4].mean(), abs=1e-12)
                assert rows.loc["rank_distance", "value"] == pytest.approx(np.nanmean(ref[:, 3]), abs=1e-9)
            n_pools += 1
    assert n_pools == 3 + 6 + 3
    per_pool = metrics[metrics.query_lang != "avg"]
    assert set(per_pool.metric) == set(POOL_METRICS) | {"rank_distance", "same_lang@10", "rank_distance_excluded"}
    assert (metrics.depth == "full").all()


def test_lareqa_pools_are_the_engine_with_every_pool_ranked_fully(xquad_subset):
    """Through the engine directly (the generic task form of the pools), the rows are the pooled path's."""
    bench = xquad_subset
    q = _embed([x.text for x in bench.all_questions()])
    c = _embed([x.text for x in bench.all_candidates()])
    pooled = evaluate_embeddings(bench, q, c).metrics
    task = as_retrieval_task(bench, ("mono", "cross", "multi"), metrics=POOL_METRICS)
    generic = evaluate_task_embeddings(task, {k: _embed(t.texts) for k, t in task.query_sets.items()},
                                       {k: _embed(t.passages()) for k, t in task.corpora.items()},
                                       full_rank_max=None).metrics
    assert pooled.equals(generic)


def _two_language_task(include_own: bool) -> RetrievalTask:
    corpora = {"x": DocTable(["x1", "x2", "x3"], ["a", "b", "c"], None, "x"),
               "y": DocTable(["y1", "y2", "y3"], ["d", "e", "f"], None, "y")}
    queries = {"x": QueryTable(["q1", "q2"], ["q", "r"], "x")}
    docs = ("x", "y") if include_own else ("y",)
    qrels = {"q1": {"y1": 1, **({"x1": 1} if include_own else {})}, "q2": {"y2": 1}}
    return RetrievalTask("t", corpora, queries, [TaskPool("multi", "x", "all", "x", docs, qrels)])


@pytest.mark.parametrize("full_rank_max", [None, 0], ids=["full", "topk"])
def test_same_language_share_only_where_the_pool_holds_the_query_language(full_rank_max):
    """A multilingual pool with the query language's own corpus reports same_lang@10 (both search paths);
    a pool of the other languages only (FLORES' multi) does not."""
    q = {"x": torch.tensor([[1.0, 0.0], [0.0, 1.0]])}
    d = {"x": torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]]), "y": torch.tensor([[0.5, 0.5], [0.1, 0.9], [-1.0, 0.0]])}
    with_own = evaluate_task_embeddings(_two_language_task(True), q, d, full_rank_max=full_rank_max)
    share = with_own.per_query.set_index("query_id")["same_lang@10"]
    assert share.to_dict() == pytest.approx({"q1": 3 / 6, "q2": 3 / 6})  # all 6 documents are in the top 10
    assert "same_lang@10" in set(with_own.metrics.metric)
    without = evaluate_task_embeddings(_two_language_task(False), q, {"y": d["y"]}, full_rank_max=full_rank_max)
    assert "same_lang@10" not in set(without.metrics.metric) and without.per_query["same_lang@10"].isna().all()
