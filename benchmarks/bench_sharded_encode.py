"""Sharded corpus encoding: one process vs two gloo ranks filling the embedding store, on CPU.

A synthetic corpus (100,000 passages of 8-60 words from a 5,000-word vocabulary, seeded) is encoded
into a fresh embedding store by the tiny encoder (2-layer BERT, hidden 64, max length 64, batch 128)
exactly as the task evaluator does it (``EmbeddingStore.embeddings``, ``shard_rows_for(n)`` rows per
shard): 1 process x 1 thread, 2 ranks x 1 thread (``evaluation.sharded``: shard i on rank i % 2,
rank 0 waits and assembles) and 1 process x 2 threads, so that processes x threads <= 2 cores. Every
mode runs in fresh spawned processes (same start-up for all; --smoke runs 1 x 1 in this process).
``encode`` is rank 0's wall from the barrier to the finished store (with each rank's CPU seconds over
the same span: the work split); ``total`` adds process start, imports and the model load. The stores are compared bit for bit with the 1 x 1 one. The load average
is printed beside every mode: the machine is shared.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import random
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import machine, parser

MODES = (("1 proc x 1 thread", 1, 1), ("2 ranks x 1 thread", 2, 1), ("1 proc x 2 threads", 1, 2))
KEYS = {"1x1": MODES[0], "2x1": MODES[1], "1x2": MODES[2]}


def corpus(n: int, seed: int = 0) -> tuple[list[str], list[str]]:
    rng = random.Random(seed)
    vocab = [f"w{i}" for i in range(5000)]
    texts = [" ".join(rng.choices(vocab, k=rng.randint(8, 60))) for _ in range(n)]
    return [f"p{i}" for i in range(n)], texts


def _rank(rank: int, world: int, threads: int, port: int, model: str, n: int, store: str, ranks: str, out) -> None:
    os.environ["RAYON_NUM_THREADS"] = str(threads)  # the Rust tokenizer's pool counts as threads too
    os.environ["TOKENIZERS_PARALLELISM"] = "true" if threads > 1 else "false"
    import torch

    torch.set_num_threads(threads)
    from benchmarks.common import encoder_config
    from hybrid_sweep.cli import quiet_libraries
    from hybrid_sweep.encoders import build_encoder
    from hybrid_sweep.evaluation.embedding_store import (EmbeddingStore, corpus_fingerprint, encoder_fingerprint,
                                                         shard_rows_for)
    from hybrid_sweep.evaluation.sharded import rank_group

    quiet_libraries()
    enc = build_encoder(encoder_config(f"encoder.path={model}", "encoder.device=cpu", "encoder.progress=false",
                                       "encoder.batch_size=128", "encoder.max_length=64"))
    ids, texts = corpus(n)
    if world > 1:
        import torch.distributed as dist

        dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    with rank_group(Path(ranks)) as plan:  # None in one process
        t0, c0 = time.perf_counter(), time.process_time()
        EmbeddingStore(store).embeddings(encoder_fingerprint(enc), corpus_fingerprint(ids, texts), n,
                                         lambda a, b: enc.encode(texts[a:b], "passage"),
                                         shard_rows=shard_rows_for(n), plan=plan)
        out.put((rank, time.perf_counter() - t0, time.process_time() - c0))


def run_mode(world: int, threads: int, model: Path, n: int, work: Path, spawn: bool = True) -> dict:
    """One mode in fresh spawned processes (``spawn=False``, one process only: in this process, for --smoke)."""
    ctx, port = multiprocessing.get_context("spawn"), _free_port()
    in_process = not spawn and world == 1
    q = queue.Queue() if in_process else ctx.Queue()
    store, ranks = work / "store", work / "ranks"
    load0, t0 = os.getloadavg()[0], time.perf_counter()
    if in_process:
        _rank(0, 1, threads, port, str(model), n, str(store), str(ranks), q)
        got = [q.get()]
    else:
        procs = [ctx.Process(target=_rank, args=(r, world, threads, port, str(model), n, str(store), str(ranks), q))
                 for r in range(world)]
        for p in procs:
            p.start()
        got = [q.get(timeout=3600) for _ in procs]
        for p in procs:
            p.join()
        if any(p.exitcode != 0 for p in procs):
            raise RuntimeError(f"a rank failed: exit codes {[p.exitcode for p in procs]}")
    total = time.perf_counter() - t0
    [emb] = list(store.rglob("embeddings.npy"))
    got = sorted(got)  # (rank, encode wall, CPU seconds of that rank's encoding)
    return {"encode_s": got[0][1], "cpu_s": [round(c, 1) for _, _, c in got], "total_s": total,
            "load": (load0, os.getloadavg()[0]), "emb": np.load(emb)}


def main(argv=None):
    ap = parser(__doc__)
    ap.add_argument("--passages", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=2, help="each mode this many times (order rotated); best kept")
    ap.add_argument("--modes", default="1x1,2x1,1x2", help="processes x threads, the first is the reference")
    args = ap.parse_args(argv)
    modes = tuple(KEYS[m] for m in args.modes.split(","))
    n, modes, rounds = (2000, MODES[:2], 1) if args.smoke else (args.passages, modes, args.rounds)
    from hybrid_sweep.encoders.tiny import build_tiny_model

    results: dict[str, list[dict]] = {name: [] for name, _, _ in modes}
    with tempfile.TemporaryDirectory(prefix="bench_sharded_") as tmp:
        model = Path(tmp) / "model"
        build_tiny_model(corpus(min(n, 20_000))[1], model, vocab_size=8000, layers=2, max_length=64).save(str(model))
        print(f"machine: {machine()}; {n} passages, tiny encoder (2 layers, hidden 64), shards of "
              f"{_shard_rows(n)} rows")
        for r in range(rounds):
            order = modes[r % len(modes):] + modes[: r % len(modes)]
            for name, world, threads in order:
                res = run_mode(world, threads, model, n, Path(tmp) / f"{r}-{world}x{threads}", spawn=not args.smoke)
                results[name].append(res)
                print(f"round {r + 1} {name}: encode {res['encode_s']:.1f} s ({n / res['encode_s']:,.0f} passages/s), "
                      f"total {res['total_s']:.1f} s, CPU s per rank {res['cpu_s']}, "
                      f"load average {res['load'][0]:.2f} -> {res['load'][1]:.2f}")
    ref = min(results[modes[0][0]], key=lambda x: x["encode_s"])
    summary = {}
    for name, _, _ in modes:
        best = min(results[name], key=lambda x: x["encode_s"])
        equal = all(np.array_equal(x["emb"], ref["emb"]) for x in results[name])
        diff = max(float(np.abs(x["emb"].astype(np.float32) - ref["emb"].astype(np.float32)).max())
                   for x in results[name])
        summary[name] = {"encode_s": best["encode_s"], "total_s": best["total_s"], "equal": equal, "max_abs_diff": diff}
        print(f"{name}: best encode {best['encode_s']:.1f} s, total {best['total_s']:.1f} s, "
              f"speed-up {ref['encode_s'] / best['encode_s']:.2f}x, store equal to 1x1 bit for bit: {equal} "
              f"(max |diff| {diff:.2e})")
    return summary


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _shard_rows(n: int) -> int:
    from hybrid_sweep.evaluation.embedding_store import shard_rows_for

    return shard_rows_for(n)


if __name__ == "__main__":
    main()
