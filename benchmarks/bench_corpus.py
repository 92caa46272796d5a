"""Training corpora at scale: the Arrow store from 100k to 10M rows of the documented JSONL schema.

For each size it generates a JSONL file (8 parallel languages, one hard negative per row), then, each in a
fresh process: the first conversion (time, peak RSS), the reopen of the converted store, the sampler's
index build, the resident memory after both (RSS, and anonymous = private heap memory, from /proc/self/smaps_rollup), and
sampling + batch fetch per step at batch 1,024 (hybrid ratio, 150 steps after 3 warm-up steps: "cold" =
the first 50, while the store's pages are first mapped in, "warm" = the last 50). Two
processes then open the same store at once and touch all its pages, to show the mapped pages are shared
(each one's PSS is about half its RSS for the mapped part). Growth exponents are the log-log slopes
of each measure against the number of rows. Generated data and stores are deleted at the end.

  python -m benchmarks.bench_corpus                    # 100k, 1M, 10M (needs ≈ 10 GB of disk)
  python -m benchmarks.bench_corpus --smoke            # 2k and 20k rows, a few seconds (run by a test)
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

LANGS = ("ar", "de", "en", "es", "hi", "ru", "vi", "zh")
WORDS = [f"w{i}" for i in range(5000)]


def generate(path: Path, rows: int, seed: int = 0) -> None:
    """``rows`` rows in the documented schema: ``rows / 8`` groups × 8 languages, query ≈ 8 words,
    positive and its one negative ≈ 30 words each."""
    rng = np.random.default_rng(seed)
    chunk = 100_000
    with open(path, "w", encoding="utf-8") as f:
        for start in range(0, rows, chunk):
            n = min(chunk, rows - start)
            words = rng.integers(len(WORDS), size=(n, 68))
            lines = []
            for k in range(n):
                r = start + k
                w = [WORDS[i] for i in words[k]]
                lang = LANGS[r % len(LANGS)]
                lines.append(json.dumps({"group": f"g{r // len(LANGS)}", "lang": lang,
                                         "query": f"{lang} " + " ".join(w[:8]), "positive": " ".join(w[8:38]),
                                         "negatives": [" ".join(w[38:68])]}))
            f.write("\n".join(lines) + "\n")


def memory() -> dict:
    """Resident memory of this process in MB: RSS, PSS (shared pages split between their users), private."""
    fields = {}
    for line in Path("/proc/self/smaps_rollup").read_text().splitlines()[1:]:
        key, value = line.split(":")
        fields[key] = int(value.split()[0]) / 1024
    return {"rss_mb": fields["Rss"], "pss_mb": fields["Pss"], "anon_mb": fields["Anonymous"],
            "private_mb": fields["Private_Clean"] + fields["Private_Dirty"],
            "shared_mb": fields["Shared_Clean"] + fields["Shared_Dirty"]}


def mapped_memory(folder: Path) -> dict:
    """RSS, PSS and shared MB of this process's mappings of files under ``folder`` (the store's files)."""
    totals = {"Rss": 0, "Pss": 0, "Shared_Clean": 0, "Shared_Dirty": 0}
    inside = False
    for line in Path("/proc/self/smaps").read_text().splitlines():
        head = line.split()
        if len(head) >= 5 and "-" in head[0] and not line.endswith(" kB"):  # a mapping's header line
            inside = len(head) >= 6 and head[5].startswith(str(folder))
        elif inside and head[0].rstrip(":") in totals:
            totals[head[0].rstrip(":")] += int(head[1])
    return {"store_rss_mb": totals["Rss"] / 1024, "store_pss_mb": totals["Pss"] / 1024,
            "store_shared_mb": (totals["Shared_Clean"] + totals["Shared_Dirty"]) / 1024}


def _open(path: Path, cache: Path):
    from hybrid_sweep.data.training import file_store

    return file_store(path, "bench", cache)


def _sampler(store, batch: int):
    from hybrid_sweep.sampling import HybridBatchSampler

    return HybridBatchSampler([store], list(LANGS), batch, {"mono": 0.5, "cross": 0.5}, n_negatives=1)


def child(mode: str, path: Path, cache: Path, batch: int, steps: int) -> dict:
    import resource

    from hybrid_sweep.data.training import file_store  # noqa: F401 - imports are not part of the reopen time
    from hybrid_sweep.sampling import HybridBatchSampler  # noqa: F401

    out = {}
    start = time.perf_counter()
    store = _open(path, cache)
    out["open_s"] = time.perf_counter() - start
    if mode == "convert":
        out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        return out
    start = time.perf_counter()
    sampler = _sampler(store, batch)
    out["index_s"] = time.perf_counter() - start
    out["after_open"] = memory()
    for i in range(3):
        sampler.batch_at(i)
    times, cpu = [], []
    for i in range(3, 3 + steps):
        t, c = time.perf_counter(), time.process_time()
        sampler.batch_at(i)
        times.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    first, last = slice(0, max(1, steps // 3)), slice(-max(1, steps // 3), None)
    # "cold": the first third of the steps, while the store's pages are still being mapped in (page
    # faults); "warm": the last third. CPU time is less sensitive to other load on the machine.
    out["step_ms_median"] = 1000 * float(np.median(times[last]))
    out["step_ms_p90"] = 1000 * float(np.percentile(times[last], 90))
    out["step_cpu_ms_median"] = 1000 * float(np.median(cpu[last]))
    out["cold_step_ms_median"] = 1000 * float(np.median(times[first]))
    out["cold_step_cpu_ms_median"] = 1000 * float(np.median(cpu[first]))
    out["after_steps"] = memory()
    return out


def _touch_and_measure(path, cache, barrier, queue):
    store = _open(Path(path), Path(cache))
    total = int(np.asarray(store.group).sum()) + int(np.asarray(store.n_neg).sum())  # every page of the arrays
    total += sum(len(b) for b in store.table.column("positive").chunks)  # and the text column's buffers
    for chunk in store.table.column("positive").chunks:
        np.frombuffer(chunk.buffers()[2], dtype=np.uint8).sum()
    barrier.wait()  # both processes hold the pages now
    queue.put({"pid": os.getpid(), **memory(), **mapped_memory(Path(cache).resolve()), "checksum": total})
    barrier.wait()


def shared_pages(path: Path, cache: Path) -> list[dict]:
    ctx = mp.get_context("spawn")
    barrier, queue = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=_touch_and_measure, args=(str(path), str(cache), barrier, queue)) for _ in range(2)]
    for p in procs:
        p.start()
    result = [queue.get(timeout=600) for _ in procs]
    for p in procs:
        p.join()
    return result


def run_child(mode: str, path: Path, cache: Path, batch: int, steps: int) -> dict:
    cmd = [sys.executable, "-m", "benchmarks.bench_corpus", "--child", mode, "--path", str(path), "--cache", str(cache),
           "--batch", str(batch), "--steps", str(steps)]
    start = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, check=True)
    out = json.loads(res.stdout.strip().splitlines()[-1])
    out["process_s"] = time.perf_counter() - start
    return out


def slope(xs, ys) -> float:
    return float(np.polyfit(np.log(xs), np.log(ys), 1)[0])


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", default="100000,1000000,10000000")
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--child", choices=["convert", "open"])
    ap.add_argument("--path")
    ap.add_argument("--cache")
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, Path(args.path), Path(args.cache), args.batch, args.steps)))
        return {}
    sizes = [2_000, 20_000] if args.smoke else [int(x) for x in args.rows.split(",")]
    batch, steps = (64, 6) if args.smoke else (args.batch, args.steps)
    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench_corpus_"))
    work.mkdir(parents=True, exist_ok=True)
    results = []
    try:
        for n in sizes:
            path = work / f"rows_{n}.jsonl"
            t = time.perf_counter()
            generate(path, n)
            gen_s = time.perf_counter() - t
            cache = work / f"cache_{n}"
            conv = run_child("convert", path, cache, batch, steps)
            opened = run_child("open", path, cache, batch, steps)
            shared = shared_pages(path, cache)
            results.append({"rows": n, "file_mb": path.stat().st_size / 2**20, "generate_s": gen_s,
                            "convert_s": conv["open_s"], "convert_peak_rss_mb": conv["peak_rss_mb"],
                            "reopen_s": opened["open_s"], "index_s": opened["index_s"],
                            "rss_after_open_mb": opened["after_open"]["rss_mb"],
                            "private_after_open_mb": opened["after_open"]["private_mb"],
                            "rss_after_steps_mb": opened["after_steps"]["rss_mb"],
                            "pss_after_steps_mb": opened["after_steps"]["pss_mb"],
                            "private_after_steps_mb": opened["after_steps"]["private_mb"],
                            "anon_after_open_mb": opened["after_open"]["anon_mb"],
                            "anon_after_steps_mb": opened["after_steps"]["anon_mb"],
                            "step_ms_median": opened["step_ms_median"], "step_ms_p90": opened["step_ms_p90"],
                            "step_cpu_ms_median": opened["step_cpu_ms_median"],
                            "cold_step_ms_median": opened["cold_step_ms_median"],
                            "cold_step_cpu_ms_median": opened["cold_step_cpu_ms_median"], "load_average": os.getloadavg()[0],
                            "two_processes": shared})
            print(json.dumps(results[-1]), flush=True)
            path.unlink()
            shutil.rmtree(cache)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    xs = [r["rows"] for r in results]
    exponents = {k: slope(xs, [max(r[k], 1e-9) for r in results])
                 for k in ("convert_s", "reopen_s", "index_s", "anon_after_open_mb", "anon_after_steps_mb", "step_ms_median",
                       "step_cpu_ms_median", "cold_step_cpu_ms_median")}
    from benchmarks.common import machine  # imports torch: not in the measured child processes

    report = {"machine": machine(), "batch": batch, "results": results, "growth_exponents": exponents}
    print(json.dumps({"growth_exponents": exponents}))
    print_table(report)
    return report


def print_table(report: dict) -> None:
    print(f"\nbatch {report['batch']}; {report['machine']}")
    print("| rows | JSONL | first conversion | reopen + sampler index | RSS / anonymous after open "
          "| RSS / anonymous after steps | step, warm: wall median (p90) / CPU | step, cold: wall / CPU | load |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in report["results"]:
        print(f"| {r['rows']:,} | {r['file_mb']:,.0f} MB | {r['convert_s']:.1f} s (peak RSS {r['convert_peak_rss_mb']:,.0f} MB) "
              f"| {r['reopen_s']:.2f} + {r['index_s']:.2f} s | {r['rss_after_open_mb']:,.0f} / {r['anon_after_open_mb']:,.0f} MB "
              f"| {r['rss_after_steps_mb']:,.0f} / {r['anon_after_steps_mb']:,.0f} MB "
              f"| {r['step_ms_median']:.2f} ({r['step_ms_p90']:.2f}) / {r['step_cpu_ms_median']:.2f} ms "
              f"| {r['cold_step_ms_median']:.2f} / {r['cold_step_cpu_ms_median']:.2f} ms | {r['load_average']:.1f} |")
    for r in report["results"]:
        both = ", ".join(f"process RSS {p['rss_mb']:,.0f} MB (PSS {p['pss_mb']:,.0f} MB); store mapping RSS "
                         f"{p['store_rss_mb']:,.0f} MB, PSS {p['store_pss_mb']:,.0f} MB, shared {p['store_shared_mb']:,.0f} MB"
                         for p in r["two_processes"])
        print(f"two processes, {r['rows']:,} rows: {both}")
    print("growth exponents (log-log slope vs rows):",
          ", ".join(f"{k} {v:.2f}" for k, v in report["growth_exponents"].items()))


if __name__ == "__main__":
    main()
