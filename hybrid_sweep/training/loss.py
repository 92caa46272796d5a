"""InfoNCE over (query, positive, hard negatives) with in-batch and cross-device negatives.

Candidates for every query: all positives of the (global) batch followed by all hard negatives,
``[P (B); N (B*K)]``; query i's label is i (its own positive). ``in_batch_positives=False`` is the paper's
literal variant: a query sees its own positive and every hard negative, not the other positives.
``symmetric`` adds the passage->query direction (each positive against all queries).
Embeddings are L2-normalised, so scores are cosines divided by the temperature. Scores and the loss are
computed in fp32 even under bf16 autocast (a 0.05 temperature magnifies bf16's rounding twentyfold).

False negatives: a candidate whose text is a row's own positive text (the same paragraph met as another
row's positive or hard negative) is not a negative for that row; ``false_negative_mask`` finds them and
``info_nce(..., exclude=mask)`` drops them from the row's softmax (its own column is never excluded); in
the symmetric direction the queries whose positive is that paragraph are dropped likewise.

The loss is chosen by ``train.loss`` from ``LOSSES`` (one entry per loss, each with the ``train.*`` options
it reads; ``loss_from_config`` binds them). Every entry takes the local embeddings and the same keywords as
``info_nce`` (``offset``, the gathered ``p_all`` / ``n_all`` / ``q_all``, ``exclude``), so the plain step
and GradCache (``grad_cache.contrastive_step``) work with any of them. Add one with ``register_loss``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from hybrid_sweep.config.stages import LOSS_NAMES
from hybrid_sweep.errors import ConfigError


def false_negative_mask(row_positives: Sequence[str], candidates: Sequence[str], offset: int = 0) -> torch.Tensor | None:
    """(rows, candidates) bool: candidate j has row i's positive text and is not row i's own column
    ``offset + i``. None when nothing is masked (the common case costs no tensor)."""
    where: dict[str, list[int]] = {}
    for j, text in enumerate(candidates):
        where.setdefault(text, []).append(j)
    hits = [(i, j) for i, text in enumerate(row_positives) for j in where.get(text, ()) if j != offset + i]
    if not hits:
        return None
    mask = torch.zeros(len(row_positives), len(candidates), dtype=torch.bool)
    rows, cols = zip(*hits)
    mask[list(rows), list(cols)] = True
    return mask


def info_nce(q: torch.Tensor, p: torch.Tensor, n: torch.Tensor | None, temperature: float = 0.05,
             in_batch_positives: bool = True, symmetric: bool = False, offset: int = 0,
             p_all: torch.Tensor | None = None, n_all: torch.Tensor | None = None,
             q_all: torch.Tensor | None = None, exclude: torch.Tensor | None = None) -> torch.Tensor:
    """Mean InfoNCE of the local queries ``q`` (B, D).

    ``p`` (B, D) and ``n`` (B*K, D) are the local positives / negatives; under DDP pass the gathered
    ``p_all``, ``n_all``, ``q_all`` and ``offset`` = global index of the first local query. ``exclude``
    (B, candidates) marks known false negatives (see ``false_negative_mask``).
    """
    p_all = p if p_all is None else p_all
    n_all = n if n_all is None else n_all
    q_all = q if q_all is None else q_all
    has_negatives = n_all is not None and n_all.numel() > 0
    if not in_batch_positives and not has_negatives:
        raise ConfigError("train.in_batch_positives", "false needs hard negatives (sampler.n_negatives >= 1); "
                          "with none every query sees only its own positive and the loss is exactly 0")
    with torch.autocast(q.device.type, enabled=False):  # fp32 scores and loss under bf16 autocast
        q, p, q_all = q.float(), p.float(), q_all.float()
        cands = torch.cat([p_all, n_all]).float() if has_negatives else p_all.float()
        scores = q @ cands.T / temperature
        labels = torch.arange(q.shape[0], device=q.device) + offset
        drop = None if exclude is None else exclude.to(q.device)
        if not in_batch_positives:
            other = torch.ones_like(scores, dtype=torch.bool)
            other[:, p_all.shape[0]:] = False
            other[torch.arange(q.shape[0]), labels] = False
            drop = other if drop is None else drop | other
        if drop is not None:
            scores = scores.masked_fill(drop, float("-inf"))
        loss = F.cross_entropy(scores, labels)
        if symmetric:
            back = p @ q_all.T / temperature
            if exclude is not None:  # query j whose positive is row i's paragraph is a match, not a negative
                back = back.masked_fill(exclude[:, : q_all.shape[0]].to(q.device), float("-inf"))
            loss = (loss + F.cross_entropy(back, labels)) / 2
    return loss


@dataclass(frozen=True)
class LossEntry:
    fn: Callable
    options: tuple[str, ...]  # train.* keys passed to ``fn`` by name


LOSSES: dict[str, LossEntry] = {}


def register_loss(name: str, fn: Callable, options: Sequence[str] = ()) -> None:
    """Make ``train.loss=<name>`` call ``fn(q, p, n, **{option: train.<option>}, offset=..., p_all=...,
    n_all=..., q_all=..., exclude=...)``."""
    LOSSES[name] = LossEntry(fn, tuple(options))
    if name not in LOSS_NAMES:
        LOSS_NAMES.append(name)  # what the config check accepts


register_loss("info_nce", info_nce, ("temperature", "in_batch_positives", "symmetric"))


def loss_from_config(t) -> Callable:
    """The loss named by ``train.loss`` (default ``info_nce``) with its options from ``t`` bound."""
    name = t.loss
    if name not in LOSSES:
        raise ConfigError("train.loss", f"unknown loss {name!r}; one of {', '.join(LOSSES)}")
    entry = LOSSES[name]
    return functools.partial(entry.fn, **{key: t[key] for key in entry.options})
