"""Per-query metrics of a fully ranked pool with binary relevance (the LAReQA pools).

There is one metric engine, ``cutoff_metrics.graded_metrics`` (trec_eval's definitions, graded
relevance, a returned depth); this is that engine with grade 1 for every relevant document and the whole
pool returned, as torch tensors for the pooled evaluator. Rank distance (method.md §4) = max rank - min
rank of a query's relevant set in the multilingual pool, NaN for a query with fewer than 2 relevant.
"""

from __future__ import annotations

import numpy as np
import torch

from hybrid_sweep.evaluation.cutoff_metrics import NDCG_K, NOT_RETURNED, RECALL_KS, SUCCESS_KS, graded_metrics

POOL_KEYS = ("map", "mrr", *(f"recall@{k}" for k in RECALL_KS), *(f"success@{k}" for k in SUCCESS_KS),
             f"ndcg@{NDCG_K}", "first_rank", "rank_distance")


def metrics_from_ranks(ranks: torch.Tensor, n_rel: torch.Tensor) -> dict[str, torch.Tensor]:
    """ranks: (n, r) int64 ranks of relevant docs (sentinel-padded); n_rel: (n,) number relevant."""
    r = ranks.cpu().numpy()
    m = graded_metrics(r, np.ones(r.shape), n_rel.cpu().numpy(), depth=NOT_RETURNED - 1)
    return {k: torch.from_numpy(m[k]) for k in POOL_KEYS}
