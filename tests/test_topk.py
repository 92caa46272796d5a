"""Blocked top-k search: equal to a brute-force numpy reference, exact ties included."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from hybrid_sweep.errors import ConfigError, DataError
from hybrid_sweep.evaluation.topk import exact_topk, iter_topk

ROOT = Path(__file__).resolve().parents[1]


def reference_topk(queries, docs, k):
    """Brute force: every score in float64-free fp32 numpy, then a lexicographic (score desc, index asc) sort."""
    scores = np.asarray(queries, np.float32) @ np.asarray(docs, np.float32).T
    kk = min(k, docs.shape[0])
    order = np.lexsort((np.broadcast_to(np.arange(docs.shape[0]), scores.shape), -scores), axis=1)[:, :kk]
    return np.take_along_axis(scores, order, 1), order


def tied_embeddings(rng, nq, nd, dim, levels=3):
    """Small-integer embeddings: scores are exact in fp32 and full of ties."""
    return (rng.integers(-levels, levels + 1, (nq, dim)).astype(np.float32),
            rng.integers(-levels, levels + 1, (nd, dim)).astype(np.float32))


@pytest.mark.parametrize(
    "nq,nd,k,query_block,doc_block",
    [(37, 1000, 10, 8, 96), (5, 250, 40, 2, 7), (1, 33, 5, 1024, 65536), (9, 20, 50, 4, 6), (6, 64, 64, 3, 16)],
)
def test_equal_to_reference_with_exact_ties(nq, nd, k, query_block, doc_block):
    q, d = tied_embeddings(np.random.default_rng(nq * nd), nq, nd, 4, levels=1)
    want_v, want_i = reference_topk(q, d, k)
    got_v, got_i = exact_topk(q, d, k, query_block=query_block, doc_block=doc_block)
    assert got_v.dtype == np.float32 and got_i.dtype == np.int64
    assert got_v.shape == (nq, min(k, nd))
    np.testing.assert_array_equal(got_i, want_i)
    np.testing.assert_array_equal(got_v, want_v)


def test_all_scores_equal_keeps_the_first_k_documents():
    q, d = np.ones((3, 4), np.float32), np.ones((100, 4), np.float32)
    _, idx = exact_topk(q, d, 7, doc_block=9)
    np.testing.assert_array_equal(idx, np.tile(np.arange(7), (3, 1)))


def test_fp16_memmap_docs_and_torch_queries(tmp_path):
    rng = np.random.default_rng(1)
    docs = np.lib.format.open_memmap(tmp_path / "d.npy", mode="w+", dtype=np.float16, shape=(1003, 32))
    docs[:] = rng.standard_normal((1003, 32)).astype(np.float16)
    docs.flush()
    docs = np.load(tmp_path / "d.npy", mmap_mode="r")
    q = torch.randn(11, 32, generator=torch.Generator().manual_seed(2), requires_grad=True)
    want_v, want_i = reference_topk(q.detach().numpy(), docs.astype(np.float32), 25)
    got_v, got_i = exact_topk(q, docs, 25, query_block=4, doc_block=100)
    np.testing.assert_array_equal(got_i, want_i)
    np.testing.assert_allclose(got_v, want_v, rtol=1e-5, atol=1e-5)


def test_iter_topk_streams_query_blocks_in_order():
    q, d = tied_embeddings(np.random.default_rng(3), 10, 50, 4)
    blocks = list(iter_topk(q, d, 5, query_block=4, doc_block=16))
    assert [b[0] for b in blocks] == [0, 4, 8]
    assert [b[1].shape for b in blocks] == [(4, 5), (4, 5), (2, 5)]
    np.testing.assert_array_equal(np.concatenate([b[2] for b in blocks]), reference_topk(q, d, 5)[1])


def test_empty_corpus_and_no_queries():
    v, i = exact_topk(np.zeros((2, 4), np.float32), np.zeros((0, 4), np.float32), 10)
    assert v.shape == (2, 0) and i.shape == (2, 0)
    v, i = exact_topk(np.zeros((0, 4), np.float32), np.ones((5, 4), np.float32), 3)
    assert v.shape == (0, 3)


def test_bad_arguments_name_the_field():
    q, d = np.zeros((2, 4), np.float32), np.zeros((3, 5), np.float32)
    with pytest.raises(DataError, match="dim"):
        exact_topk(q, d, 1)
    with pytest.raises(ConfigError, match="^k:"):
        exact_topk(q, q, 0)
    with pytest.raises(ConfigError, match="^backend:"):
        exact_topk(q, q, 1, backend="annoy")
    with pytest.raises(ConfigError, match="^compute_dtype:"):
        exact_topk(q, q, 1, compute_dtype="float8")
    with pytest.raises(DataError, match="NaN"):
        exact_topk(np.full((1, 4), np.nan, np.float32), q, 1)


# --- low-precision candidates, fp32 re-score (issue 21): the float32 result, whatever the precision ---------

def _unit_rows(rng, n, dim, dtype=np.float32):
    x = rng.standard_normal((n, dim)).astype(np.float32)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(dtype)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_low_precision_search_returns_the_float32_top_k(dtype, tmp_path, monkeypatch):
    """Unit-norm embeddings like an encoder's (fp16 memmap store, as the evaluator reads it): the same
    indices as the fp32 search and fp32 scores; rounding alone (no re-score) changes some of them. The
    re-score runs in chunks of 7 queries here (several per query block)."""
    import hybrid_sweep.evaluation.topk as topk

    monkeypatch.setattr(topk, "RESCORE_ROWS", 7)
    rng = np.random.default_rng(11)
    docs = np.lib.format.open_memmap(tmp_path / "d.npy", mode="w+", dtype=np.float16, shape=(6000, 48))
    docs[:] = _unit_rows(rng, 6000, 48, np.float16)
    docs.flush()
    docs = np.load(tmp_path / "d.npy", mmap_mode="r")
    q = _unit_rows(rng, 40, 48)
    want_v, want_i = exact_topk(q, docs, 30, doc_block=1000)
    got_v, got_i = exact_topk(q, docs, 30, doc_block=1000, query_block=32, compute_dtype=dtype)
    np.testing.assert_array_equal(got_i, want_i)
    np.testing.assert_allclose(got_v, want_v, rtol=1e-6, atol=1e-6)
    low = torch.tensor(q).to(getattr(torch, dtype)).float().numpy(), \
        torch.tensor(np.asarray(docs, np.float32)).to(getattr(torch, dtype)).float().numpy()
    assert (reference_topk(*low, 30)[1] != want_i).any()  # the re-score is what makes them equal


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_low_precision_search_keeps_exact_ties_and_the_tie_key(dtype):
    q, d = tied_embeddings(np.random.default_rng(12), 25, 900, 4, levels=1)
    np.testing.assert_array_equal(exact_topk(q, d, 12, doc_block=200, compute_dtype=dtype)[1], reference_topk(q, d, 12)[1])
    key = np.random.default_rng(13).permutation(900)
    want = exact_topk(q, d, 12, doc_block=200, tie_key=key)
    got = exact_topk(q, d, 12, doc_block=200, tie_key=key, compute_dtype=dtype)
    np.testing.assert_array_equal(got[1], want[1])
    np.testing.assert_array_equal(got[0], want[0])


def test_a_row_too_crowded_for_the_margin_is_searched_again_in_float32(monkeypatch):
    """200 near-copies of one document straddle the cut of k = 10: more candidates within the rounding
    bound than the margin keeps, so that row falls back to the fp32 search (counted) and is still exact."""
    import hybrid_sweep.evaluation.topk as topk

    rng = np.random.default_rng(14)
    d = _unit_rows(rng, 3000, 32)
    d[1000:1200] = d[0] + 1e-4 * rng.standard_normal((200, 32)).astype(np.float32)
    q = np.stack([d[0], _unit_rows(rng, 1, 32)[0]])
    calls = []
    real = topk._torch_rows
    monkeypatch.setattr(topk, "_torch_rows", lambda q32, *a, **k: calls.append(len(q32)) or real(q32, *a, **k))
    got = exact_topk(q, d, 10, doc_block=500, compute_dtype="bfloat16")
    monkeypatch.setattr(topk, "_torch_rows", real)
    want = exact_topk(q, d, 10, doc_block=500)
    assert calls == [1]  # only the crowded row, once
    np.testing.assert_array_equal(got[1], want[1])
    np.testing.assert_allclose(got[0], want[0], rtol=1e-6)  # fp32 sums in another order: the last bit may differ


needs_faiss = pytest.mark.skipif(importlib.util.find_spec("faiss") is None,
                                 reason="faiss not installed (the `cpu` or `gpu` extra)")


@needs_faiss
def test_faiss_flat_equals_torch():
    rng = np.random.default_rng(4)
    q, d = rng.standard_normal((30, 24)).astype(np.float32), rng.standard_normal((2000, 24)).astype(np.float16)
    t_v, t_i = exact_topk(q, d, 50, doc_block=300)
    f_v, f_i = exact_topk(q, d, 50, backend="faiss_flat", doc_block=300)
    np.testing.assert_array_equal(f_i, t_i)
    np.testing.assert_allclose(f_v, t_v, rtol=1e-5, atol=1e-5)


@needs_faiss
def test_faiss_flat_resolves_ties_by_index():
    q, d = tied_embeddings(np.random.default_rng(5), 20, 300, 4, levels=1)
    np.testing.assert_array_equal(exact_topk(q, d, 15, backend="faiss_flat")[1], reference_topk(q, d, 15)[1])


@needs_faiss
@pytest.mark.parametrize("backend", ["faiss_ivf", "faiss_hnsw"])
def test_approximate_backends_find_most_true_neighbours(backend):
    rng = np.random.default_rng(6)
    d = rng.standard_normal((3000, 16)).astype(np.float32)
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    q = d[:20] + 0.01 * rng.standard_normal((20, 16)).astype(np.float32)
    _, want = reference_topk(q, d, 10)
    v, got = exact_topk(q, d, 10, backend=backend, faiss_options={"nprobe": 8, "ef_search": 64})
    assert (np.diff(v, axis=1) <= 0).all()
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(got, want)])
    assert recall >= 0.8
    assert (got[:, 0] == np.arange(20)).all()  # each query's own near-copy comes first


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_equals_reference_and_half_precision_is_close():
    q, d = tied_embeddings(np.random.default_rng(7), 40, 3000, 8, levels=1)
    want_v, want_i = reference_topk(q, d, 30)
    got_v, got_i = exact_topk(q, d.astype(np.float16), 30, device="cuda", query_block=16, doc_block=700)
    np.testing.assert_array_equal(got_i, want_i)
    np.testing.assert_array_equal(got_v, want_v)
    rng = np.random.default_rng(8)
    q, d = rng.standard_normal((20, 64)).astype(np.float16), rng.standard_normal((5000, 64)).astype(np.float16)
    want_v, _ = reference_topk(q.astype(np.float32), d.astype(np.float32), 10)
    half_v, _ = exact_topk(q, d, 10, device="cuda", compute_dtype="float16", doc_block=1000)
    np.testing.assert_allclose(half_v, want_v, rtol=1e-3, atol=1e-2)  # fp16 inputs exact, fp32 accumulation


def test_bench_search_smoke(tmp_path):
    with_mteb = importlib.util.find_spec("mteb") is not None
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_search.py"), "--smoke", "--workdir", str(tmp_path)]
        + ([] if with_mteb else ["--no-mteb"]),
        capture_output=True, text=True, cwd=ROOT, timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "ours (cpu, float32)" in out.stdout
    if with_mteb:
        assert "equal top-k: True" in out.stdout


def _reference_with_key(q, d, k, key):
    """Brute force under (score desc, key asc): search the docs permuted into key order, map back."""
    perm = np.argsort(key)
    v, i = reference_topk(q, d[perm], k)
    return v, perm[i]


@pytest.mark.parametrize("backend", ["torch", pytest.param("faiss_flat", marks=needs_faiss)])
@pytest.mark.parametrize("nq,nd,k,doc_block", [(23, 400, 10, 37), (7, 60, 60, 16), (4, 90, 100, 1000)])
def test_tie_key_orders_equal_scores_by_key(backend, nq, nd, k, doc_block):
    rng = np.random.default_rng(nd)
    q, d = tied_embeddings(rng, nq, nd, 3, levels=1)  # many ties, also across block borders and the cut
    key = rng.permutation(nd) * 3 + 5  # distinct, not 0..n-1, not index order
    want_v, want_i = _reference_with_key(q, d, k, key)
    got_v, got_i = exact_topk(q, d, k, doc_block=doc_block, query_block=5, backend=backend, tie_key=key)
    np.testing.assert_array_equal(got_i, want_i)
    np.testing.assert_array_equal(got_v, want_v)
    assert not np.array_equal(got_i, reference_topk(q, d, k)[1])  # the key did change the order


def test_tie_key_of_the_wrong_length_is_named():
    q = np.ones((2, 4), np.float32)
    with pytest.raises(DataError, match="tie_key"):
        exact_topk(q, q, 1, tie_key=np.arange(3))


def test_concat_rows_reads_several_arrays_as_one(tmp_path):
    from hybrid_sweep.evaluation.topk import ConcatRows

    rng = np.random.default_rng(8)
    parts = [rng.standard_normal((n, 5)).astype(np.float16) for n in (7, 0, 11, 3)]
    np.save(tmp_path / "a.npy", parts[0])
    rows = ConcatRows([np.load(tmp_path / "a.npy", mmap_mode="r"), parts[1], torch.from_numpy(parts[2]), parts[3]])
    whole = np.concatenate(parts)
    assert rows.shape == (21, 5) and len(rows) == 21
    for a, b in [(0, 21), (5, 9), (7, 18), (19, 40), (3, 3)]:
        np.testing.assert_array_equal(rows[a:b], whole[a:b])
    pick = np.array([20, 0, 8, 7, 6, 18])
    np.testing.assert_array_equal(rows[pick], whole[pick])
    q = rng.standard_normal((6, 5)).astype(np.float32)
    np.testing.assert_array_equal(exact_topk(q, rows, 8, doc_block=4)[1], exact_topk(q, whole, 8)[1])
