"""Exact inner-product top-k by blocks (reference version: full matmul per block, stable sort).

Ties are broken by the smaller document index, so a caller that orders its corpus by document id
descending gets trec_eval's tie rule. Holds at most ``query_block x doc_block`` scores at once.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch


def _block(x, start: int, stop: int, device) -> torch.Tensor:
    part = x[start:stop]
    if not torch.is_tensor(part):
        part = torch.from_numpy(np.ascontiguousarray(part, dtype=np.float32))
    return part.to(device=device, dtype=torch.float32)


def iter_topk(queries, docs, k: int, *, device="cpu", query_block: int = 1024,
              doc_block: int = 65536) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """Yield ``(first_query_row, scores [b, k'], indices [b, k'])`` per query block."""
    nq, nd = queries.shape[0], docs.shape[0]
    k = min(int(k), nd)
    for qs in range(0, nq, query_block):
        q = _block(queries, qs, min(qs + query_block, nq), device)
        best_s = torch.empty((q.shape[0], 0), device=device)
        best_i = torch.empty((q.shape[0], 0), dtype=torch.int64, device=device)
        for ds in range(0, nd, doc_block):
            s = q @ _block(docs, ds, min(ds + doc_block, nd), device).T
            idx = torch.arange(ds, ds + s.shape[1], device=device).expand_as(s)
            # earlier blocks hold smaller indices, so a stable descending sort keeps them first on ties
            s, idx = torch.cat([best_s, s], 1), torch.cat([best_i, idx], 1)
            order = torch.sort(s, dim=1, descending=True, stable=True).indices[:, :k]
            best_s, best_i = s.gather(1, order), idx.gather(1, order)
        yield qs, best_s.float().cpu().numpy(), best_i.cpu().numpy().astype(np.int64)


def exact_topk(queries, docs, k: int, *, device="cpu", query_block: int = 1024,
               doc_block: int = 65536) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k of queries [nq, d] against docs [nd, d]: (scores float32, indices int64), [nq, min(k, nd)]."""
    k = min(int(k), docs.shape[0])
    parts = list(iter_topk(queries, docs, k, device=device, query_block=query_block, doc_block=doc_block))
    if not parts:
        return np.zeros((0, k), np.float32), np.zeros((0, k), np.int64)
    return np.concatenate([p[1] for p in parts]), np.concatenate([p[2] for p in parts])
