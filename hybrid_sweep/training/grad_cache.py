"""GradCache (Gao et al., 2021): contrastive loss over a large batch with the memory of a small one.

1. Embed queries, positives and negatives in chunks without a graph, remembering each chunk's RNG state.
2. Compute the loss on the detached embeddings and backpropagate to the embeddings only.
3. Re-embed each chunk with a graph (same RNG state, so the same dropout masks) and backpropagate the
   cached embedding gradients into the encoder.

The result equals the plain loss and its parameter gradients (tested in tests/test_loss.py, and through the
trainer in tests/test_trainer.py). ``contrastive_step`` is the one call the trainer makes for either path.
Under DDP the re-embedding backward passes but the last run under ``no_sync``, so the gradients are
all-reduced once per step, bucketed and overlapped with the last backward.
Written here rather than taken from sentence-transformers' cached losses so that it shares the encoder's
prefixing, the loss variants of ``loss.info_nce`` and the cross-device gather.
"""

from __future__ import annotations

import contextlib
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


def contrastive_step(embed: Embed, queries, positives, negatives, loss_fn, chunk_size: int | None = None,
                     device: torch.device | None = None, no_sync=contextlib.nullcontext) -> torch.Tensor:
    """Forward + backward of one batch: plain when ``chunk_size`` is None, else GradCache with chunks of
    ``chunk_size`` texts. Returns the detached loss (on the device; no host synchronisation)."""
    if chunk_size is None:
        return plain_step(embed, queries, positives, negatives, loss_fn)
    return grad_cache_step(embed, queries, positives, negatives, loss_fn, chunk_size,
                           device or torch.device("cpu"), no_sync)


def grad_cache_step(embed: Embed, queries, positives, negatives, loss_fn, chunk_size: int,
                    device: torch.device, no_sync=contextlib.nullcontext) -> torch.Tensor:
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
    passes = [(kind, chunk, rng, emb.grad[i * chunk_size : i * chunk_size + len(chunk)])
              for (texts, kind), emb, rngs in zip(groups, cached, states)
              for i, (chunk, rng) in enumerate(zip(_chunks(texts, chunk_size), rngs))]
    for k, (kind, chunk, rng, grad) in enumerate(passes):
        rng.restore()
        with no_sync() if k < len(passes) - 1 else contextlib.nullcontext():  # all-reduce on the last only
            embed(chunk, kind).backward(grad)
    end_state.restore()
    return loss.detach()
