"""Orchestration overhead of one run on the default config, and the wall time of rerunning a finished
sweep.

overhead = (run wall time seen by the sweep process) - (time inside the run's stages: train, evaluate,
merge). It covers the child process start, its imports, and writing the run's bookkeeping. Data
loading and model building are counted inside the train stage, so they are reported separately from
train_log (first step's elapsed time is measured from the training loop start).
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
        total = timed([f"results_root={tmp}", "encoder.progress=false"])
        run = next(Path(tmp, "runs").iterdir())
        info = json.loads((run / "run.json").read_text())
        stages = json.loads((run / "stages.json").read_text())
        inside = sum(stages.values())
        print(f"default run: command {total:.1f} s, run wall {info['wall_s']:.1f} s, stages {inside:.1f} s "
              f"({', '.join(f'{k} {v:.1f}' for k, v in stages.items())})")
        print(f"orchestration overhead inside the run: {info['wall_s'] - inside:.1f} s = "
              f"{100 * (info['wall_s'] - inside) / info['wall_s']:.1f} % of the run; "
              f"whole command incl. Hydra start and collect: {100 * (total - inside) / total:.1f} %")
        sweep = ["-m", "train.seed=0,1,2", "train.max_steps=2", "encoder.progress=false", f"results_root={tmp}/sweep"]
        first = timed(sweep)
        again = timed(sweep)
        print(f"3-run sweep: first {first:.1f} s; rerun of the finished sweep {again:.1f} s")


if __name__ == "__main__":
    main()
