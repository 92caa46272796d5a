"""Length-aware micro-batches: embed a batch in length-sorted sub-batches, each padded to its own longest text.

The global batch's membership is fixed by the sampler; only how its texts are grouped for the encoder
changes. ``plan(lengths, max_tokens, max_rows)`` sorts the rows by token length (longest first, ties by
position) and cuts the order greedily so that ``rows x longest <= max_tokens`` in every group (a group
holds at least one row); ``max_rows`` also caps the rows per group (GradCache's ``chunk_size``). With
``max_tokens=None`` the plan is today's: one group in input order, or contiguous chunks of ``max_rows``.
``embed_planned`` runs the groups and returns the embeddings in input order (an index, so gradients
flow back to each group's rows).

``TokenBatch`` holds a batch tokenised once (padded to its longest text, right padding) with each row's
token count on the host; ``take(rows)`` selects rows and cuts the columns to their longest, which is what
tokenising those rows alone gives. Tokenising happens in the trainer's prefetch thread; on CUDA the tensors
are pinned there and copied with ``non_blocking=True`` in the step.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from contextlib import contextmanager

import torch

from hybrid_sweep.errors import HybridSweepError

_TOKENIZE_LOCK = threading.Lock()  # one tokenizer call at a time (prefetch thread vs. validation)


class TokenBatch:
    """Tokenised texts: ``features`` (the model's input dict, padded to ``width``) and ``lengths`` (host)."""

    def __init__(self, features: dict, lengths: list[int], pad_id: int = 0):
        self.features, self.lengths, self.pad_id = features, list(lengths), int(pad_id)

    def __len__(self) -> int:
        return len(self.lengths)

    @property
    def width(self) -> int:
        return int(self.features["attention_mask"].shape[1])

    def _map(self, fn) -> TokenBatch:
        feats = {k: fn(k, v) if torch.is_tensor(v) else v for k, v in self.features.items()}
        return TokenBatch(feats, self.lengths, self.pad_id)

    def to(self, device, non_blocking: bool = False) -> TokenBatch:
        return self._map(lambda k, v: v.to(device, non_blocking=non_blocking))

    def pin(self) -> TokenBatch:
        return self._map(lambda k, v: v.pin_memory())

    def take(self, rows: Sequence[int]) -> TokenBatch:
        """These rows, padded to their own longest text (columns past it are padding in every row)."""
        rows = list(rows)
        width = max(self.lengths[i] for i in rows)
        index = torch.as_tensor(rows, device=self.features["attention_mask"].device)

        def cut(k, v):
            v = v.index_select(0, index)
            return v[:, :width] if v.dim() >= 2 and v.shape[1] == self.width else v
        out = self._map(cut)
        out.lengths = [self.lengths[i] for i in rows]
        return out

    @staticmethod
    def cat(a: TokenBatch, b: TokenBatch) -> TokenBatch:
        """Rows of ``a`` then ``b``, padded to the wider of the two (what tokenising them together gives)."""
        width = max(a.width, b.width)

        def widen(t: TokenBatch, k, v):
            if v.dim() < 2 or v.shape[1] != t.width or t.width == width:
                return v
            return torch.nn.functional.pad(v, (0, width - t.width), value=t.pad_id if k == "input_ids" else 0)
        feats = {}
        for k, v in a.features.items():
            w = b.features[k]
            feats[k] = torch.cat([widen(a, k, v), widen(b, k, w)]) if torch.is_tensor(v) else v
        return TokenBatch(feats, a.lengths + b.lengths, a.pad_id)


class Prepared:
    """A global batch and this rank's slice tokenised on the host (pinned on CUDA): queries, positives,
    negatives (``TokenBatch``; [] when there are no negatives). Built by ``Recipe.prepare``."""

    def __init__(self, batch, inputs: tuple):
        self.batch, self.inputs = batch, inputs

    def on(self, device: torch.device) -> tuple:
        """The inputs on the training device (asynchronous copies from pinned memory on CUDA)."""
        return tuple(x.to(device, non_blocking=device.type == "cuda") if isinstance(x, TokenBatch) else x
                     for x in self.inputs)


def tokenize(encoder, texts: Sequence[str], kind: str, pin: bool = False) -> TokenBatch | list:
    """``texts`` prefixed and tokenised as ``Encoder.features`` does, on the host; [] for no texts."""
    if not texts:
        return []
    with _TOKENIZE_LOCK:
        feats = encoder.model.preprocess([encoder.prefixes[kind] + t for t in texts])
    mask = feats["attention_mask"]
    lengths = mask.sum(1)
    if not torch.equal(mask.bool(), torch.arange(mask.shape[1]) < lengths[:, None]):
        raise HybridSweepError(f"encoder {encoder.name}: length-aware micro-batches need right padding")
    tokenizer = getattr(encoder.model, "tokenizer", None)
    pad_id = getattr(tokenizer, "pad_token_id", None) or 0
    batch = TokenBatch(dict(feats), lengths.tolist(), pad_id)
    return batch.pin() if pin else batch


def join(a, b):
    """Positives then negatives as one input: TokenBatches are concatenated, sequences chained."""
    if isinstance(a, TokenBatch):
        return a if len(b) == 0 else TokenBatch.cat(a, b)
    return list(a) + list(b)


def take(x, rows: Sequence[int]):
    return x.take(rows) if isinstance(x, TokenBatch) else [x[i] for i in rows]


def plan(lengths: Sequence[int] | None, n: int, max_tokens: int | None = None,
         max_rows: int | None = None) -> list[list[int]]:
    """Groups of row indices (see the module docstring); ``lengths`` is needed only with ``max_tokens``."""
    if max_tokens is None:
        step = max_rows or max(n, 1)
        return [list(range(i, min(i + step, n))) for i in range(0, n, step)]
    if lengths is None:
        raise HybridSweepError("train.max_tokens: these inputs carry no token lengths (tokenise them first)")
    order = sorted(range(n), key=lambda i: (-lengths[i], i))
    groups: list[list[int]] = []
    for i in order:
        cur = groups[-1] if groups else None
        if cur is None or (len(cur) + 1) * lengths[cur[0]] > max_tokens or (max_rows and len(cur) >= max_rows):
            groups.append([i])
        else:
            cur.append(i)
    return groups


def plan_for(x, max_tokens: int | None = None, max_rows: int | None = None) -> list[list[int]]:
    return plan(getattr(x, "lengths", None), len(x), max_tokens, max_rows)


def in_input_order(emb: torch.Tensor, groups: list[list[int]]) -> torch.Tensor:
    """Rows of ``emb`` (the groups' rows one after another) put back in input order."""
    perm = [i for g in groups for i in g]
    if perm == list(range(len(perm))):
        return emb
    inverse = torch.empty(len(perm), dtype=torch.long)
    inverse[torch.as_tensor(perm)] = torch.arange(len(perm))
    return emb.index_select(0, inverse.to(emb.device))


def embed_planned(embed: Callable, x, kind: str, groups: list[list[int]]) -> torch.Tensor:
    """One forward per group (the graphs kept), embeddings in input order."""
    if len(groups) == 1 and groups[0] == list(range(len(x))):
        return embed(x, kind)
    return in_input_order(torch.cat([embed(take(x, g), kind) for g in groups]), groups)


@contextmanager
def one_embedding_lookup(embedding: torch.nn.Module | None, inputs: Sequence):
    """While active, ``embedding`` (the model's token embedding) reads from one gathered copy of the rows
    the step's ``inputs`` use: every sub-batch's lookup backpropagates through that one gather, so the
    vocabulary-sized dense gradient is built once per step instead of once per sub-batch (250,037 x 384
    for mE5: its zero fill and accumulation cost more than a small sub-batch's whole forward on a CPU).
    Same values; the gradient sums the same terms. For a step with one backward (not GradCache's chunks)."""
    ids = [x.features["input_ids"] for x in inputs if isinstance(x, TokenBatch)]
    if not isinstance(embedding, torch.nn.Embedding) or not ids or not torch.is_grad_enabled():
        yield
        return
    unique = torch.unique(torch.cat([i.flatten() for i in ids]))
    local = torch.zeros(embedding.num_embeddings, dtype=torch.long, device=unique.device)
    local[unique] = torch.arange(len(unique), device=unique.device)
    rows = embedding.weight.index_select(0, unique)
    pad = embedding.padding_idx
    pad = int(local[pad]) if pad is not None and bool((unique == pad).any()) else None
    embedding.forward = lambda input_ids: torch.nn.functional.embedding(local[input_ids], rows, pad)
    try:
        yield
    finally:
        del embedding.forward


def padding_share(lengths: Sequence[int], groups: list[list[int]]) -> float:
    """Share of the processed token positions that are padding under this plan."""
    processed = sum(len(g) * max(lengths[i] for i in g) for g in groups)
    return 1 - sum(lengths) / processed if processed else 0.0
