"""Top-k search over a million candidates: our blocked search vs MTEB's own exact search, same embeddings.

Random L2-normalised 384-d embeddings (fp16 .npy files read as memmaps), 1,000 queries x 1,000,000
candidates, top-100. Each method runs in its own process so its peak RSS (``ru_maxrss``, memmapped
pages included) is its own. MTEB's side is ``mteb.models.search_wrappers.SearchEncoderWrapper`` (its
full-corpus exact search: chunks of 50,000, torch matmul + topk, heap merge) over a model that hands
it the same precomputed embeddings; we time its whole ``search`` call and, separately, the
similarity/top-k/merge part it logs itself. Results are compared as per-query top-k sets.

    python benchmarks/bench_search.py                 # full size, CPU (run once: minutes)
    python benchmarks/bench_search.py --device cuda   # the same on a GPU, with matmul TFLOP/s
    python benchmarks/bench_search.py --smoke         # seconds; run by tests/test_topk.py

Imports stay light (numpy, torch; mteb only in its child process): no Hydra needed on a GPU box.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def make_embeddings(path: Path, rows: int, dim: int, seed: int, chunk: int = 65536) -> None:
    """Normalised Gaussian rows as fp16, written in chunks (never the whole matrix in memory)."""
    if path.exists():
        return
    out = np.lib.format.open_memmap(path.with_suffix(".tmp.npy"), mode="w+", dtype=np.float16, shape=(rows, dim))
    rng = np.random.default_rng(seed)
    for start in range(0, rows, chunk):
        x = rng.standard_normal((min(chunk, rows - start), dim), dtype=np.float32)
        out[start : start + len(x)] = x / np.linalg.norm(x, axis=1, keepdims=True)
    out.flush()
    del out
    os.replace(path.with_suffix(".tmp.npy"), path)


def load(args):
    return (np.load(args.workdir / f"queries_{args.queries}x{args.dim}.npy", mmap_mode="r"),
            np.load(args.workdir / f"docs_{args.docs}x{args.dim}.npy", mmap_mode="r"))


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def run_ours(args) -> dict:
    import torch

    from hybrid_sweep.evaluation.topk import exact_topk

    q, d = load(args)
    out = {}
    for dtype in ["float32"] + (["float16"] if args.device == "cuda" else []):
        if args.device == "cuda":  # warm-up: CUDA context, cuBLAS handles
            exact_topk(q[:8], d[: args.doc_block], args.k, device="cuda", compute_dtype=dtype)
            torch.cuda.synchronize()
        rss_before = peak_rss_mb()
        start = time.perf_counter()
        vals, idx = exact_topk(q, d, args.k, device=args.device, query_block=args.query_block,
                               doc_block=args.doc_block, backend=args.backend, compute_dtype=dtype)
        wall = time.perf_counter() - start
        flops = 2.0 * q.shape[0] * d.shape[0] * d.shape[1]
        out[dtype] = {"wall_s": wall, "tflops": flops / wall / 1e12, "peak_rss_mb": peak_rss_mb(),
                      "peak_rss_before_mb": rss_before}
        if args.device == "cuda":
            out[dtype]["matmul"] = matmul_only(q, d, args, dtype)
            out[dtype]["cuda_peak_mb"] = torch.cuda.max_memory_allocated() / 2**20
        np.save(args.workdir / f"ours_{dtype}_idx.npy", idx)
        np.save(args.workdir / f"ours_{dtype}_vals.npy", vals)
        if dtype == "float32":
            fp32_idx = idx
        else:  # candidates in half precision, fp32 re-score: must be the fp32 top-k
            out[dtype]["equal_topk_to_float32"] = bool(np.array_equal(idx, fp32_idx))
    return out


def matmul_only(q, d, args, dtype) -> dict:
    """The score matmul alone, docs already on the GPU: the part the roofline speaks about."""
    import torch

    tdt = {"float32": torch.float32, "float16": torch.float16}[dtype]
    qt = torch.from_numpy(np.asarray(q)).cuda().to(tdt)
    dt = torch.from_numpy(np.asarray(d)).cuda().to(tdt)
    kwargs = {} if dtype == "float32" else {"out_dtype": torch.float32}
    for _ in range(2):
        torch.mm(qt, dt[: args.doc_block].T, **kwargs)
    torch.cuda.synchronize()
    start = time.perf_counter()
    for s in range(0, dt.shape[0], args.doc_block):
        torch.mm(qt, dt[s : s + args.doc_block].T, **kwargs)
    torch.cuda.synchronize()
    wall = time.perf_counter() - start
    return {"wall_s": wall, "tflops": 2.0 * qt.shape[0] * dt.shape[0] * dt.shape[1] / wall / 1e12}


class _SimilarityLog(logging.Handler):
    """Collects MTEB's own 'computing similarity took X s' per-search summary line."""

    seconds: float | None = None

    def emit(self, record):
        found = re.search(r"computing similarity took ([0-9.]+)s", record.getMessage())
        if found and "Searched" in record.getMessage():
            self.seconds = float(found.group(1))


def run_mteb(args) -> dict:
    import datasets
    import mteb
    from mteb.mocks.mock_tasks.retrieval import MockRetrievalTask
    from mteb.models.search_wrappers import SearchEncoderWrapper
    from mteb.similarity_functions import dot_score
    from mteb.types import PromptType

    datasets.disable_progress_bars()
    q, d = load(args)

    class Precomputed:
        """Hands MTEB the stored embeddings: all queries, then the corpus chunk by chunk in order."""

        mteb_model_meta = None

        def __init__(self):
            self.next_doc = 0

        def encode(self, inputs, *, prompt_type=None, **kwargs):
            if prompt_type == PromptType.query:
                return np.asarray(q)
            n = len(inputs.dataset)
            chunk = np.asarray(d[self.next_doc : self.next_doc + n])
            self.next_doc += n
            return chunk

        def similarity(self, a, b):
            return dot_score(a, b)

    corpus = datasets.Dataset.from_dict({"id": [str(i) for i in range(d.shape[0])], "title": [""] * d.shape[0],
                                         "text": ["x"] * d.shape[0]})
    queries = datasets.Dataset.from_dict({"id": [f"q{i}" for i in range(q.shape[0])], "text": ["x"] * q.shape[0]})
    handler = _SimilarityLog()
    logging.getLogger("mteb.models.search_wrappers").addHandler(handler)
    logging.getLogger("mteb.models.search_wrappers").setLevel(logging.INFO)
    wrapper = SearchEncoderWrapper(Precomputed())
    meta = MockRetrievalTask.metadata
    common = {"task_metadata": meta, "hf_split": "test", "hf_subset": "default",
              "encode_kwargs": {"batch_size": 1024, "show_progress_bar": False}}
    rss_before = peak_rss_mb()
    start = time.perf_counter()
    wrapper.index(corpus, **common)
    results = wrapper.search(queries, top_k=args.k, **common)
    wall = time.perf_counter() - start
    idx = np.full((q.shape[0], args.k), -1, np.int64)
    for row in range(q.shape[0]):
        hits = sorted(results[f"q{row}"].items(), key=lambda kv: (-kv[1], int(kv[0])))
        idx[row, : len(hits)] = [int(doc) for doc, _ in hits]
    np.save(args.workdir / "mteb_idx.npy", idx)
    return {"wall_s": wall, "similarity_s": handler.seconds, "peak_rss_mb": peak_rss_mb(),
            "peak_rss_before_mb": rss_before, "mteb": mteb.__version__}


def compare(workdir: Path, ours: str, theirs: str, tol: float = 1e-5) -> tuple[int, int, int]:
    """(queries with identical top-k sets, queries differing only by near-equal scores at the cut, all)."""
    a, b = np.load(workdir / ours), np.load(workdir / theirs)
    vals = np.load(workdir / ours.replace("_idx", "_vals"))
    same = near = 0
    for row in range(len(a)):
        sa, sb = set(a[row].tolist()), set(b[row].tolist())
        if sa == sb:
            same += 1
        elif len(sa - sb) <= 2 and all(vals[row, list(a[row]).index(x)] >= vals[row, -1] - tol for x in sa - sb):
            near += 1  # a swap at the k-th place between scores equal to float rounding
    return same, near, len(a)


def child(args, which: str) -> dict:
    cmd = [sys.executable, __file__, "--child", which, "--workdir", str(args.workdir), "--k", str(args.k),
           "--docs", str(args.docs), "--queries", str(args.queries), "--dim", str(args.dim),
           "--device", args.device, "--backend", args.backend, "--query-block", str(args.query_block),
           "--doc-block", str(args.doc_block)]
    from benchmarks.common import child_result  # in the parent only: the child's peak memory stays its own

    return child_result(cmd, which)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--smoke", action="store_true", help="tiny sizes, seconds")
    p.add_argument("--docs", type=int, default=1_000_000)
    p.add_argument("--queries", type=int, default=1_000)
    p.add_argument("--dim", type=int, default=384)
    p.add_argument("--k", type=int, default=100)
    p.add_argument("--device", default="cpu")
    p.add_argument("--backend", default="torch")
    p.add_argument("--query-block", type=int, default=1024)
    p.add_argument("--doc-block", type=int, default=65536)
    p.add_argument("--workdir", type=Path, default=None)
    p.add_argument("--no-mteb", action="store_true", help="only our search (e.g. where mteb is not installed)")
    p.add_argument("--child", choices=["ours", "mteb"], help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        print(json.dumps(run_ours(args) if args.child == "ours" else run_mteb(args)))
        return
    if args.smoke:
        args.docs, args.queries, args.dim, args.k, args.doc_block = 5_000, 50, 32, 10, 1_500
    if args.workdir is None:
        with tempfile.TemporaryDirectory(prefix="bench_search_") as tmp:
            args.workdir = Path(tmp)
            return bench(args)
    return bench(args)


def bench(args):
    args.workdir.mkdir(parents=True, exist_ok=True)
    make_embeddings(args.workdir / f"docs_{args.docs}x{args.dim}.npy", args.docs, args.dim, seed=1)
    make_embeddings(args.workdir / f"queries_{args.queries}x{args.dim}.npy", args.queries, args.dim, seed=2)

    import torch

    device = torch.cuda.get_device_name() if args.device == "cuda" else f"CPU, {os.cpu_count()} cores"
    print(f"machine: {device}, torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"{args.queries} queries x {args.docs} candidates, {args.dim}-d fp16 memmap, top-{args.k}, "
          f"backend {args.backend}, query_block {args.query_block}, doc_block {args.doc_block}")
    ours = child(args, "ours")
    for dtype, r in ours.items():
        line = f"ours ({args.device}, {dtype}): {r['wall_s']:.2f} s, {r['tflops']:.2f} TFLOP/s, peak RSS {r['peak_rss_mb']:.0f} MB"
        if "matmul" in r:
            line += f"; matmul alone {r['matmul']['wall_s']:.3f} s = {r['matmul']['tflops']:.1f} TFLOP/s; GPU peak {r['cuda_peak_mb']:.0f} MB"
        print(line)
    if args.no_mteb:
        return
    theirs = child(args, "mteb")
    print(f"mteb {theirs['mteb']} SearchEncoderWrapper: {theirs['wall_s']:.2f} s (its similarity+top-k+merge: "
          f"{theirs['similarity_s']:.2f} s), peak RSS {theirs['peak_rss_mb']:.0f} MB")
    best = min(r["wall_s"] for r in ours.values())
    print(f"speed-up vs MTEB search: {theirs['wall_s'] / best:.2f}x (vs its similarity part alone: "
          f"{theirs['similarity_s'] / best:.2f}x)")
    ok = True
    for dtype in ours:
        same, near, n = compare(args.workdir, f"ours_{dtype}_idx.npy", "mteb_idx.npy")
        print(f"top-{args.k} sets ({dtype}) equal to MTEB's: {same}/{n} identical, {near} differ by a near-tie at the cut")
        ok &= dtype != "float32" or same + near == n
    print(f"equal top-k: {ok}")


if __name__ == "__main__":
    main()
