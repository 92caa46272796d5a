"""BEIR folder layout: ``corpus.jsonl``, ``queries.jsonl``, ``qrels/<split>.tsv``.

corpus.jsonl   {"_id": str, "title": str, "text": str, "metadata": {...}}   (title optional)
queries.jsonl  {"_id": str, "text": str, "metadata": {...}}
qrels/<split>.tsv   header ``query-id<TAB>corpus-id<TAB>score``, then one graded judgement per line

Read line by line (not with ``datasets``) so that a malformed line, a duplicate id or a qrels row naming
an unknown id is reported with its file and line number.
"""

from __future__ import annotations

import json
from pathlib import Path

from hybrid_sweep.data.retrieval_task import DocTable, QueryTable, RetrievalTask, build_qrels, check_unique, mono_task
from hybrid_sweep.errors import DataError

QRELS_HEADER = ("query-id", "corpus-id", "score")


def read_jsonl(path: Path, fields: tuple[str, ...], optional: tuple[str, ...] = ()) -> tuple[dict[str, list], list[int]]:
    """Columns ``fields + optional`` of a JSONL file (ids as str), and the line number of each row."""
    path = Path(path)
    if not path.exists():
        raise DataError(path, "file not found")
    cols: dict[str, list] = {f: [] for f in fields + optional}
    lines = []
    with open(path, encoding="utf-8") as f:
        for n, raw in enumerate(f, 1):
            if not raw.strip():
                continue
            try:
                rec = json.loads(raw)
            except json.JSONDecodeError as err:
                raise DataError(f"{path}:{n}", f"malformed JSON ({err.msg})") from None
            if not isinstance(rec, dict):
                raise DataError(f"{path}:{n}", "expected a JSON object")
            for key in fields:
                if key not in rec or rec[key] is None:
                    raise DataError(f"{path}:{n}", f"missing field {key!r}")
                cols[key].append(str(rec[key]) if key.endswith("id") else rec[key])
            for key in optional:
                cols[key].append(rec.get(key) or "")
            lines.append(n)
    return cols, lines


def read_qrels_tsv(path: Path) -> list[tuple[str, str, str, int]]:
    """Rows of a BEIR qrels file (header required, tab-separated, three columns)."""
    path = Path(path)
    if not path.exists():
        raise DataError(path, "file not found")
    rows = []
    with open(path, encoding="utf-8") as f:
        for n, raw in enumerate(f, 1):
            parts = raw.rstrip("\r\n").split("\t")
            if n == 1:
                if tuple(p.strip() for p in parts) != QRELS_HEADER:
                    raise DataError(f"{path}:1", f"expected the header {chr(9).join(QRELS_HEADER)!r}, got {raw.strip()!r}")
                continue
            if not raw.strip():
                continue
            if len(parts) != 3:
                raise DataError(f"{path}:{n}", f"expected 3 tab-separated columns, got {len(parts)}")
            rows.append((parts[0], parts[1], parts[2], n))
    return rows


def read_beir_corpus(folder: Path, lang: str) -> DocTable:
    path = Path(folder) / "corpus.jsonl"
    cols, lines = read_jsonl(path, ("_id", "text"), ("title",))
    check_unique(cols["_id"], str(path), lines)
    titles = cols["title"] if any(cols["title"]) else None
    return DocTable(cols["_id"], cols["text"], titles, lang)


def read_beir_queries(folder: Path, lang: str) -> QueryTable:
    path = Path(folder) / "queries.jsonl"
    cols, lines = read_jsonl(path, ("_id", "text"))
    check_unique(cols["_id"], str(path), lines)
    return QueryTable(cols["_id"], cols["text"], lang)


def load_beir_folder(folder, split: str = "test", name: str | None = None, lang: str = "en",
                     max_length: int | None = None) -> RetrievalTask:
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(folder, "not a folder (expected corpus.jsonl, queries.jsonl, qrels/<split>.tsv)")
    qrels_path = folder / "qrels" / f"{split}.tsv"
    if not qrels_path.exists():
        have = sorted(p.stem for p in (folder / "qrels").glob("*.tsv"))
        raise DataError(qrels_path, f"file not found; splits here: {', '.join(have) or 'none'} (eval.split)")
    corpus = read_beir_corpus(folder, lang)
    queries = read_beir_queries(folder, lang)
    qrels = build_qrels(read_qrels_tsv(qrels_path), set(queries.ids), set(corpus.ids), str(qrels_path))
    return mono_task(name or folder.name, corpus, queries, qrels, lang, max_length)
