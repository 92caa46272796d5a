"""Helpers shared by the benchmark scripts."""

from __future__ import annotations

import os
import platform
import time
from contextlib import contextmanager
from pathlib import Path

import torch

from hybrid_sweep.data.lareqa import load_lareqa

ROOT = Path(__file__).resolve().parents[1]


def xquad_r():
    root = Path(os.environ.get("HYBRID_SWEEP_DATA", ROOT.parent / "shared" / "data"))
    return load_lareqa("xquad_r", root / "lareqa" / "xquad-r")


def machine() -> str:
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads"


@contextmanager
def timer(store: dict, key: str):
    start = time.perf_counter()
    yield
    store[key] = store.get(key, 0.0) + time.perf_counter() - start
