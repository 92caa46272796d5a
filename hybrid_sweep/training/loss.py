"""InfoNCE over (query, positive, hard negatives) with in-batch and cross-device negatives.

Candidates for every query: all positives of the (global) batch followed by all hard negatives,
``[P (B); N (B*K)]``; query i's label is i (its own positive). ``in_batch_positives=False`` is the paper's
literal variant: a query sees its own positive and every hard negative, not the other positives.
``symmetric`` adds the passage->query direction (each positive against all queries).
Embeddings are L2-normalised, so scores are cosines divided by the temperature.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def info_nce(q: torch.Tensor, p: torch.Tensor, n: torch.Tensor | None, temperature: float = 0.05,
             in_batch_positives: bool = True, symmetric: bool = False, offset: int = 0,
             p_all: torch.Tensor | None = None, n_all: torch.Tensor | None = None,
             q_all: torch.Tensor | None = None) -> torch.Tensor:
    """Mean InfoNCE of the local queries ``q`` (B, D).

    ``p`` (B, D) and ``n`` (B*K, D) are the local positives / negatives; under DDP pass the gathered
    ``p_all``, ``n_all``, ``q_all`` and ``offset`` = global index of the first local query.
    """
    p_all = p if p_all is None else p_all
    n_all = n if n_all is None else n_all
    q_all = q if q_all is None else q_all
    cands = p_all if n_all is None or n_all.numel() == 0 else torch.cat([p_all, n_all])
    scores = q @ cands.T / temperature
    labels = torch.arange(q.shape[0], device=q.device) + offset
    if not in_batch_positives:
        other = torch.ones_like(scores, dtype=torch.bool)
        other[:, p_all.shape[0]:] = False
        other[torch.arange(q.shape[0]), labels] = False
        scores = scores.masked_fill(other, float("-inf"))
    loss = F.cross_entropy(scores, labels)
    if symmetric:
        back = p @ q_all.T / temperature
        loss = (loss + F.cross_entropy(back, labels)) / 2
    return loss
