"""The generic retrieval task: corpora, query sets, graded qrels, and the pools that evaluate them.

A ``RetrievalTask`` holds named document tables (``corpora``) and query tables (``query_sets``) and a
list of ``TaskPool``s. A pool is one evaluation unit (one row group of the metrics table): a query set,
one or more corpora searched together, and the qrels restricted to that pool. Per-language subsets are
pools (MIRACL ``ar`` is ``mono ar->ar``); a multilingual pool (FLORES ``multi``) names several corpora.
Tables are encoded once per task however many pools share them.

Relevance is graded (int >= 0, as trec_eval reads it); grade 0 is judged non-relevant. A query that is
in a pool's qrels but has no grade > 0 is skipped and counted (``n_skipped``); queries absent from the
qrels are not part of the split (the BEIR and MTEB convention), so a one-pool task keeps only the
judged queries (nothing else would be scored, so nothing else is encoded).

Ids become columns of TREC run and qrels files, which are split on whitespace: an id holding whitespace
is refused where it is read (file and line), not encoded, so that the ids in runs, qrels and
per_query.parquet stay exactly the dataset's.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from hybrid_sweep.errors import DataError

Qrels = dict[str, dict[str, int]]
_SPACE = re.compile(r"\s")


@dataclass
class DocTable:
    ids: list[str]
    texts: list[str]
    titles: list[str] | None = None
    lang: str = "und"

    def __len__(self) -> int:
        return len(self.ids)

    def passages(self) -> list[str]:
        """What the encoder reads: ``title text`` where a title exists (BEIR / MTEB convention)."""
        if self.titles is None:  # stripped as MTEB 2.x joins them (mteb._create_dataloaders._corpus_to_dict)
            return [x.strip() for x in self.texts]
        return [f"{t} {x}".strip() if t else x.strip() for t, x in zip(self.titles, self.texts)]


@dataclass
class QueryTable:
    ids: list[str]
    texts: list[str]
    lang: str = "und"
    groups: list[str] | None = None  # parallel group per query (FLORES index_id); default: the query id

    def __len__(self) -> int:
        return len(self.ids)

    def group_of(self, i: int) -> str:
        return self.groups[i] if self.groups is not None else self.ids[i]


@dataclass
class TaskPool:
    setting: str  # mono / cross / multi
    query_lang: str
    doc_lang: str  # a language, or "all" for a multilingual pool
    queries: str  # key of RetrievalTask.query_sets
    corpora: tuple[str, ...]  # keys of RetrievalTask.corpora, searched as one pool
    qrels: Qrels


@dataclass
class RetrievalTask:
    name: str
    corpora: dict[str, DocTable]
    query_sets: dict[str, QueryTable]
    pools: list[TaskPool] = field(default_factory=list)
    max_length: int | None = None  # encoder max tokens for this task (long-document tasks)
    metrics: tuple[str, ...] | None = None  # the metric rows reported (None: the engine's TASK_METRICS)

    def languages(self) -> list[str]:
        return list(dict.fromkeys(p.query_lang for p in self.pools))


def check_unique(ids: list[str], source: str, lines: list[int] | None = None) -> None:
    """One DataError naming the file and line of the first repeated id, or of the first id that is empty
    or holds whitespace (TREC files could not hold it; see the module docstring)."""
    seen: dict[str, int] = {}
    for i, x in enumerate(ids):
        where = f"{source}:{lines[i]}" if lines else f"{source} row {i + 1}"
        if x in seen:
            raise DataError(where, f"duplicate id {x!r} (first at {'line ' + str(lines[seen[x]]) if lines else 'row ' + str(seen[x] + 1)})")
        if not x or _SPACE.search(x):
            raise DataError(where, f"id {x!r} is empty or holds whitespace, which TREC run and qrels files cannot "
                                   "hold; rename it in the data")
        seen[x] = i


def build_qrels(rows: Iterable[tuple[str, str, object, int]], query_ids: set[str], doc_ids: set[str],
                source: str) -> Qrels:
    """Validated qrels from ``(query_id, doc_id, grade, line)`` rows: every id known, grade an int >= 0,
    no (query, doc) pair twice. Errors name ``source:line``."""
    qrels: Qrels = {}
    for qid, did, grade, line in rows:
        where = f"{source}:{line}"
        if qid not in query_ids:
            raise DataError(where, f"qrels row names unknown query id {qid!r}")
        if did not in doc_ids:
            raise DataError(where, f"qrels row names unknown document id {did!r}")
        try:
            value = float(grade)
        except (TypeError, ValueError):
            raise DataError(where, f"relevance {grade!r} is not a number") from None
        if value != int(value) or value < 0:
            raise DataError(where, f"relevance {grade!r} must be an integer >= 0")
        per_query = qrels.setdefault(qid, {})
        if did in per_query:
            raise DataError(where, f"duplicate qrels pair ({qid!r}, {did!r})")
        per_query[did] = int(value)
    return qrels


def mono_task(name: str, corpus: DocTable, queries: QueryTable, qrels: Qrels, lang: str | None = None,
              max_length: int | None = None) -> RetrievalTask:
    """A one-pool task: queries of one language against one corpus. Only the queries judged in ``qrels``
    are kept (a BEIR queries.jsonl often holds every split's queries)."""
    if any(q not in qrels for q in queries.ids):
        keep = [i for i, q in enumerate(queries.ids) if q in qrels]
        queries = QueryTable([queries.ids[i] for i in keep], [queries.texts[i] for i in keep], queries.lang,
                             None if queries.groups is None else [queries.groups[i] for i in keep])
    lang = lang or queries.lang
    return RetrievalTask(name, {lang: corpus}, {lang: queries},
                         [TaskPool("mono", lang, lang, lang, (lang,), qrels)], max_length)


def merge_tasks(name: str, tasks: list[RetrievalTask]) -> RetrievalTask:
    """Several per-language tasks as one (table keys must not collide)."""
    out = RetrievalTask(name, {}, {}, [], tasks[0].max_length if tasks else None)
    for t in tasks:
        for key in set(t.corpora) & set(out.corpora) | set(t.query_sets) & set(out.query_sets):
            raise DataError(name, f"subset {key!r} appears twice")
        out.corpora.update(t.corpora)
        out.query_sets.update(t.query_sets)
        out.pools.extend(t.pools)
    return out
