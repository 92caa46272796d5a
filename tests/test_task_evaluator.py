"""Generic task evaluator: every cutoff metric equals pytrec_eval (graded qrels, tied scores), on the
full-ranking path and on the top-k path, and the run files it streams are what it scored."""

import numpy as np
import pandas as pd
import pytest
import pytrec_eval
import torch

from hybrid_sweep.data.retrieval_task import DocTable, QueryTable, RetrievalTask, TaskPool
from hybrid_sweep.evaluation.task_evaluator import evaluate_task_embeddings
from hybrid_sweep.evaluation.topk import exact_topk, iter_topk
from hybrid_sweep.evaluation.trec_io import read_qrels, read_run

MEASURES = {"map", "recip_rank", "ndcg_cut.10", "recall.1,5,10,100", "P.1,5,10", "success.1,5,10"}
OURS = {"map": "map", "recip_rank": "mrr", "ndcg_cut_10": "ndcg@10", "recall_1": "recall@1", "recall_5": "recall@5",
        "recall_10": "recall@10", "recall_100": "recall@100", "P_1": "precision@1", "P_5": "precision@5",
        "P_10": "precision@10", "success_1": "success@1", "success_5": "success@5", "success_10": "success@10"}


def random_task(seed=0, n_docs=150, n_queries=40, dim=4, levels=2):
    """Coarse integer embeddings (many exact ties), graded qrels with judged non-relevant rows, some
    queries with no relevant document, doc ids whose string order differs from their index order."""
    rng = np.random.default_rng(seed)
    doc_ids = [f"d{rng.integers(0, 10**6)}-{i}" for i in range(n_docs)] + ["d1", "d10"]
    n_docs += 2
    q_ids = [f"q{i}" for i in range(n_queries)]
    qrels = {}
    for i, q in enumerate(q_ids):
        picked = rng.choice(n_docs, size=rng.integers(1, 12), replace=False)
        grades = rng.integers(0, 4, size=len(picked)) if i % 7 else np.zeros(len(picked), int)
        qrels[q] = {doc_ids[j]: int(g) for j, g in zip(picked, grades)}
    task = RetrievalTask("toy", {"c": DocTable(doc_ids, [""] * n_docs, lang="xx")},
                         {"q": QueryTable(q_ids, [""] * n_queries, lang="xx")},
                         [TaskPool("mono", "xx", "xx", "q", ("c",), qrels)])
    q = torch.from_numpy(rng.integers(-levels, levels + 1, size=(n_queries, dim)).astype(np.float32))
    d = torch.from_numpy(rng.integers(-levels, levels + 1, size=(n_docs, dim)).astype(np.float32))
    return task, q, d


def _reference(task, q, d, depth=None):
    """pytrec_eval on every (query, doc) score, truncated to the top ``depth`` under trec_eval's order."""
    pool = task.pools[0]
    ids = task.corpora["c"].ids
    scores = (q @ d.T).numpy()
    run = {}
    for i, qid in enumerate(task.query_sets["q"].ids):
        by_id = sorted(zip(scores[i].tolist(), ids), key=lambda x: x[1], reverse=True)
        ranked = sorted(by_id, key=lambda x: -x[0])  # stable: ties stay in doc id descending order
        run[qid] = {doc: float(s) for s, doc in ranked[:depth]}
    qrels = {k: v for k, v in pool.qrels.items() if any(g > 0 for g in v.values())}
    return pytrec_eval.RelevanceEvaluator(qrels, MEASURES).evaluate({k: run[k] for k in qrels})


@pytest.mark.parametrize("full_rank_max,run_depth,search_dtype",
                         [(10**6, None, "float32"), (0, 100, "float32"), (0, 20, "float32"), (0, 100, "bfloat16")],
                         ids=["full", "top100", "top20-run", "top100-bf16-rescored"])
def test_every_cutoff_metric_equals_pytrec_eval(full_rank_max, run_depth, search_dtype, tmp_path):
    task, q, d = random_task()
    out = evaluate_task_embeddings(task, {"q": q}, {"c": d}, run_depth=run_depth, full_rank_max=full_rank_max,
                                   output_dir=tmp_path, block=7, search_dtype=search_dtype)
    depth = None if full_rank_max else max(run_depth, 100)
    ref = _reference(task, q, d, depth)
    rows = out.metrics[out.metrics.query_lang == "xx"].set_index("metric")
    assert set(rows.depth) == {"full" if full_rank_max else "top100"}
    n_skipped = sum(not any(g > 0 for g in v.values()) for v in task.pools[0].qrels.values())
    assert n_skipped > 0 and (rows.n_skipped == n_skipped).all() and (rows.n_queries == len(ref)).all()
    for trec_name, ours in OURS.items():
        expected = np.mean([m[trec_name] for m in ref.values()])
        assert rows.loc[ours, "value"] == pytest.approx(expected, abs=1e-12), trec_name
    pq = out.per_query.set_index("query_id")
    for qid, m in ref.items():
        assert pq.loc[qid, "ap"] == pytest.approx(m["map"], abs=1e-12)
        assert pq.loc[qid, "ndcg@10"] == pytest.approx(m["ndcg_cut_10"], abs=1e-12)
    # the streamed run file, read back by pytrec_eval, gives the reported per-query values
    run = read_run(tmp_path / "runs" / "toy" / "mono" / "xx-xx.trec")
    assert {len(v) for v in run.values()} == {run_depth or len(task.corpora["c"])}
    written = read_qrels(tmp_path / "qrels" / "toy" / "mono" / "xx-xx.qrels")
    from_file = pytrec_eval.RelevanceEvaluator(written, {"ndcg_cut.10", "P.10"}).evaluate(run)
    for qid, m in from_file.items():
        assert m["ndcg_cut_10"] == pytest.approx(ref[qid]["ndcg_cut_10"], abs=1e-12)


def test_macro_rows_average_pools_and_sum_counts():
    task, q, d = random_task()
    pool = task.pools[0]
    task.pools.append(TaskPool("mono", "yy", "yy", "q", ("c",), dict(list(pool.qrels.items())[:20])))
    m = evaluate_task_embeddings(task, {"q": q}, {"c": d}).metrics
    avg = m[m.query_lang == "avg"].set_index("metric")
    per = m[m.query_lang != "avg"]
    assert avg.loc["map", "value"] == pytest.approx(per[per.metric == "map"].value.mean())
    assert avg.loc["map", "n_queries"] == per[per.metric == "map"].n_queries.sum()
    assert list(m.columns) == ["benchmark", "setting", "query_lang", "doc_lang", "metric", "value", "n_queries",
                               "n_skipped", "depth"]


def test_topk_api_orders_by_score_then_smaller_index():
    rng = np.random.default_rng(3)
    q = rng.integers(-1, 2, size=(13, 3)).astype(np.float32)
    d = rng.integers(-1, 2, size=(57, 3)).astype(np.float32)
    scores, idx = exact_topk(q, d, 9, query_block=4, doc_block=10)
    full = q @ d.T
    for i in range(len(q)):
        expected = sorted(range(len(d)), key=lambda j: (-full[i, j], j))[:9]
        assert idx[i].tolist() == expected
        assert np.allclose(scores[i], full[i, expected])
    blocks = list(iter_topk(q, torch.from_numpy(d), 100, query_block=5))
    assert [b[0] for b in blocks] == [0, 5, 10] and blocks[0][2].shape == (5, 57)


def test_a_pool_with_every_query_skipped_is_left_out():
    task, q, d = random_task()
    task.pools.append(TaskPool("cross", "xx", "zz", "q", ("c",), {"q1": {task.corpora["c"].ids[0]: 0}}))
    m = evaluate_task_embeddings(task, {"q": q}, {"c": d}).metrics
    assert set(m.doc_lang) == {"xx", "avg"}
    assert isinstance(m, pd.DataFrame)
