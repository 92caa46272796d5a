"""Orchestration overhead on the default config, and the wall time of rerunning a finished sweep.

Default: a 5-run sweep (`+sweep=seeds`, the embedded default: synthetic data, tiny encoder) is timed as a
whole command. Time inside the runs' stages (train: data, model, training; evaluate; merge) is read from
each run's stages.json; the rest is orchestration: Hydra start-up, composing each job, the imports the
sweep process does once before forking run processes, locks, bookkeeping and collect. Then the same
command again (nothing to do) is timed.

--demo ROOT   the 18-run demo (`+sweep=language_pairs -m`, analysis included) into ROOT: run fully once
              unless ROOT already holds it, then the rerun of the finished sweep timed (3 times).
--smoke       a 1-run sweep (zero-shot evaluation of the tiny encoder on 1 article per language).
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


def main(argv=None):
    ap = parser(__doc__)
    ap.add_argument("--demo", type=Path, help="results root for the 18-run demo sweep")
    ap.add_argument("overrides", nargs="*", help="extra overrides for --demo (e.g. train.max_steps=20 on a busy machine)")
    args = ap.parse_args(argv)
    print(f"machine: {machine()}")
    if args.demo:
        return demo_rerun(args.demo, args.overrides)
    return overhead(args.smoke)


if __name__ == "__main__":
    main()
