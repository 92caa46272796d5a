"""Scoring: exact dot products over the full pool with torch (needed for AP and rank distance), and
faiss for large corpora where only the top k is needed. Embeddings are L2-normalised, so dot = cosine."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch


def score_blocks(queries: torch.Tensor, docs: torch.Tensor, block: int = 1024) -> Iterator[tuple[slice, torch.Tensor]]:
    """Yield (row slice, scores) for blocks of query rows so memory stays at block x n_docs floats."""
    device = docs.device
    for start in range(0, queries.shape[0], block):
        rows = slice(start, min(start + block, queries.shape[0]))
        yield rows, (queries[rows].to(device) @ docs.T).float().cpu()


def faiss_topk(queries: np.ndarray, docs: np.ndarray, k: int, use_gpu: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Exact inner-product top-k with faiss ``IndexFlatIP`` (ties are not resolved by document id)."""
    import faiss

    index = faiss.IndexFlatIP(docs.shape[1])
    if use_gpu:  # pragma: no cover - needs faiss-gpu
        index = faiss.index_cpu_to_all_gpus(index)
    index.add(np.ascontiguousarray(docs, dtype=np.float32))
    scores, ids = index.search(np.ascontiguousarray(queries, dtype=np.float32), min(k, docs.shape[0]))
    return scores, ids
