"""TREC run and qrels files: ``qid Q0 docid rank score tag`` and ``qid 0 docid 1``."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hybrid_sweep.io import atomic_path


def write_run(path: Path, qids: np.ndarray, docids: np.ndarray, ranks: np.ndarray, scores: np.ndarray, tag: str) -> None:
    """All arrays are flat and aligned. Scores keep 9 significant digits (float32 round-trips)."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.writelines(
            f"{q} Q0 {d} {r} {s:.9g} {tag}\n" for q, d, r, s in zip(qids, docids, ranks.tolist(), scores.tolist())
        )


def write_qrels(path: Path, qrels: dict[str, list[str]]) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.writelines(f"{q} 0 {d} 1\n" for q, docs in qrels.items() for d in docs)


def read_run(path: Path) -> dict[str, dict[str, float]]:
    run: dict[str, dict[str, float]] = {}
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        q, _, d, _, s, _ = line.split()
        run.setdefault(q, {})[d] = float(s)
    return run


def read_qrels(path: Path) -> dict[str, dict[str, int]]:
    qrels: dict[str, dict[str, int]] = {}
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        q, _, d, rel = line.split()
        qrels.setdefault(q, {})[d] = int(rel)
    return qrels
