"""Peak memory of the evaluator on a memory-mapped embedding store, beside the search's own peak.

A store-shaped corpus (fp16 [n, dim] ``.npy`` read as a memmap, as ``EmbeddingStore`` hands it out) of
random L2-normalised rows, 1,000 queries with one relevant passage each, top-100. Each side runs in its
own process, so its peak RSS (``VmHWM`` of /proc/self/status: this process's own high-water mark,
memory-mapped pages included; ``ru_maxrss`` would carry over the parent's peak across exec) is its own:

- ``search``: ``topk.exact_topk`` over the memmap (the search alone);
- ``evaluator``: ``task_evaluator.evaluate_task_embeddings`` on a one-pool ``RetrievalTask`` with the
  same embeddings (doc ids, tie order, the search, metrics, per-query rows);
- ``copy`` (``--copy-baseline``): what the evaluator did before it searched the store in place (the pool
  copied and reordered in RAM, twice), for the before / after comparison.

Both children import the same modules, so the difference is the evaluator's own data.

    python benchmarks/bench_eval_memory.py --docs 1000000 --copy-baseline
    python benchmarks/bench_eval_memory.py --docs 3000000
    python benchmarks/bench_eval_memory.py --smoke        # seconds; run by tests/test_eval_memory.py
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.bench_search import make_embeddings  # noqa: E402


def peak_rss_mb() -> float:
    """This process's peak RSS in MB (Linux ``VmHWM``; ``ru_maxrss`` elsewhere)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _load(args):
    return (np.load(args.workdir / f"queries_{args.queries}x{args.dim}.npy", mmap_mode="r"),
            np.load(args.workdir / f"docs_{args.docs}x{args.dim}.npy", mmap_mode="r"))


def _task(n_docs: int, n_queries: int):
    from hybrid_sweep.data.retrieval_task import DocTable, QueryTable, RetrievalTask, TaskPool

    rng = np.random.default_rng(0)
    doc_ids = [f"doc{i}" for i in range(n_docs)]
    q_ids = [f"q{i}" for i in range(n_queries)]
    qrels = {q: {doc_ids[int(j)]: 1} for q, j in zip(q_ids, rng.integers(0, n_docs, n_queries))}
    empty = [""] * n_docs
    return RetrievalTask("bench", {"c": DocTable(doc_ids, empty, lang="xx")},
                         {"q": QueryTable(q_ids, [""] * n_queries, lang="xx")},
                         [TaskPool("mono", "xx", "xx", "q", ("c",), qrels)])


def run_child(args) -> dict:
    import torch

    from hybrid_sweep.evaluation import task_evaluator
    from hybrid_sweep.evaluation.ranking import tie_order
    from hybrid_sweep.evaluation.topk import exact_topk, iter_topk

    q, d = _load(args)
    out = {"rss_before_mb": peak_rss_mb()}
    start = time.perf_counter()
    if args.child == "search":
        exact_topk(q, d, args.k, query_block=args.query_block)
    elif args.child == "evaluator":
        task = _task(d.shape[0], q.shape[0])
        out["rss_task_mb"] = peak_rss_mb()
        start = time.perf_counter()
        res = task_evaluator.evaluate_task_embeddings(task, {"q": torch.from_numpy(np.asarray(q))}, {"c": d},
                                                      full_rank_max=0, block=args.query_block)
        out["ndcg@10"] = float(res.metrics.set_index(["query_lang", "metric"]).loc[("xx", "ndcg@10"), "value"])
    else:  # the former evaluator's copies: torch.cat of the pool's corpora, then the tie-order permutation
        task = _task(d.shape[0], q.shape[0])
        out["rss_task_mb"] = peak_rss_mb()
        start = time.perf_counter()
        order = tie_order(task.corpora["c"].ids)
        docs = torch.cat([torch.as_tensor(d)])[torch.from_numpy(order)]
        for _ in iter_topk(torch.from_numpy(np.asarray(q)).float(), docs, args.k, query_block=args.query_block):
            pass
    out["wall_s"] = time.perf_counter() - start
    out["peak_rss_mb"] = peak_rss_mb()
    return out


def child(args, which: str) -> dict:
    cmd = [sys.executable, __file__, "--child", which, "--workdir", str(args.workdir), "--k", str(args.k),
           "--docs", str(args.docs), "--queries", str(args.queries), "--dim", str(args.dim),
           "--query-block", str(args.query_block)]
    from benchmarks.common import child_result  # in the parent only: the child's peak memory stays its own

    return child_result(cmd, which)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser()
    p.add_argument("--smoke", action="store_true", help="tiny sizes, seconds")
    p.add_argument("--docs", type=int, default=1_000_000)
    p.add_argument("--queries", type=int, default=1_000)
    p.add_argument("--dim", type=int, default=384)
    p.add_argument("--k", type=int, default=100)
    p.add_argument("--query-block", type=int, default=1024)
    p.add_argument("--copy-baseline", action="store_true", help="also run the former copying evaluator")
    p.add_argument("--workdir", type=Path, default=None)
    p.add_argument("--child", choices=["search", "evaluator", "copy"], help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(run_child(args)))
        return {}
    if args.smoke:
        args.docs, args.queries, args.dim, args.copy_baseline = 3_000, 40, 16, True
    if args.workdir is None:
        with tempfile.TemporaryDirectory(prefix="bench_eval_memory_") as tmp:
            args.workdir = Path(tmp)
            return bench(args)
    return bench(args)


def bench(args) -> dict:
    args.workdir.mkdir(parents=True, exist_ok=True)
    make_embeddings(args.workdir / f"docs_{args.docs}x{args.dim}.npy", args.docs, args.dim, seed=1)
    make_embeddings(args.workdir / f"queries_{args.queries}x{args.dim}.npy", args.queries, args.dim, seed=2)
    store_mb = args.docs * args.dim * 2 / 2**20
    print(f"machine: CPU, {os.cpu_count()} cores; {args.queries} queries x {args.docs} passages, {args.dim}-d fp16 "
          f"memmap ({store_mb:.0f} MB), top-{args.k}")
    out = {name: child(args, name) for name in ["search", "evaluator"] + (["copy"] if args.copy_baseline else [])}
    for name, r in out.items():
        extra = f", after building the task {r['rss_task_mb']:.0f} MB" if "rss_task_mb" in r else ""
        print(f"{name}: peak RSS {r['peak_rss_mb']:.0f} MB (at start {r['rss_before_mb']:.0f} MB{extra}), "
              f"{r['wall_s']:.2f} s")
    ratio = out["evaluator"]["peak_rss_mb"] / out["search"]["peak_rss_mb"]
    print(f"evaluator / search peak: {ratio:.3f}")
    if "copy" in out:
        print(f"former copying evaluator / search peak: {out['copy']['peak_rss_mb'] / out['search']['peak_rss_mb']:.3f}")
    out["ratio"] = ratio
    return out


if __name__ == "__main__":
    main()
