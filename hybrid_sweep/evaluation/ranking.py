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

    scores:   (n, m) finite scores with columns in tie order.
    rel_cols: (n, r) column indices of relevant documents, -1 for padding.
    Returns (n, r) int64 ranks, with a large sentinel where ``rel_cols`` is -1.

    One pass over the scores: with the relevant scores sorted per row as thresholds ``a``,
    ``#{x > s} = #{x : searchsorted_left(a, x) >= R(s)}`` where ``R(s) = searchsorted_right(a, s)``, and
    the same with ``searchsorted_right`` counts ``x >= s``. Exact ties (rare outside tests) are resolved
    by column position for the affected rows only.
    """
    scores = scores.contiguous()
    n, m = scores.shape
    r = rel_cols.shape[1]
    valid = rel_cols >= 0
    rel_scores = scores.gather(1, rel_cols.clamp(min=0))
    thresholds = torch.where(valid, rel_scores, torch.full_like(rel_scores, float("inf"))).sort(dim=1).values
    cut = torch.searchsorted(thresholds, rel_scores, right=True)  # R(s) per relevant doc, in 1..r

    def count_at_least(right: bool) -> torch.Tensor:
        idx = torch.searchsorted(thresholds, scores, right=right)
        hist = torch.zeros(n, r + 1, dtype=torch.float64).scatter_add_(1, idx, torch.ones(1, 1, dtype=torch.float64).expand_as(idx))
        suffix = hist.flip(1).cumsum(1).flip(1)  # suffix[k] = #{x : idx(x) >= k}
        return suffix.gather(1, cut).long()

    higher = count_at_least(right=False)
    n_equal = count_at_least(right=True) - higher  # includes the document itself
    ties_before = torch.zeros_like(higher)
    rows, js = torch.nonzero((n_equal > 1) & valid, as_tuple=True)
    if rows.numel():
        cols = torch.arange(m)
        for i, j in zip(rows.tolist(), js.tolist()):
            row = scores[i]
            ties_before[i, j] = ((row == rel_scores[i, j]) & (cols < rel_cols[i, j])).sum()
    ranks = higher + ties_before + 1
    return torch.where(valid, ranks, torch.full_like(ranks, torch.iinfo(torch.int64).max))


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
