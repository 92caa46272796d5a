"""TREC run and qrels files: ``qid Q0 docid rank score tag`` and ``qid 0 docid 1``."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import numpy as np

from hybrid_sweep.io import atomic_path


def write_run(path: Path, qids: np.ndarray, docids: np.ndarray, ranks: np.ndarray, scores: np.ndarray, tag: str) -> None:
    """All arrays are flat and aligned. Scores keep 9 significant digits (float32 round-trips)."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.writelines(
            f"{q} Q0 {d} {r} {s:.9g} {tag}\n" for q, d, r, s in zip(qids, docids, ranks.tolist(), scores.tolist())
        )


@contextmanager
def streaming_run(path: Path, tag: str):
    """A run file written block by block as the search streams; it appears (renamed into place) only
    when the block completes. Yields ``write(qids [b], docids [b, k], scores [b, k])``."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        def write(qids, docids, scores) -> None:
            for q, ds, ss in zip(qids, docids, np.asarray(scores).tolist()):
                f.writelines(f"{q} Q0 {d} {r} {s:.9g} {tag}\n" for r, (d, s) in enumerate(zip(ds, ss), 1))

        yield write


def write_qrels(path: Path, qrels: dict[str, list[str]] | dict[str, dict[str, int]]) -> None:
    """Binary (a list of doc ids per query) or graded (doc id -> grade) qrels."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        for q, docs in qrels.items():
            items = docs.items() if isinstance(docs, dict) else ((d, 1) for d in docs)
            f.writelines(f"{q} 0 {d} {g}\n" for d, g in items)


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
