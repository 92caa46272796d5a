"""TREC-style files: topics, qrels and a document collection.

topics   ``qid<TAB>text`` per line (MIRACL / MS MARCO topics), or the classic SGML form
         ``<top> <num> Number: 301 <title> text ... </top>`` (the title is the query)
qrels    ``qid 0 docid grade`` (whitespace-separated; the second column, 0 or Q0, is ignored)
corpus   ``corpus.jsonl`` as in BEIR, or ``docid<TAB>text`` per line (``.tsv``)

Errors (bytes that are not UTF-8, a malformed line, ids with whitespace) name ``file:line``; an empty
corpus or qrels file is refused; only judged topics are kept (``retrieval_task.mono_task``).
"""

from __future__ import annotations

import re
from pathlib import Path

from hybrid_sweep.data.beir_format import read_jsonl
from hybrid_sweep.data.retrieval_task import DocTable, QueryTable, RetrievalTask, build_qrels, check_unique, mono_task
from hybrid_sweep.errors import DataError
from hybrid_sweep.io import read_text, safe_part, text_lines

_TOP = re.compile(r"<top>(.*?)</top>", re.S | re.I)
_NUM = re.compile(r"<num>\s*(?:Number:)?\s*(\S+)", re.I)
_TITLE = re.compile(r"<title>\s*(?:Topic:)?\s*(.*?)\s*(?=<[a-z]+>|</top>|$)", re.S | re.I)


def _lines(path: Path):
    for n, line in text_lines(path):
        if line.strip():
            yield n, line


def read_topics(path: Path, lang: str = "und") -> QueryTable:
    path = Path(path)
    text = read_text(path)
    ids, texts, lines = [], [], []
    if "<top>" in text.lower():
        for block in _TOP.finditer(text):
            num, title = _NUM.search(block.group(1)), _TITLE.search(block.group(1))
            line = text.count("\n", 0, block.start()) + 1
            if not num or not title or not title.group(1).strip():
                raise DataError(f"{path}:{line}", "topic without <num> or <title>")
            ids.append(num.group(1))
            texts.append(" ".join(title.group(1).split()))
            lines.append(line)
    else:
        for n, line in _lines(path):
            parts = line.split("\t")
            if len(parts) != 2:
                raise DataError(f"{path}:{n}", f"expected 'qid<TAB>text', got {len(parts)} columns")
            ids.append(parts[0])
            texts.append(parts[1])
            lines.append(n)
    check_unique(ids, str(path), lines)
    return QueryTable(ids, texts, lang)


def read_trec_qrels(path: Path) -> list[tuple[str, str, str, int]]:
    rows = []
    for n, line in _lines(path):
        parts = line.split()
        if len(parts) != 4:
            raise DataError(f"{Path(path)}:{n}", f"expected 'qid iter docid grade', got {len(parts)} columns")
        rows.append((parts[0], parts[2], parts[3], n))
    if not rows:
        raise DataError(path, "no judgements (an empty qrels file cannot be evaluated)")
    return rows


def read_collection(path: Path, lang: str = "und") -> DocTable:
    path = Path(path)
    if path.suffix == ".jsonl":
        cols, lines = read_jsonl(path, ("_id", "text"), ("title",))
        ids, texts, titles = cols["_id"], cols["text"], (cols["title"] if any(cols["title"]) else None)
    else:
        ids, texts, lines, titles = [], [], [], None
        for n, line in _lines(path):
            parts = line.split("\t")
            if len(parts) < 2:
                raise DataError(f"{path}:{n}", "expected 'docid<TAB>text'")
            ids.append(parts[0])
            texts.append("\t".join(parts[1:]))
            lines.append(n)
    if not ids:
        raise DataError(path, "no documents (an empty corpus cannot be evaluated)")
    check_unique(ids, str(path), lines)
    return DocTable(ids, texts, titles, lang)


def load_trec_task(name: str, corpus: Path, topics: Path, qrels: Path, lang: str = "und",
                   max_length: int | None = None) -> RetrievalTask:
    name, lang = safe_part(name, "eval.benchmark"), safe_part(lang, "eval.lang")  # they name output files
    docs = read_collection(corpus, lang)
    queries = read_topics(topics, lang)
    judged = build_qrels(read_trec_qrels(qrels), set(queries.ids), set(docs.ids), str(qrels))
    return mono_task(name, docs, queries, judged, lang, max_length)
