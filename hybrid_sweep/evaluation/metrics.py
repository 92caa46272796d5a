"""Per-query metrics from the ranks of the relevant documents (binary relevance, full ranking).

Definitions follow trec_eval: AP = sum over relevant of (hits so far / rank) divided by the number of
relevant; RR = 1 / first rank; recall@k = relevant in top k / number relevant; success@k = any relevant
in top k; nDCG@10 with gain 1 and discount log2(rank + 1). Rank distance (method.md §4) = max rank -
min rank of a query's relevant set in the multilingual pool.
"""

from __future__ import annotations

import torch

RECALL_KS = (1, 5, 10, 100)
SUCCESS_KS = (1, 5, 10)
NDCG_K = 10


def metrics_from_ranks(ranks: torch.Tensor, n_rel: torch.Tensor) -> dict[str, torch.Tensor]:
    """ranks: (n, r) int64 ranks of relevant docs (sentinel-padded); n_rel: (n,) number relevant."""
    ranks, _ = ranks.sort(dim=1)
    r = ranks.shape[1]
    valid = torch.arange(r)[None, :] < n_rel[:, None]
    rk = torch.where(valid, ranks, torch.ones_like(ranks)).double()
    hits = torch.arange(1, r + 1, dtype=torch.float64)[None, :]
    n = n_rel.double()
    out = {
        "map": torch.where(valid, hits / rk, 0.0).sum(1) / n,
        "mrr": 1.0 / rk[:, 0],
    }
    for k in RECALL_KS:
        out[f"recall@{k}"] = (valid & (ranks <= k)).sum(1).double() / n
    for k in SUCCESS_KS:
        out[f"success@{k}"] = (ranks[:, 0] <= k).double()
    discount = torch.where(valid & (ranks <= NDCG_K), 1.0 / torch.log2(rk + 1.0), 0.0).sum(1)
    ideal_hits = torch.clamp(n_rel, max=NDCG_K)
    ideal_table = torch.cumsum(1.0 / torch.log2(torch.arange(2, NDCG_K + 2, dtype=torch.float64)), 0)
    out[f"ndcg@{NDCG_K}"] = discount / ideal_table[ideal_hits - 1]
    last = ranks.gather(1, (n_rel - 1)[:, None])[:, 0]
    out["first_rank"] = ranks[:, 0].double()
    out["rank_distance"] = (last - ranks[:, 0]).double()
    return out
