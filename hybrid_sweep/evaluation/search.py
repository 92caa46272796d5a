"""Scoring: exact dot products over the full pool with torch (needed for AP and rank distance). Where only
the top k is needed (large corpora), ``evaluation/topk.py`` streams the corpus in blocks (torch or faiss).
Embeddings are L2-normalised, so dot = cosine."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from hybrid_sweep.evaluation.topk import exact_topk


def score_blocks(queries: torch.Tensor, docs: torch.Tensor, block: int = 1024) -> Iterator[tuple[slice, torch.Tensor]]:
    """Yield (row slice, scores) for blocks of query rows so memory stays at block x n_docs floats."""
    device = docs.device
    for start in range(0, queries.shape[0], block):
        rows = slice(start, min(start + block, queries.shape[0]))
        yield rows, (queries[rows].to(device) @ docs.T).float().cpu()


def faiss_topk(queries: np.ndarray, docs: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact inner-product top-k with faiss ``IndexFlatIP``, in the project's tie order (kept for callers
    of the old name; new code calls :func:`hybrid_sweep.evaluation.topk.exact_topk`)."""
    return exact_topk(queries, docs, k, backend="faiss_flat")
