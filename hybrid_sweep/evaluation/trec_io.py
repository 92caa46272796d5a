"""TREC run and qrels files: ``qid Q0 docid rank score tag`` and ``qid 0 docid 1``.

Their names come from config and data values (benchmark, setting, languages): ``pool_file`` builds them
with ``io.inside``, so no value can place a file outside the output folder. TREC files are split on
whitespace, so an id holding whitespace cannot be written: the loaders refuse such ids with the file and
line (``retrieval_task.check_unique``), and the writers here refuse them too (never written unescaped).
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from hybrid_sweep.errors import DataError
from hybrid_sweep.io import atomic_path, inside, safe_part

EXTENSIONS = {"runs": ".trec", "qrels": ".qrels"}
_SPACE = re.compile(r"\s")


def pool_file(output_dir, kind: str, benchmark, setting, query_lang, doc_lang) -> Path:
    """``<output_dir>/<kind>/<benchmark>/<setting>/<query_lang>-<doc_lang><ext>``; each part checked."""
    pair = f"{safe_part(query_lang, where=output_dir)}-{safe_part(doc_lang, where=output_dir)}"
    return inside(output_dir, kind, benchmark, setting, pair, suffix=EXTENSIONS[kind])


def check_trec_ids(ids, path) -> None:
    """One DataError naming the file and the first id that holds whitespace (unreadable in TREC)."""
    for x in ids:
        if _SPACE.search(str(x)):
            raise DataError(path, f"id {str(x)!r} holds whitespace; TREC files cannot hold it")


def _tag(tag) -> str:
    """The run tag (the encoder's name) as one TREC column: whitespace becomes ``_``."""
    return _SPACE.sub("_", str(tag)) or "run"


def write_run(path: Path, qids: np.ndarray, docids: np.ndarray, ranks: np.ndarray, scores: np.ndarray, tag: str) -> None:
    """All arrays are flat and aligned. Scores keep 9 significant digits (float32 round-trips)."""
    check_trec_ids(set(qids.tolist()) | set(docids.tolist()), path)
    tag = _tag(tag)
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.writelines(
            f"{q} Q0 {d} {r} {s:.9g} {tag}\n" for q, d, r, s in zip(qids, docids, ranks.tolist(), scores.tolist())
        )


@contextmanager
def streaming_run(path: Path, tag: str):
    """A run file written block by block as the search streams; it appears (renamed into place) only
    when the block completes. Yields ``write(qids [b], docids [b, k], scores [b, k])``."""
    tag = _tag(tag)
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        def write(qids, docids, scores) -> None:  # docids come from a loaded (checked) corpus
            check_trec_ids(qids, path)
            for q, ds, ss in zip(qids, docids, np.asarray(scores).tolist()):
                f.writelines(f"{q} Q0 {d} {r} {s:.9g} {tag}\n" for r, (d, s) in enumerate(zip(ds, ss), 1))

        yield write


def write_qrels(path: Path, qrels: dict[str, list[str]] | dict[str, dict[str, int]]) -> None:
    """Binary (a list of doc ids per query) or graded (doc id -> grade) qrels."""
    check_trec_ids(qrels, path)
    check_trec_ids((d for docs in qrels.values() for d in docs), path)
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
