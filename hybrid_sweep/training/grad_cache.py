"""GradCache (Gao et al., 2021): contrastive loss over a large batch with the memory of a small one.

1. Embed queries, positives and negatives in chunks without a graph, remembering each chunk's RNG state.
2. Compute the loss on the detached embeddings and backpropagate to the embeddings only.
3. Re-embed each chunk with a graph (same RNG state, so the same dropout masks) and backpropagate the
   cached embedding gradients into the encoder.

Chunks are contiguous slices of ``chunk_size`` texts, or with ``max_tokens`` length-sorted groups of at
most that many padded tokens (``microbatch.plan``). The result equals the plain loss and its parameter
gradients (tested in tests/test_loss.py, and through the trainer in tests/test_trainer.py).
``contrastive_step`` is the one call the trainer makes for either path.
Under DDP the re-embedding backward passes but the last run under ``no_sync``, so the gradients are
all-reduced once per step, bucketed and overlapped with the last backward.
Written here rather than taken from sentence-transformers' cached losses so that it shares the encoder's
prefixing, the loss variants of ``loss.info_nce`` and the cross-device gather.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import torch

from hybrid_sweep.training.microbatch import embed_planned, in_input_order, join, plan_for, take

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


def batch_loss(embed: Embed, queries, positives, negatives, loss_fn, max_tokens: int | None = None) -> torch.Tensor:
    """The loss with graphs: queries, then all passages (positives and negatives share a width), each
    one forward, or length-sorted groups of at most ``max_tokens`` padded tokens (``microbatch.plan``)."""
    q = embed_planned(embed, queries, "query", plan_for(queries, max_tokens))
    passages = join(positives, negatives)
    emb = embed_planned(embed, passages, "passage", plan_for(passages, max_tokens))
    p, n = emb[: len(positives)], emb[len(positives):]
    return loss_fn(q, p, n if len(negatives) else None)


def plain_step(embed: Embed, queries, positives, negatives, loss_fn, max_tokens: int | None = None) -> torch.Tensor:
    """Forward (every group's activations kept) and one backward."""
    loss = batch_loss(embed, queries, positives, negatives, loss_fn, max_tokens)
    loss.backward()
    return loss.detach()


def contrastive_step(embed: Embed, queries, positives, negatives, loss_fn, chunk_size: int | None = None,
                     device: torch.device | None = None, no_sync=contextlib.nullcontext,
                     max_tokens: int | None = None) -> torch.Tensor:
    """Forward + backward of one batch: plain when ``chunk_size`` is None, else GradCache with chunks of
    ``chunk_size`` texts; ``max_tokens`` makes the groups / chunks length-sorted with at most that many
    padded tokens (inputs: ``microbatch.TokenBatch``). Returns the detached loss (on the device)."""
    if chunk_size is None:
        return plain_step(embed, queries, positives, negatives, loss_fn, max_tokens)
    return grad_cache_step(embed, queries, positives, negatives, loss_fn, chunk_size,
                           device or torch.device("cpu"), no_sync, max_tokens)


def grad_cache_step(embed: Embed, queries, positives, negatives, loss_fn, chunk_size: int,
                    device: torch.device, no_sync=contextlib.nullcontext,
                    max_tokens: int | None = None) -> torch.Tensor:
    groups = [(queries, "query"), (join(positives, negatives), "passage")]
    cached, states, plans = [], [], []
    with torch.no_grad():
        for x, kind in groups:
            chunks, parts, rngs = plan_for(x, max_tokens, chunk_size), [], []
            for chunk in chunks:
                rngs.append(_RngState(device))
                parts.append(embed(take(x, chunk), kind))
            cached.append(torch.cat(parts).detach().requires_grad_())  # in chunk order
            states.append(rngs)
            plans.append(chunks)
    q, passages = (in_input_order(c, chunks) for c, chunks in zip(cached, plans))
    loss = loss_fn(q, passages[: len(positives)], passages[len(positives):] if len(negatives) else None)
    loss.backward()
    end_state = _RngState(device)
    passes = []
    for (x, kind), emb, rngs, chunks in zip(groups, cached, states, plans):
        offset = 0
        for chunk, rng in zip(chunks, rngs):
            passes.append((kind, take(x, chunk), rng, emb.grad[offset : offset + len(chunk)]))
            offset += len(chunk)
    for k, (kind, inputs, rng, grad) in enumerate(passes):
        rng.restore()
        with no_sync() if k < len(passes) - 1 else contextlib.nullcontext():  # all-reduce on the last only
            embed(inputs, kind).backward(grad)
    end_state.restore()
    return loss.detach()
