"""GradCache (Gao et al., 2021): contrastive loss over a large batch with the memory of a small one.

1. Embed queries, positives and negatives in chunks without a graph, remembering each chunk's RNG state.
2. Compute the loss on the detached embeddings and backpropagate to the embeddings only.
3. Re-embed each chunk with a graph (same RNG state, so the same dropout masks) and backpropagate the
   cached embedding gradients into the encoder.

The result equals the plain loss and its parameter gradients (tested in tests/test_loss.py).
Written here rather than taken from sentence-transformers' cached losses so that it shares the encoder's
prefixing, the loss variants of ``loss.info_nce`` and the cross-device gather.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

Embed = Callable[[list[str], str], torch.Tensor]


class _RngState:
    def __init__(self, device: torch.device):
        self.cpu = torch.get_rng_state()
        self.cuda = torch.cuda.get_rng_state(device) if device.type == "cuda" else None
        self.device = device

    def restore(self):
        torch.set_rng_state(self.cpu)
        if self.cuda is not None:
            torch.cuda.set_rng_state(self.cuda, self.device)


def _chunks(texts: list[str], size: int) -> list[list[str]]:
    return [texts[i : i + size] for i in range(0, len(texts), size)]


def batch_loss(embed: Embed, queries, positives, negatives, loss_fn) -> torch.Tensor:
    """One forward for the queries and one for all passages (positives and negatives share a width)."""
    q = embed(queries, "query")
    passages = embed(list(positives) + list(negatives), "passage")
    p, n = passages[: len(positives)], passages[len(positives):]
    return loss_fn(q, p, n if len(negatives) else None)


def plain_step(embed: Embed, queries, positives, negatives, loss_fn) -> torch.Tensor:
    loss = batch_loss(embed, queries, positives, negatives, loss_fn)
    loss.backward()
    return loss.detach()


def grad_cache_step(embed: Embed, queries, positives, negatives, loss_fn, chunk_size: int,
                    device: torch.device) -> torch.Tensor:
    groups = [(list(queries), "query"), (list(positives) + list(negatives), "passage")]
    cached, states = [], []
    with torch.no_grad():
        for texts, kind in groups:
            parts, rngs = [], []
            for chunk in _chunks(texts, chunk_size):
                rngs.append(_RngState(device))
                parts.append(embed(chunk, kind))
            cached.append(torch.cat(parts).detach().requires_grad_())
            states.append(rngs)
    q, passages = cached
    loss = loss_fn(q, passages[: len(positives)], passages[len(positives):] if len(negatives) else None)
    loss.backward()
    end_state = _RngState(device)
    for (texts, kind), emb, rngs in zip(groups, cached, states):
        for i, (chunk, rng) in enumerate(zip(_chunks(texts, chunk_size), rngs)):
            rng.restore()
            out = embed(chunk, kind)
            out.backward(emb.grad[i * chunk_size : i * chunk_size + len(chunk)])
    end_state.restore()
    return loss.detach()
