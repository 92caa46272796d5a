"""The in-memory benchmark: questions and candidate sentences per language, and pooled qrels.

Id contract (read by other tools and by our checks):
  query id      ``<lang>:<question id>``
  candidate id  ``<lang>:<article index>:<paragraph index>:<sentence index>`` (0-based, file order)

Settings (LAReQA pooled retrieval, method.md §4):
  mono   queries of X against the candidates of X
  cross  queries of X against the candidates of Y != X (only queries whose group exists in Y)
  multi  queries of X against all candidates; every language version of the answer is relevant
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hybrid_sweep.config.eval_kinds import SETTINGS  # noqa: E402  (defined once, with the typed eval configs)
MULTI_POOL = "all"


@dataclass(frozen=True)
class Question:
    qid: str  # "<lang>:<group id>"
    group: str  # parallel group id, shared across languages
    text: str
    answer: int  # index into the language's candidates
    article: int


@dataclass(frozen=True)
class Candidate:
    cid: str  # "<lang>:<article>:<paragraph>:<sentence>"
    text: str
    context: str
    article: int


@dataclass
class LanguageData:
    lang: str
    source: str
    questions: list[Question]
    candidates: list[Candidate]
    n_unanswerable: int = 0  # answer start outside every sentence: dropped at load time

    def subset(self, articles: int) -> LanguageData:
        return LanguageData(
            self.lang,
            self.source,
            [q for q in self.questions if q.article < articles],
            [c for c in self.candidates if c.article < articles],
            self.n_unanswerable,
        )


@dataclass
class Pool:
    """One retrieval setting for one query language: queries, candidate pool and relevance."""

    setting: str
    query_lang: str
    doc_lang: str  # a language, or "all" for the multilingual pool
    queries: np.ndarray  # global query indices
    candidates: np.ndarray  # global candidate indices
    relevant: list[np.ndarray]  # per query, global candidate indices of the relevant candidates
    n_skipped: int = 0  # queries whose relevant set is empty in this pool


@dataclass
class Benchmark:
    name: str
    languages: dict[str, LanguageData]
    _offsets: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self):
        self._offsets, total = {}, 0
        for lang, data in self.languages.items():
            self._offsets[lang] = total
            total += len(data.candidates)

    # --- flat views used by the evaluator -------------------------------------------------
    @property
    def langs(self) -> list[str]:
        return list(self.languages)

    def all_questions(self) -> list[Question]:
        return [q for d in self.languages.values() for q in d.questions]

    def all_candidates(self) -> list[Candidate]:
        return [c for d in self.languages.values() for c in d.candidates]

    def candidate_langs(self) -> np.ndarray:
        return np.concatenate([np.full(len(d.candidates), i) for i, d in enumerate(self.languages.values())])

    def candidate_range(self, lang: str) -> np.ndarray:
        start = self._offsets[lang]
        return np.arange(start, start + len(self.languages[lang].candidates))

    def subset(self, articles: int | None) -> Benchmark:
        """Keep the first ``articles`` articles (file order) of every language."""
        if articles is None:
            return self
        return Benchmark(self.name, {k: v.subset(articles) for k, v in self.languages.items()})

    # --- qrels ------------------------------------------------------------------------------
    def answers(self) -> dict[str, dict[str, int]]:
        """group id -> {language: global candidate index of its answer sentence}."""
        out: dict[str, dict[str, int]] = {}
        for lang, data in self.languages.items():
            off = self._offsets[lang]
            for q in data.questions:
                out.setdefault(q.group, {})[lang] = off + q.answer
        return out

    def pools(self, setting: str) -> list[Pool]:
        if setting not in SETTINGS:
            raise ValueError(f"unknown setting {setting!r}; expected one of {SETTINGS}")
        answers = self.answers()
        q_off, pools = 0, []
        for x, data in self.languages.items():
            n = len(data.questions)
            if setting == "mono":
                targets = [(x, self.candidate_range(x), [x])]
            elif setting == "cross":
                targets = [(y, self.candidate_range(y), [y]) for y in self.languages if y != x]
            else:
                targets = [(MULTI_POOL, np.arange(sum(len(d.candidates) for d in self.languages.values())), self.langs)]
            for doc_lang, cands, rel_langs in targets:
                keep, rel = [], []
                for i, q in enumerate(data.questions):
                    r = [answers[q.group][lang] for lang in rel_langs if lang in answers[q.group]]
                    if r:
                        keep.append(q_off + i)
                        rel.append(np.asarray(sorted(r), dtype=np.int64))
                pools.append(Pool(setting, x, doc_lang, np.asarray(keep, dtype=np.int64), cands, rel, n - len(keep)))
            q_off += n
        return pools


def candidate_texts(bench: Benchmark, mode: str) -> list[str]:
    """What the encoder reads of each candidate (``eval.candidate_text``): the sentence, or the sentence
    and its paragraph."""
    if mode == "sentence":
        return [c.text for c in bench.all_candidates()]
    if mode == "sentence_context":
        return [f"{c.text}\n{c.context}" for c in bench.all_candidates()]
    raise ValueError(f"eval.candidate_text: unknown mode {mode!r}; use 'sentence' or 'sentence_context'")


def as_retrieval_task(bench: Benchmark, settings=("mono",), candidate_text: str = "sentence",
                      metrics: tuple[str, ...] | None = None):
    """The benchmark's pools as a generic RetrievalTask, the form the evaluation engine reads: one corpus
    and one query table per language (in the benchmark's order), each pool's qrels binary. A query whose
    relevant set is empty in a pool stays in that pool's qrels with no relevant document, so the engine
    counts it as skipped (``n_skipped``) as LAReQA does. ``metrics``: the metric rows the task reports."""
    from hybrid_sweep.data.retrieval_task import DocTable, QueryTable, RetrievalTask, TaskPool

    texts = candidate_texts(bench, candidate_text)
    corpora, queries, offset = {}, {}, 0
    for lang, data in bench.languages.items():
        n = len(data.candidates)
        corpora[lang] = DocTable([c.cid for c in data.candidates], texts[offset: offset + n], None, lang)
        queries[lang] = QueryTable([q.qid for q in data.questions], [q.text for q in data.questions], lang,
                                   [q.group for q in data.questions])
        offset += n
    cids = [c.cid for c in bench.all_candidates()]
    qids = [q.qid for q in bench.all_questions()]
    pools = []
    for setting in settings:
        for p in bench.pools(setting):
            docs = tuple(bench.langs) if p.doc_lang == MULTI_POOL else (p.doc_lang,)
            qrels = {q: {} for q in queries[p.query_lang].ids} if p.n_skipped else {}
            qrels.update({qids[q]: {cids[c]: 1 for c in rel} for q, rel in zip(p.queries, p.relevant)})
            pools.append(TaskPool(setting, p.query_lang, p.doc_lang, p.query_lang, docs, qrels))
    return RetrievalTask(bench.name, corpora, queries, pools, metrics=metrics)
