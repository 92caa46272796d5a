"""Helpers shared by the benchmark scripts. Every script has ``--smoke``: tiny sizes on the embedded
synthetic benchmark (no data files, seconds), run by tests/test_benchmarks.py so a script cannot rot;
the numbers in docs/benchmarks.md come from the full mode."""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import torch
import yaml

from hybrid_sweep.data.lareqa import load_lareqa
from hybrid_sweep.data.synthetic import synthetic_benchmark

ROOT = Path(__file__).resolve().parents[1]


def parser(doc: str | None) -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=(doc or "").split("\n")[0])
    ap.add_argument("--smoke", action="store_true", help="tiny sizes on the synthetic benchmark (seconds)")
    return ap


def xquad_r():
    root = Path(os.environ.get("HYBRID_SWEEP_DATA", ROOT.parent / "shared" / "data"))
    return load_lareqa("xquad_r", root / "lareqa" / "xquad-r")


def smoke_benchmark(articles: int = 2):
    """The synthetic benchmark's test split, first ``articles`` articles: a few hundred texts."""
    cfg = yaml.safe_load((ROOT / "conf" / "synthetic" / "default.yaml").read_text())
    return synthetic_benchmark(cfg, "test").subset(articles)


def benchmark(smoke: bool):
    return smoke_benchmark() if smoke else xquad_r()


def compose(*overrides: str, config_name: str = "config"):
    """A config composed from conf/ as the CLI would (so presets get their base settings)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    import hybrid_sweep.config  # noqa: F401  (schemas in the ConfigStore)

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return hydra_compose(config_name=config_name, overrides=list(overrides))


def encoder_config(*overrides: str):
    return compose(*overrides, config_name="evaluate").encoder


def machine() -> str:
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads"


@contextmanager
def timer(store: dict, key: str):
    start = time.perf_counter()
    yield
    store[key] = store.get(key, 0.0) + time.perf_counter() - start


def child_result(cmd: list[str], which: str) -> dict:
    """Run a benchmark's measuring child process (its own peak memory); its last stdout line is a JSON
    object. A failing child ends the benchmark with its stderr."""
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"{which} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])
