"""Orchestration overhead on the default config, and the wall time of rerunning a finished sweep.

Default: a 5-run sweep (`+sweep=seeds`, the embedded default: synthetic data, tiny encoder) is timed as a
whole command. Time inside the runs' stages (train: data, model, training; evaluate; merge) is read from
each run's stages.json; the rest is orchestration: Hydra start-up, composing each job, the imports the
sweep process does once before forking run processes, locks, bookkeeping and collect. Then the same
command again (nothing to do) is timed.

--demo ROOT   the 18-run demo (`+sweep=language_pairs -m`, analysis included) into ROOT: run fully once
              unless ROOT already holds it, then the rerun of the finished sweep timed (3 times).
--add-benchmark ROOT  after the demo in ROOT (run first if absent): a copy of it gets FLORES-200 added
              (`+eval@evals.flores=flores`, 3 languages): training steps executed (goal 0), wall time
              against the first sweep, files of the existing runs rewritten (goal none); then a typo in an
              evaluation key of the same sweep: seconds to the one-line error, runs started (goal 0).
--smoke       a 1-run sweep (zero-shot evaluation of the tiny encoder on 1 article per language); with
              --add-benchmark, a 1-run trained sweep instead of the demo.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import ROOT, machine, parser

SMOKE = ["train.enabled=false", "evals.synthetic.subset.articles=1", "encoder.tiny.hidden=32",
         "encoder.tiny.intermediate=64"]  # one zero-shot run: orchestration and one evaluation


def timed(args: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "hybrid_sweep", *args], cwd=ROOT, check=True, capture_output=True)
    return time.perf_counter() - start


def overhead(smoke: bool) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        sweep = ["-m", *(SMOKE if smoke else ["+sweep=seeds"]), "encoder.progress=false", "analyze=false",
                 f"results_root={tmp}"]
        total = timed(sweep)
        runs = [p for p in Path(tmp, "runs").iterdir() if p.is_dir()]
        stages = [json.loads((p / "stages.json").read_text()) for p in runs]
        inside = sum(sum(s.values()) for s in stages)
        per_run = [json.loads((p / "run.json").read_text())["wall_s"] for p in runs]
        print(f"{len(runs)}-run sweep: command {total:.1f} s; inside the runs' stages {inside:.1f} s; "
              f"run wall times {', '.join(f'{w:.1f}' for w in per_run)} s")
        print(f"orchestration overhead: {total - inside:.1f} s = {100 * (total - inside) / total:.1f} % of the sweep "
              f"({(total - inside) / len(stages):.1f} s per run)")
        again = timed(sweep)
        print(f"rerun of the finished sweep: {again:.1f} s")
        return {"runs": len(runs), "total_s": total, "inside_s": inside, "rerun_s": again}


def demo_rerun(root: Path, extra: list[str], repeats: int = 3) -> dict:
    sweep = ["-m", "+sweep=language_pairs", *extra, f"results_root={root}"]
    first = None
    if not (root / "analysis" / "report.md").exists():
        first = timed(sweep)
        print(f"demo sweep, first run: {first:.1f} s")
    reruns = [timed(sweep) for _ in range(repeats)]
    print(f"rerun of the finished demo sweep: {', '.join(f'{r:.2f}' for r in reruns)} s (min {min(reruns):.2f} s)")
    return {"first_s": first, "rerun_s": reruns}


FLORES = ["+eval@evals.flores=flores", "evals.flores.languages=[eng_Latn,deu_Latn,zho_Hans]"]
BOOKKEEPING = {".lock", "config.yaml", "evals.json", "artefacts.json", "stages.json", "DONE"}  # rewritten by design


def _run_files(root: Path) -> dict:
    return {p: p.stat().st_mtime_ns for p in root.glob("runs/*/**/*") if p.is_file() and p.name not in BOOKKEEPING}


def _steps(root: Path) -> int:
    return sum(len(p.read_text().splitlines()) for p in root.glob("runs/*/train_log.jsonl"))


def add_benchmark(root: Path, extra: list[str], smoke: bool) -> dict:
    import shutil

    sweep = ["-m", *(["train.seed=0", "train.max_steps=2", "evals.synthetic.subset.articles=1"] if smoke
                     else ["+sweep=language_pairs"]), *extra]
    first = None
    if not (root / "analysis" / "report.md").exists():
        first = timed([*sweep, f"results_root={root}"])
        print(f"first sweep: {first:.1f} s")
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "root"
        shutil.copytree(root, copy)
        files, steps = _run_files(copy), _steps(copy)
        added = timed([*sweep, *FLORES, f"results_root={copy}"])
        rewritten = [p for p, t in files.items() if not p.exists() or p.stat().st_mtime_ns != t]
        runs = list(copy.glob("runs/*/stages.json"))
        print(f"+FLORES on {len(runs)} finished runs: {added:.1f} s (first sweep {first if first else float('nan'):.1f} s); "
              f"training steps executed {_steps(copy) - steps}; files of the existing runs rewritten {len(rewritten)}")
        start = time.perf_counter()
        typo = subprocess.run([sys.executable, "-m", "hybrid_sweep", *sweep, "+eval@evals.toy=beir",
                               "evals.toy.format=bier", "evals.toy.path=/nonexistent", f"results_root={copy}/typo"],
                              cwd=ROOT, capture_output=True, text=True)
        took = time.perf_counter() - start
        started = len(list((copy / "typo").glob("runs/*")))
        print(f"typo in an evaluation key: exit {typo.returncode} after {took:.1f} s, {started} run folders; "
              f"{typo.stderr.strip().splitlines()[-1] if typo.stderr.strip() else ''}")
        return {"first_s": first, "added_s": added, "steps": _steps(copy) - steps, "rewritten": len(rewritten),
                "typo_s": took, "typo_exit": typo.returncode, "typo_runs": started}


def main(argv=None):
    ap = parser(__doc__)
    ap.add_argument("--demo", type=Path, help="results root for the 18-run demo sweep")
    ap.add_argument("--add-benchmark", type=Path, help="results root of the demo: add FLORES to a copy of it")
    ap.add_argument("overrides", nargs="*", help="extra overrides for --demo (e.g. train.max_steps=20 on a busy machine)")
    args = ap.parse_args(argv)
    print(f"machine: {machine()}")
    if args.add_benchmark:
        return add_benchmark(args.add_benchmark, args.overrides, args.smoke)
    if args.demo:
        return demo_rerun(args.demo, args.overrides)
    return overhead(args.smoke)


if __name__ == "__main__":
    main()
