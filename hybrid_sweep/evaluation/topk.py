"""Top-k inner-product search over corpora too large to score at once.

``exact_topk`` / ``iter_topk`` score a block of queries against the corpus one block of documents at a
time (torch matmul, fp32 accumulation, CPU or CUDA; a memmap is read block by block and only that block
goes to the device) and merge each block's best k into a running top-k. Memory is bounded by
``query_block x doc_block`` scores, never a full row of a million candidates.

Result order is exact and deterministic: score descending, ties broken by the smaller document index
(row in ``docs``). A block's top-k is taken with one extra element; only a row whose k-th and (k+1)-th
scores are equal (a tie across the cut) is re-selected exactly, so the common case costs one ``topk``.
The merge keeps the invariant that equal scores are in index order, with a stable sort.

``tie_key`` (one distinct integer per document) replaces "smaller index" by "smaller key" in that rule,
so a caller can search rows in their stored order (a memory-mapped store, no copy) and still get another
tie order (the evaluator's: document id descending). ``ConcatRows`` reads several row arrays as one.

faiss backends (``faiss_flat`` exact, ``faiss_ivf`` / ``faiss_hnsw`` APPROXIMATE: they may miss true
neighbours) hold the corpus as float32 in an in-memory index; results are put in the same order, and
for ``faiss_flat`` a row with a tie across the cut is recomputed with the torch path.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import torch

from hybrid_sweep.errors import ConfigError, DataError

BACKENDS = ("torch", "faiss_flat", "faiss_ivf", "faiss_hnsw")
COMPUTE_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def exact_topk(queries, docs, k: int, *, device="cpu", query_block: int = 1024, doc_block: int = 65536,
               backend: str = "torch", compute_dtype: str = "float32",
               faiss_options: dict[str, Any] | None = None, tie_key=None) -> tuple[np.ndarray, np.ndarray]:
    """Inner-product top-k of queries [nq, d] against docs [nd, d] (numpy, memmap incl. fp16, or torch).

    Returns (scores float32 [nq, k'], indices int64 [nq, k']) with k' = min(k, nd), each row by score
    descending, ties broken by the smaller doc index. Holds at most query_block x doc_block scores.
    ``compute_dtype`` float16/bfloat16 selects candidates in that precision (tensor cores on CUDA; emulated,
    slower, on CPU) and re-scores them in fp32: the float32 top-k (fp32 scores summed in another order, so
    equal to the last bit where the sums are exact; see :func:`_rescored_rows`).
    ``tie_key`` [nd] (distinct integers): equal scores ordered by smaller key instead of smaller index.
    """
    parts = list(iter_topk(queries, docs, k, device=device, query_block=query_block, doc_block=doc_block,
                           backend=backend, compute_dtype=compute_dtype, faiss_options=faiss_options,
                           tie_key=tie_key))
    nq, kk = _shape(queries)[0], min(int(k), _shape(docs)[0])
    if not parts:
        return np.zeros((nq, kk), np.float32), np.zeros((nq, kk), np.int64)
    return np.concatenate([p[1] for p in parts]), np.concatenate([p[2] for p in parts])


def iter_topk(queries, docs, k: int, *, device="cpu", query_block: int = 1024, doc_block: int = 65536,
              backend: str = "torch", compute_dtype: str = "float32",
              faiss_options: dict[str, Any] | None = None,
              tie_key=None) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """Like :func:`exact_topk`, yielding (first_query_row, scores, indices) per block of queries."""
    nq, nd, kk = _check(queries, docs, k, query_block, doc_block, backend, compute_dtype)
    device = torch.device(device)
    if tie_key is not None:
        tie_key = torch.as_tensor(np.asarray(tie_key), dtype=torch.int64)
        if tuple(tie_key.shape) != (nd,):
            raise DataError("tie_key", f"needs one key per document: shape {tuple(tie_key.shape)}, {nd} documents")
    if kk == 0:
        for start in range(0, nq, query_block):
            rows = min(query_block, nq - start)
            yield start, np.zeros((rows, 0), np.float32), np.zeros((rows, 0), np.int64)
        return
    if backend == "torch":
        key = None if tie_key is None else tie_key.to(device)
        for start in range(0, nq, query_block):
            q = _to_device(queries, start, min(start + query_block, nq), device)
            if compute_dtype == "float32":
                vals, idx = _torch_rows(q, docs, kk, device, doc_block, key)
            else:
                vals, idx = _rescored_rows(q, docs, kk, device, doc_block, key, COMPUTE_DTYPES[compute_dtype])
            yield start, vals.cpu().numpy(), idx.cpu().numpy()
    else:
        yield from _faiss_blocks(queries, docs, kk, backend, query_block, doc_block, faiss_options or {}, tie_key)


def _shape(x) -> tuple[int, ...]:
    return tuple(x.shape)


def _check(queries, docs, k, query_block, doc_block, backend, compute_dtype) -> tuple[int, int, int]:
    if backend not in BACKENDS:
        raise ConfigError("backend", f"unknown search backend {backend!r}; one of {', '.join(BACKENDS)}")
    if compute_dtype not in COMPUTE_DTYPES:
        raise ConfigError("compute_dtype", f"unknown {compute_dtype!r}; one of {', '.join(COMPUTE_DTYPES)}")
    for name, value in (("k", k), ("query_block", query_block), ("doc_block", doc_block)):
        if int(value) < 1:
            raise ConfigError(name, f"must be >= 1 (got {value})")
    qs, ds = _shape(queries), _shape(docs)
    if len(qs) != 2 or len(ds) != 2:
        raise DataError("embeddings", f"queries and docs must be 2-d (got {qs} and {ds})")
    if qs[1] != ds[1] and ds[0] > 0 and qs[0] > 0:
        raise DataError("embeddings", f"query dim {qs[1]} != document dim {ds[1]}")
    return qs[0], ds[0], min(int(k), ds[0])


def _host_block(x, start: int, stop: int, device: torch.device, dtype) -> torch.Tensor:
    """Rows [start, stop) in host memory (the slow part for a memmap: it reads the disk / page cache)."""
    if torch.is_tensor(x):
        return x[start:stop]
    if device.type == "cpu" and dtype == torch.float32:
        return torch.from_numpy(np.array(x[start:stop], dtype=np.float32))  # one read, one conversion
    block = torch.from_numpy(np.array(x[start:stop]))  # stored dtype: fp16 moves half the bytes
    return block.pin_memory() if device.type == "cuda" else block


def _to_device(x, start: int, stop: int, device: torch.device, dtype=torch.float32) -> torch.Tensor:
    """Rows [start, stop) as a ``dtype`` tensor on ``device`` (moved in the stored dtype, converted there)."""
    return _host_block(x, start, stop, device, dtype).to(device, non_blocking=True).to(dtype)


def _doc_blocks(docs, device: torch.device, dtype, doc_block: int) -> Iterator[tuple[int, torch.Tensor]]:
    """(offset, block on device) in order; a thread reads the next block while this one is scored."""
    n = _shape(docs)[0]
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(_host_block, docs, 0, min(doc_block, n), device, dtype)
        for offset in range(0, n, doc_block):
            block = pending.result()
            if offset + doc_block < n:
                pending = pool.submit(_host_block, docs, offset + doc_block, min(offset + 2 * doc_block, n),
                                      device, dtype)
            yield offset, block.to(device, non_blocking=True).to(dtype)


def _scores(q: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    if q.dtype == torch.float32:
        return q @ d.T
    if q.device.type != "cuda":  # the same arithmetic (rounded inputs, exact products, fp32 sums), emulated
        return q.float() @ d.float().T
    return torch.mm(q, d.T, out_dtype=torch.float32)  # tensor cores, fp32 accumulate and output


UNIT_ROUNDOFF = {torch.float16: 2.0 ** -11, torch.bfloat16: 2.0 ** -8}
RESCORE_ROWS = 128  # queries re-scored at once (128 x (2k + 64) x dim fp32: 53 MB at k 100, dim 384)


@torch.no_grad()
def _rescored_rows(q32: torch.Tensor, docs, kk: int, device: torch.device, doc_block: int,
                   key: torch.Tensor | None, dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """The fp32 top-kk of ``q32`` found through a low-precision pass, then re-scored in fp32.

    A low-precision score is within ``delta = (2u + u^2 + 2n*2^-24) |q| max|d|`` (+ a subnormal term) of
    the fp32 one (u: the dtype's unit roundoff; inputs rounded, fp32 sums over n dimensions). With ``L`` the
    k-th best low score, every fp32 top-k document (ties at the cut included) has a low score >= L - 2 delta,
    so keeping the best ``m`` low scores is enough when the m-th is below that bound; those candidates are
    re-scored in fp32 and cut with the tie rule. A row whose margin is too crowded for m is searched again
    in fp32 in full, so the result never depends on the margin, only the time does."""
    nd, dim = _shape(docs)
    m = min(nd, 2 * kk + 64)
    q_low = q32.to(dtype)
    run_v = torch.empty((q32.shape[0], 0), dtype=torch.float32, device=device)
    run_i = torch.empty((q32.shape[0], 0), dtype=torch.int64, device=device)
    d_max = torch.zeros((), device=device)
    for offset, d in _doc_blocks(docs, device, dtype, doc_block):
        d_max = torch.maximum(d_max, d.float().norm(dim=1).max() if len(d) else d_max)
        vals, idx = block_topk(_scores(q_low, d), m)
        run_v, run_i = merge_topk(run_v, run_i, vals, idx + offset, m)
    u = UNIT_ROUNDOFF[dtype]
    q_norm = q32.norm(dim=1)
    delta = ((2 * u + u * u + 2 * dim * 2.0 ** -24) * q_norm * d_max * (1 + u)
             + 2.0 ** -24 * dim ** 0.5 * (q_norm + d_max))  # fp16 subnormals: absolute error per element
    enough = run_v[:, m - 1] < run_v[:, kk - 1] - 2 * delta if m < nd else torch.ones_like(q_norm, dtype=torch.bool)
    out_v = torch.empty((q32.shape[0], kk), dtype=torch.float32, device=device)
    out_i = torch.empty((q32.shape[0], kk), dtype=torch.int64, device=device)
    ok = enough.nonzero().squeeze(1)
    for rows in ok.split(RESCORE_ROWS):  # bounds the gathered candidates to RESCORE_ROWS x m x dim floats
        cand = run_i[rows]  # [r, m]
        uniq, inverse = torch.unique(cand, return_inverse=True)
        cand_docs = _to_device_rows(docs, uniq, device)  # fp32, each candidate document read once
        scores = torch.bmm(cand_docs[inverse], q32[rows].unsqueeze(2)).squeeze(2)  # [r, m] fp32
        tie = cand if key is None else key[cand]
        by_tie = torch.argsort(tie, dim=1)
        scores, cand = scores.gather(1, by_tie), cand.gather(1, by_tie)
        top_v, order = torch.sort(scores, dim=1, descending=True, stable=True)
        out_v[rows], out_i[rows] = top_v[:, :kk], cand.gather(1, order[:, :kk])
    crowded = (~enough).nonzero().squeeze(1)
    if len(crowded):  # the margin held more near-ties than m: this row searched again in fp32
        out_v[crowded], out_i[crowded] = _torch_rows(q32[crowded], docs, kk, device, doc_block, key)
    return out_v, out_i


def _to_device_rows(docs, rows: torch.Tensor, device: torch.device) -> torch.Tensor:
    """The rows ``rows`` (sorted, distinct) of ``docs`` as fp32 on ``device``; a memmap reads only those."""
    if torch.is_tensor(docs):
        return docs[rows.to(docs.device)].to(device, torch.float32)
    return torch.from_numpy(np.asarray(docs[rows.cpu().numpy()], dtype=np.float32)).to(device)


@torch.no_grad()
def _torch_rows(q: torch.Tensor, docs, kk: int, device: torch.device, doc_block: int,
                key: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact top-kk of the query rows ``q`` over all docs, streamed in doc blocks (``key``: tie key on
    ``device``)."""
    run_v = torch.empty((q.shape[0], 0), dtype=torch.float32, device=device)
    run_i = torch.empty((q.shape[0], 0), dtype=torch.int64, device=device)
    for offset, d in _doc_blocks(docs, device, q.dtype, doc_block):
        block_key = None if key is None else key[offset: offset + d.shape[0]]
        vals, idx = block_topk(_scores(q, d), kk, block_key)
        run_v, run_i = merge_topk(run_v, run_i, vals, idx + offset, kk, key)
    return run_v, run_i


def block_topk(scores: torch.Tensor, k: int, key: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact top-k columns of every row of ``scores`` (ties: smaller column, or smaller ``key`` [n] of
    the column), in column order (any order with ``key``: the merge sorts)."""
    n = scores.shape[1]
    if k >= n:
        cols = torch.arange(n, device=scores.device).expand(scores.shape[0], n)
        _raise_on_nan(scores)
        return scores, cols
    vals, idx = torch.topk(scores, k + 1, dim=1)  # sorted descending
    _raise_on_nan(vals[:, :1])
    tied = vals[:, k - 1] == vals[:, k]  # a tie across the cut: which tied columns get in is arbitrary
    vals, idx = vals[:, :k], idx[:, :k]
    if bool(tied.any()):
        rows = tied.nonzero().squeeze(1)
        sub = scores[rows]
        kth = vals[rows, k - 1 :]
        cols = (torch.arange(n, device=scores.device) if key is None else key).expand_as(sub)
        # everything above the k-th score first (rank -1), then tied columns by index / key, the rest never
        never = torch.iinfo(torch.int64).max
        rank = torch.where(sub > kth, -1, torch.where(sub == kth, cols, never))
        pick = torch.topk(rank, k, dim=1, largest=False).indices
        vals[rows], idx[rows] = sub.gather(1, pick), pick
    if key is not None:
        return vals, idx
    order = torch.argsort(idx, dim=1)
    return vals.gather(1, order), idx.gather(1, order)


def merge_topk(run_v, run_i, vals, idx, k: int, key: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Merge a running top-k (score desc, ties by index) with a later block's candidates in index order.

    Every running index is smaller than every new one, so a stable descending sort of the concatenation
    keeps equal scores in index order: the tie rule without a second key. With a tie ``key`` (indexed by
    document) the candidates are put in key order first, then sorted stably by score.
    """
    cat_v, cat_i = torch.cat([run_v, vals], dim=1), torch.cat([run_i, idx], dim=1)
    if key is not None:
        by_key = torch.argsort(key[cat_i], dim=1)
        cat_v, cat_i = cat_v.gather(1, by_key), cat_i.gather(1, by_key)
    sorted_v, order = torch.sort(cat_v, dim=1, descending=True, stable=True)
    return sorted_v[:, :k], cat_i.gather(1, order[:, :k])


def _raise_on_nan(vals: torch.Tensor) -> None:
    if bool(torch.isnan(vals).any()):  # topk puts NaN first, so one look at the best column suffices
        raise DataError("embeddings", "NaN scores: the query or document embeddings contain NaN")


def canonical_order(vals: np.ndarray, idx: np.ndarray, order_key: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Reorder each row to score descending, ties by the smaller index (or smaller ``order_key``, an
    array shaped like ``idx``)."""
    v, i = torch.from_numpy(np.ascontiguousarray(vals)), torch.from_numpy(np.ascontiguousarray(idx))
    by = i if order_key is None else torch.from_numpy(np.ascontiguousarray(order_key))
    by_index = torch.argsort(by, dim=1)
    v, i = v.gather(1, by_index), i.gather(1, by_index)
    _, order = torch.sort(v, dim=1, descending=True, stable=True)
    return v.gather(1, order).numpy(), i.gather(1, order).numpy()


def _faiss_index(docs, backend: str, doc_block: int, options: dict[str, Any]):
    import faiss

    nd, dim = _shape(docs)
    if backend == "faiss_flat":
        index = faiss.IndexFlatIP(dim)
    elif backend == "faiss_hnsw":
        index = faiss.IndexHNSWFlat(dim, int(options.get("hnsw_m", 32)), faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efSearch = int(options.get("ef_search", 128))
        index.hnsw.efConstruction = int(options.get("ef_construction", 80))
    else:
        nlist = int(options.get("nlist", max(1, min(nd // 39, int(4 * np.sqrt(nd))))))
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, faiss.METRIC_INNER_PRODUCT)
        sample = np.random.default_rng(0).choice(nd, size=min(nd, nlist * 64), replace=False)
        index.train(_float32(docs, np.sort(sample)))
        index.nprobe = int(options.get("nprobe", 16))
    for start in range(0, nd, doc_block):
        index.add(_float32(docs, slice(start, min(start + doc_block, nd))))
    return index


def _float32(x, rows) -> np.ndarray:
    block = x[rows]
    block = block.detach().cpu().numpy() if torch.is_tensor(block) else block
    return np.ascontiguousarray(block, dtype=np.float32)


def _faiss_blocks(queries, docs, kk, backend, query_block, doc_block, options, key=None):
    index = _faiss_index(docs, backend, doc_block, options)
    nq, nd = _shape(queries)[0], _shape(docs)[0]
    for start in range(0, nq, query_block):
        q = _float32(queries, slice(start, min(start + query_block, nq)))
        extra = 1 if backend == "faiss_flat" and kk < nd else 0
        vals, idx = index.search(q, kk + extra)
        if backend != "faiss_flat":  # approximate: fewer than kk hits come back as index -1
            yield start, *_order_approximate(vals, idx, key)
            continue
        tied = vals[:, kk - 1] == vals[:, kk] if extra else np.zeros(len(q), bool)
        vals, idx = vals[:, :kk], idx[:, :kk]
        vals, idx = canonical_order(vals, idx, None if key is None else key.numpy()[idx])
        if tied.any():  # which tied docs faiss kept at the cut is arbitrary: redo those rows exactly
            rows = np.flatnonzero(tied)
            fixed_v, fixed_i = _torch_rows(torch.from_numpy(q[rows]), docs, kk, torch.device("cpu"), doc_block, key)
            vals[rows], idx[rows] = fixed_v.numpy(), fixed_i.numpy()
        yield start, vals, idx


def _order_approximate(vals: np.ndarray, idx: np.ndarray, key=None) -> tuple[np.ndarray, np.ndarray]:
    missing = idx < 0
    last = np.iinfo(np.int64).max
    vals = np.where(missing, -np.inf, vals).astype(np.float32)
    order_key = None if key is None else np.where(missing, last, key.numpy()[np.where(missing, 0, idx)])
    idx = np.where(missing, last, idx).astype(np.int64)
    vals, idx = canonical_order(vals, idx, order_key)
    return vals, np.where(idx == np.iinfo(np.int64).max, -1, idx)


class ConcatRows:
    """Row arrays (memmaps, numpy, CPU torch) read as one [sum of rows, dim] array without copying them:
    a slice (step 1) or an index array of rows reads only the rows it names."""

    def __init__(self, parts):
        self.parts = [p.numpy() if torch.is_tensor(p) else p for p in parts]
        dims = {p.shape[1] for p in self.parts if len(p)}
        if len(dims) > 1:
            raise DataError("embeddings", f"corpora disagree on the embedding dimension: {sorted(dims)}")
        self.bounds = np.cumsum([0] + [len(p) for p in self.parts])
        self.shape = (int(self.bounds[-1]), dims.pop() if dims else self.parts[0].shape[1])
        self.dtype = np.result_type(*[p.dtype for p in self.parts])

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, rows) -> np.ndarray:
        if isinstance(rows, slice):
            start, stop, step = rows.indices(self.shape[0])
            if step != 1:
                raise ValueError("ConcatRows reads slices with step 1")
            pieces = [p[max(start - a, 0): min(stop, b) - a] for p, a, b in zip(self.parts, self.bounds, self.bounds[1:])
                      if start < b and stop > a]
        else:
            rows = np.asarray(rows, dtype=np.int64)
            part = np.searchsorted(self.bounds, rows, side="right") - 1
            order = np.argsort(part, kind="stable")
            pieces = [self.parts[j][rows[order][part[order] == j] - self.bounds[j]] for j in np.unique(part)]
            if pieces:
                return np.concatenate([np.asarray(x, dtype=self.dtype) for x in pieces])[np.argsort(order, kind="stable")]
        if not pieces:
            return np.zeros((0, self.shape[1]), self.dtype)
        return pieces[0] if len(pieces) == 1 else np.concatenate([np.asarray(x, dtype=self.dtype) for x in pieces])
