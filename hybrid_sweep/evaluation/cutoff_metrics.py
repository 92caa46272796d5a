"""Per-query metrics with graded relevance from the ranks of the relevant documents, as trec_eval
defines them (relevance level 1: grade >= 1 is relevant).

Input per query: the rank of each relevant document (a sentinel above ``depth`` where it was not
returned: not in the top-k, or never ranked) and its grade. With ``depth`` the length of the returned
ranking (the whole pool when it was ranked fully):

  map            sum over returned relevant of (relevant so far / rank), / number relevant  (trec map)
  mrr            1 / rank of the first returned relevant, 0 if none                       (recip_rank)
  recall@k       relevant in the top k / number relevant                                 (recall_k)
  precision@k    relevant in the top k / k                                                (P_k)
  success@k      1 if any relevant in the top k                                           (success_k)
  ndcg@10        sum grade / log2(rank + 1) over the top 10, / the same for the ideal order (ndcg_cut_10)
  first_rank     rank of the first returned relevant (NaN if none)
  rank_distance  max - min rank of the relevant set, for queries with >= 2 relevant (NaN otherwise);
                 only meaningful when the pool was ranked fully
"""

from __future__ import annotations

import numpy as np

RECALL_KS = (1, 5, 10, 100)
PRECISION_KS = (1, 5, 10)
SUCCESS_KS = (1, 5, 10)
NDCG_K = 10
NOT_RETURNED = np.iinfo(np.int64).max


def graded_metrics(ranks: np.ndarray, grades: np.ndarray, n_rel: np.ndarray, depth: int) -> dict[str, np.ndarray]:
    """ranks, grades: (n, r), padded beyond ``n_rel`` (any value); returns per-query float64 arrays."""
    ranks = np.asarray(ranks, dtype=np.int64)
    n, r = ranks.shape
    valid = np.arange(r)[None, :] < np.asarray(n_rel)[:, None]
    ranks = np.where(valid, ranks, NOT_RETURNED)
    order = np.argsort(ranks, axis=1, kind="stable")
    ranks = np.take_along_axis(ranks, order, 1)
    gains = np.take_along_axis(np.where(valid, grades, 0.0).astype(np.float64), order, 1)
    nrel = np.asarray(n_rel, dtype=np.float64)
    returned = ranks <= depth
    rk = np.where(returned, ranks, 1).astype(np.float64)
    hits = np.arange(1, r + 1, dtype=np.float64)[None, :]
    out = {
        "map": np.where(returned, hits / rk, 0.0).sum(1) / nrel,
        "mrr": np.where(returned[:, 0], 1.0 / rk[:, 0], 0.0) if r else np.zeros(n),
    }
    for k in RECALL_KS:
        out[f"recall@{k}"] = (returned & (ranks <= k)).sum(1) / nrel
    for k in PRECISION_KS:
        out[f"precision@{k}"] = (returned & (ranks <= k)).sum(1) / k
    for k in SUCCESS_KS:
        out[f"success@{k}"] = (returned[:, :1] & (ranks[:, :1] <= k)).any(1).astype(np.float64)
    top = returned & (ranks <= NDCG_K)
    dcg = np.where(top, gains / np.log2(rk + 1.0), 0.0).sum(1)
    ideal = -np.sort(-np.where(valid, grades, 0.0).astype(np.float64), axis=1)[:, :NDCG_K]
    idcg = (ideal / np.log2(np.arange(2, ideal.shape[1] + 2, dtype=np.float64))[None, :]).sum(1)
    out[f"ndcg@{NDCG_K}"] = np.divide(dcg, idcg, out=np.zeros(n), where=idcg > 0)
    out["first_rank"] = np.where(returned[:, 0], rk[:, 0], np.nan) if r else np.full(n, np.nan)
    last = np.take_along_axis(rk, (np.asarray(n_rel) - 1)[:, None].clip(min=0), 1)[:, 0]
    all_returned = returned.sum(1) == np.asarray(n_rel)
    out["rank_distance"] = np.where((np.asarray(n_rel) >= 2) & all_returned, last - rk[:, 0], np.nan)
    return out
