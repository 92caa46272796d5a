"""Every metric equals pytrec_eval (trec_eval) on random and tie-heavy score matrices."""

import numpy as np
import pytest
import pytrec_eval
import torch

from hybrid_sweep.evaluation.cutoff_metrics import NOT_RETURNED, graded_metrics
from hybrid_sweep.evaluation.ranking import relevant_ranks, tie_order, topk_tie_rule

MEASURES = {"map", "recip_rank", "recall.1,5,10,100", "success.1,5,10", "ndcg_cut.10"}
OURS_TO_TREC = {"map": "map", "mrr": "recip_rank", "recall@1": "recall_1", "recall@5": "recall_5",
                "recall@10": "recall_10", "recall@100": "recall_100", "success@1": "success_1",
                "success@5": "success_5", "success@10": "success_10", "ndcg@10": "ndcg_cut_10"}


def metrics_from_ranks(ranks: torch.Tensor, n_rel: torch.Tensor) -> dict[str, torch.Tensor]:
    """The engine's metrics of a fully ranked pool with binary relevance (grade 1, the whole pool returned)."""
    r = ranks.numpy()
    m = graded_metrics(r, np.ones(r.shape), n_rel.numpy(), depth=NOT_RETURNED - 1)
    return {k: torch.from_numpy(v) for k, v in m.items()}


def _case(seed, n_q, n_d, levels):
    rng = np.random.default_rng(seed)
    scores = rng.integers(0, levels, size=(n_q, n_d)).astype(np.float32) / levels if levels else \
        rng.standard_normal((n_q, n_d)).astype(np.float32)
    doc_ids = [f"d{rng.integers(0, 10**6)}:{j}" for j in range(n_d)]  # string order != numeric order
    rel = [sorted(rng.choice(n_d, size=int(rng.integers(1, 12)), replace=False).tolist()) for _ in range(n_q)]
    return scores, doc_ids, rel


def _ours(scores, doc_ids, rel):
    order = tie_order(doc_ids)
    pos = np.empty(len(order), dtype=np.int64)
    pos[order] = np.arange(len(order))
    s = torch.from_numpy(scores[:, order])
    width = max(len(r) for r in rel)
    cols = torch.full((len(rel), width), -1, dtype=torch.int64)
    for i, r in enumerate(rel):
        cols[i, : len(r)] = torch.from_numpy(pos[r])
    n_rel = torch.tensor([len(r) for r in rel])
    return metrics_from_ranks(relevant_ranks(s, cols), n_rel), s, order


def _trec(scores, doc_ids, rel):
    qrels = {f"q{i}": {doc_ids[j]: 1 for j in r} for i, r in enumerate(rel)}
    run = {f"q{i}": {d: float(scores[i, j]) for j, d in enumerate(doc_ids)} for i in range(len(rel))}
    return pytrec_eval.RelevanceEvaluator(qrels, MEASURES).evaluate(run)


@pytest.mark.parametrize("levels", [None, 3, 7, 50], ids=["random", "ties3", "ties7", "ties50"])
def test_metrics_equal_pytrec_eval(levels):
    scores, doc_ids, rel = _case(levels or 1, 40, 150, levels)
    ours, _, _ = _ours(scores, doc_ids, rel)
    ref = _trec(scores, doc_ids, rel)
    for name, trec_name in OURS_TO_TREC.items():
        expected = np.array([ref[f"q{i}"][trec_name] for i in range(len(rel))])
        np.testing.assert_allclose(ours[name].numpy(), expected, rtol=0, atol=1e-12, err_msg=name)


def test_tie_rule_is_docid_descending():
    scores = np.zeros((1, 4), dtype=np.float32)  # all tied
    doc_ids = ["a", "c", "b", "d"]
    ours, s, order = _ours(scores, doc_ids, [[0]])
    assert [doc_ids[i] for i in order] == ["d", "c", "b", "a"]
    assert ours["first_rank"].item() == 4  # "a" sorts last
    vals, cols = topk_tie_rule(s, 2)
    assert [doc_ids[order[c]] for c in cols[0].tolist()] == ["d", "c"]


@pytest.mark.parametrize("levels", [None, 4])
def test_topk_matches_full_stable_sort(levels):
    scores, doc_ids, _ = _case(5, 30, 200, levels)
    s = torch.from_numpy(scores)
    full = torch.sort(s, dim=1, descending=True, stable=True)
    for k in (1, 10, 57, 200, 500):
        vals, cols = topk_tie_rule(s, k)
        kk = min(k, 200)
        assert torch.equal(cols, full.indices[:, :kk])
        assert torch.equal(vals, full.values[:, :kk])


def test_rank_distance_and_first_rank_by_hand():
    # one query, 6 docs in tie order; relevant at columns 1 and 4 with distinct scores
    s = torch.tensor([[0.9, 0.8, 0.7, 0.6, 0.5, 0.4]])
    m = metrics_from_ranks(relevant_ranks(s, torch.tensor([[4, 1]])), torch.tensor([2]))
    assert m["first_rank"].item() == 2
    assert m["rank_distance"].item() == 3  # ranks 2 and 5
    assert m["map"].item() == pytest.approx((1 / 2 + 2 / 5) / 2)


def test_faiss_topk_agrees_with_exact_search():
    from hybrid_sweep.evaluation.search import faiss_topk

    g = torch.Generator().manual_seed(0)
    q = torch.nn.functional.normalize(torch.randn(20, 16, generator=g), dim=1)
    d = torch.nn.functional.normalize(torch.randn(300, 16, generator=g), dim=1)
    scores, ids = faiss_topk(q.numpy(), d.numpy(), 10)
    vals, cols = topk_tie_rule(q @ d.T, 10)
    assert (ids == cols.numpy()).all()
    np.testing.assert_allclose(scores, vals.numpy(), rtol=1e-5, atol=1e-6)
