"""Ranking with one tie rule, the one trec_eval uses: score descending, then document id descending.

A pool's columns are first put in *tie order* (document ids sorted descending as strings, i.e. byte
order for UTF-8), so that within equal scores the earlier column ranks higher. Then

    rank(d) = #{score > s_d} + #{score == s_d and column before d} + 1

is computed for the relevant documents only (full-ranking metrics need no sort), and the top-k of a row
comes from ``torch.topk`` plus an exact resolution of the ties at the k-th score.
"""

from __future__ import annotations

import numpy as np
import torch


def tie_order(doc_ids: list[str]) -> np.ndarray:
    """Permutation that sorts ``doc_ids`` descending (the trec_eval tie-break order)."""
    return np.asarray(sorted(range(len(doc_ids)), key=doc_ids.__getitem__, reverse=True), dtype=np.int64)


def relevant_ranks(scores: torch.Tensor, rel_cols: torch.Tensor) -> torch.Tensor:
    """1-based ranks of relevant columns under the tie rule.

    scores:   (n, m) scores with columns in tie order.
    rel_cols: (n, r) column indices of relevant documents, -1 for padding.
    Returns (n, r) int64 ranks, with a large sentinel where ``rel_cols`` is -1.
    """
    n, m = scores.shape
    ranks = torch.full(rel_cols.shape, torch.iinfo(torch.int64).max, dtype=torch.int64)
    cols = torch.arange(m)
    for j in range(rel_cols.shape[1]):
        valid = rel_cols[:, j] >= 0
        if not valid.any():
            continue
        c = rel_cols[valid, j]
        sub = scores[valid]
        s = sub.gather(1, c[:, None])
        higher = (sub > s).sum(1)
        ties_before = ((sub == s) & (cols[None, :] < c[:, None])).sum(1)
        ranks[valid, j] = higher + ties_before + 1
    return ranks


def topk_tie_rule(scores: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-k columns per row, ordered by score descending then column ascending (tie order).

    Returns (values, columns), each (n, min(k, m)).
    """
    n, m = scores.shape
    k = min(k, m)
    if k == 0:
        return scores[:, :0], torch.zeros((n, 0), dtype=torch.int64)
    kth = scores.topk(k, dim=1).values[:, -1:]
    above = scores > kth
    tied = scores == kth
    need = k - above.sum(1, keepdim=True)
    chosen = above | (tied & (tied.cumsum(1) <= need))
    cols = chosen.nonzero()[:, 1].view(n, k)  # ascending column order within each row
    vals = scores.gather(1, cols)
    order = torch.sort(vals, dim=1, descending=True, stable=True).indices
    return vals.gather(1, order), cols.gather(1, order)
