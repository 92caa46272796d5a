"""Orchestration overhead on the default config, and the wall time of rerunning a finished sweep.

A 5-run sweep (`+sweep=seeds`, the embedded default: synthetic data, tiny encoder, 150 steps) is timed
as a whole command. Time inside the runs' stages (train: data, model, training; evaluate; merge) is
read from each run's stages.json; the rest is orchestration: Hydra start-up, composing each job, the
imports the sweep process does once before forking run processes, locks, bookkeeping and collect.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import ROOT, machine


def timed(args: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "hybrid_sweep", *args], cwd=ROOT, check=True, capture_output=True)
    return time.perf_counter() - start


def main():
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory() as tmp:
        sweep = ["-m", "+sweep=seeds", "encoder.progress=false", "analyze=false", f"results_root={tmp}"]
        total = timed(sweep)
        stages = [json.loads((p / "stages.json").read_text()) for p in Path(tmp, "runs").iterdir()]
        inside = sum(sum(s.values()) for s in stages)
        per_run = [json.loads((p / "run.json").read_text())["wall_s"] for p in Path(tmp, "runs").iterdir()]
        print(f"5-run sweep: command {total:.1f} s; inside the runs' stages {inside:.1f} s; "
              f"run wall times {', '.join(f'{w:.1f}' for w in per_run)} s")
        print(f"orchestration overhead: {total - inside:.1f} s = {100 * (total - inside) / total:.1f} % of the sweep "
              f"({(total - inside) / len(stages):.1f} s per run)")
        again = timed(sweep)
        print(f"rerun of the finished sweep: {again:.1f} s")


if __name__ == "__main__":
    main()
