"""BEIR folder layout: ``corpus.jsonl``, ``queries.jsonl``, ``qrels/<split>.tsv``.

corpus.jsonl   {"_id": str, "title": str, "text": str, "metadata": {...}}   (title optional)
queries.jsonl  {"_id": str, "text": str, "metadata": {...}}
qrels/<split>.tsv   header ``query-id<TAB>corpus-id<TAB>score``, then one graded judgement per line

Read line by line (not with ``datasets``) so that a malformed line, bytes that are not UTF-8, a duplicate
id, an id holding whitespace (unwritable in TREC files) or a qrels row naming an unknown id is reported
with its file and line number. An empty corpus or split is refused. Only the queries judged in the
chosen split are kept (SciFact's queries.jsonl holds 1,105 queries, its test split judges 300): the
others would never be scored, so they are not encoded.
"""

from __future__ import annotations

from pathlib import Path

from hybrid_sweep.data.retrieval_task import DocTable, QueryTable, RetrievalTask, build_qrels, check_unique, mono_task
from hybrid_sweep.errors import DataError
from hybrid_sweep.io import inside, jsonl_records, safe_part, text_lines

QRELS_HEADER = ("query-id", "corpus-id", "score")


def read_jsonl(path: Path, fields: tuple[str, ...], optional: tuple[str, ...] = ()) -> tuple[dict[str, list], list[int]]:
    """Columns ``fields + optional`` of a JSONL file (ids as str), and the line number of each row."""
    path = Path(path)
    cols: dict[str, list] = {f: [] for f in fields + optional}
    lines = []
    for n, rec in jsonl_records(path):
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
    rows = []
    for n, line in text_lines(path):
        parts = line.split("\t")
        if n == 1:
            if tuple(p.strip() for p in parts) != QRELS_HEADER:
                raise DataError(f"{path}:1", f"expected the header {chr(9).join(QRELS_HEADER)!r}, got {line.strip()!r}")
            continue
        if not line.strip():
            continue
        if len(parts) != 3:
            raise DataError(f"{path}:{n}", f"expected 3 tab-separated columns, got {len(parts)}")
        rows.append((parts[0], parts[1], parts[2], n))
    if not rows:
        raise DataError(path, "no judgements (an empty split cannot be evaluated)")
    return rows


def read_beir_corpus(folder: Path, lang: str) -> DocTable:
    path = Path(folder) / "corpus.jsonl"
    cols, lines = read_jsonl(path, ("_id", "text"), ("title",))
    if not lines:
        raise DataError(path, "no documents (an empty corpus cannot be evaluated)")
    check_unique(cols["_id"], str(path), lines)
    titles = cols["title"] if any(cols["title"]) else None
    return DocTable(cols["_id"], cols["text"], titles, lang)


def read_beir_queries(folder: Path, lang: str, keep: set[str] | None = None) -> QueryTable:
    """The queries (all, or those whose id is in ``keep``); every line is still checked."""
    path = Path(folder) / "queries.jsonl"
    cols, lines = read_jsonl(path, ("_id", "text"))
    check_unique(cols["_id"], str(path), lines)
    if keep is None:
        return QueryTable(cols["_id"], cols["text"], lang)
    rows = [i for i, q in enumerate(cols["_id"]) if q in keep]
    return QueryTable([cols["_id"][i] for i in rows], [cols["text"][i] for i in rows], lang)


def load_beir_folder(folder, split: str = "test", name: str | None = None, lang: str = "en",
                     max_length: int | None = None) -> RetrievalTask:
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(folder, "not a folder (expected corpus.jsonl, queries.jsonl, qrels/<split>.tsv)")
    name = safe_part(name or folder.name, "eval.benchmark")  # names output files (runs/<name>/...)
    lang = safe_part(lang, "eval.lang")
    qrels_path = inside(folder, "qrels", split, field="eval.split", suffix=".tsv")
    if not qrels_path.exists():
        have = sorted(p.stem for p in (folder / "qrels").glob("*.tsv"))
        raise DataError(qrels_path, f"file not found; splits here: {', '.join(have) or 'none'} (eval.split)")
    rows = read_qrels_tsv(qrels_path)
    corpus = read_beir_corpus(folder, lang)
    queries = read_beir_queries(folder, lang, keep={r[0] for r in rows})  # only the judged ones are scored
    qrels = build_qrels(rows, set(queries.ids), set(corpus.ids), str(qrels_path))
    return mono_task(name, corpus, queries, qrels, lang, max_length)
