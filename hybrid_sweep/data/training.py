"""Training data: one model for every source.

A ``TrainCorpus`` is a list of parallel groups: a group id mapped to, per language, an ``Example`` (query,
positive passage, hard negatives). A cross-lingual example pairs the query of language X with the
positive and negatives of language Y from the same group. An example may lack its query or its positive
(SWIM-IR cross-lingual: a query in X, its passage only in English); it then serves only the pairs it can.
Non-parallel sources (English-only sets) are corpora with ``parallel=False``: only monolingual batches.

User data (JSONL or parquet), one row per example:
    {"group": "g1", "lang": "de", "query": "...", "positive": "...", "negatives": ["...", "..."]}
``negatives`` is optional; ``query`` or ``positive`` may be null (see above). Rows sharing ``group`` are
translations of one item (every row of a group is relevant to every query of the group); a group may
have several rows in one language (mMARCO: many triples per query), of which a batch uses one.
Training reads these files through an Arrow store (``corpus_store``, ``file_store``); ``TrainCorpus``
is the small in-memory form (LAReQA, synthetic data, tests), turned into a store by ``corpus_to_store``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from hybrid_sweep.data.benchmark import Benchmark
from hybrid_sweep.data.corpus_store import (CorpusStore, Example, TrainGroup, cached_store, file_fingerprint,  # noqa: F401
                                           store_from_batches)
from hybrid_sweep.data.lareqa import check_lang_code
from hybrid_sweep.errors import ConfigError, DataError
from hybrid_sweep.io import first_bad_jsonl_line, jsonl_records

REQUIRED_COLUMNS = ("group", "lang", "query", "positive")


@dataclass
class TrainCorpus:
    name: str
    groups: list[TrainGroup]
    parallel: bool = True
    _queries: dict[str, set[int]] = field(init=False, repr=False)
    _positives: dict[str, set[int]] = field(init=False, repr=False)

    def __post_init__(self):
        self._queries, self._positives = {}, {}
        for i, g in enumerate(self.groups):
            for lang, ex in g.items.items():
                if ex.query:
                    self._queries.setdefault(lang, set()).add(i)
                if ex.positive:
                    self._positives.setdefault(lang, set()).add(i)

    @property
    def languages(self) -> list[str]:
        return sorted(set(self._queries) | set(self._positives))

    def groups_for(self, query_lang: str, passage_lang: str) -> list[int]:
        """Sorted indices of the groups with a query in ``query_lang`` and a positive in ``passage_lang``."""
        return sorted(self._queries.get(query_lang, set()) & self._positives.get(passage_lang, set()))

    def restrict(self, languages: list[str], budgets: dict[str, int] | None = None) -> TrainCorpus:
        """Keep ``languages``; ``budgets`` caps the groups per language (the first N in group order)."""
        budgets = budgets or {}
        kept_count: dict[str, int] = {}
        groups = []
        for g in self.groups:
            items = {}
            for lang, ex in g.items.items():
                if lang in languages and kept_count.get(lang, 0) < budgets.get(lang, float("inf")):
                    items[lang] = ex
                    kept_count[lang] = kept_count.get(lang, 0) + 1
            if items:
                groups.append(TrainGroup(g.group, items))
        return TrainCorpus(self.name, groups, self.parallel)

    def texts(self) -> list[str]:
        return [t for g in self.groups for ex in g.items.values() for t in (ex.query, ex.positive, *ex.negatives) if t]


def corpus_from_benchmark(bench: Benchmark, with_context: bool = False, max_negatives: int = 3) -> TrainCorpus:
    """LAReQA-format data as training data: question -> answer sentence; the paragraph's other sentences
    are natural hard negatives (at most ``max_negatives``, in sentence order)."""
    groups: dict[str, dict[str, Example]] = {}
    for lang, data in bench.languages.items():
        by_para: dict[str, list[int]] = {}
        for i, c in enumerate(data.candidates):
            by_para.setdefault(c.cid.rsplit(":", 1)[0], []).append(i)
        for q in data.questions:
            ans = data.candidates[q.answer]

            def text(c):
                return f"{c.text}\n{c.context}" if with_context else c.text

            siblings = [data.candidates[i] for i in by_para[ans.cid.rsplit(":", 1)[0]] if i != q.answer]
            groups.setdefault(q.group, {})[lang] = Example(q.text, text(ans), tuple(text(c) for c in siblings[:max_negatives]))
    return TrainCorpus(bench.name, [TrainGroup(g, items) for g, items in groups.items()])


def corpus_from_rows(rows, name: str, source: str, parallel: bool = True) -> TrainCorpus:
    """Build a corpus from dict rows in the documented schema (see module docstring)."""
    groups: dict[str, dict[str, Example]] = {}
    for n, row in enumerate(rows):
        missing = [c for c in REQUIRED_COLUMNS if c not in row or (c in ("group", "lang") and not row[c])]
        if missing:
            raise DataError(source, f"row {n}: missing field '{missing[0]}'")
        lang = check_lang_code(str(row["lang"]), f"{source} row {n}")
        negs = row.get("negatives")
        negs = () if negs is None else tuple(str(x) for x in negs)
        group = str(row["group"])
        if lang in groups.get(group, {}):
            raise DataError(source, f"row {n}: group {group!r} has two rows for language {lang!r}")
        query, positive = row["query"] or None, row["positive"] or None
        if query is None and positive is None:
            raise DataError(source, f"row {n}: both 'query' and 'positive' are empty")
        groups.setdefault(group, {})[lang] = Example(query and str(query), positive and str(positive), negs)
    if not groups:
        raise DataError(source, "no training rows")
    return TrainCorpus(name, [TrainGroup(g, items) for g, items in groups.items()], parallel)


def read_rows(path: Path) -> list[dict]:
    """Rows of a JSONL or parquet file."""
    path = Path(path)
    if not path.exists():
        raise DataError(path, "file not found")
    if path.suffix == ".parquet":
        import pandas as pd

        return pd.read_parquet(path).to_dict("records")
    return [row for _, row in jsonl_records(path)]  # errors name file:line


def check_languages(corpus: TrainCorpus, languages: list[str], key: str = "data.languages") -> None:
    if not languages:
        raise ConfigError(key, "empty training-language set")
    missing = [lang for lang in languages if lang not in corpus.languages]
    if missing:
        raise ConfigError(key, f"{corpus.name} has no language {missing[0]!r}; available: {', '.join(corpus.languages)}")


def to_pivot(corpus: TrainCorpus, pivot: str) -> TrainCorpus:
    """SWIM-IR-style structure: queries in every language, passages only in ``pivot``. Each group keeps the
    pivot's full example and the other languages' queries, so the only pairs are X->pivot (and pivot mono)."""
    groups = []
    for g in corpus.groups:
        if pivot not in g.items:
            continue
        items = {lang: (ex if lang == pivot else Example(ex.query, None)) for lang, ex in g.items.items()}
        groups.append(TrainGroup(g.group, items))
    return TrainCorpus(f"{corpus.name}-pivot-{pivot}", groups, corpus.parallel)


def corpus_to_store(corpus: TrainCorpus, cross_only: bool = False) -> CorpusStore:
    """The in-memory Arrow store of a small ``TrainCorpus`` (one row per group and language)."""
    rows = {"group": [], "lang": [], "query": [], "positive": [], "negatives": []}
    for g in corpus.groups:
        for lang, ex in g.items.items():
            for key, value in (("group", g.group), ("lang", lang), ("query", ex.query), ("positive", ex.positive),
                               ("negatives", list(ex.negatives))):
                rows[key].append(value)
    if not rows["group"]:
        raise DataError(corpus.name, "no training rows")
    table = pa.table({k: pa.array(v, type=pa.list_(pa.string()) if k == "negatives" else pa.string())
                      for k, v in rows.items()})
    return store_from_batches(corpus.name, table.to_batches(), corpus.name, parallel=corpus.parallel,
                              cross_only=cross_only)


JSONL_TYPES = pa.schema([("lang", pa.string()), ("query", pa.string()), ("positive", pa.string()),
                         ("negatives", pa.list_(pa.string()))])


def file_batches(path: Path, batch_rows: int = 65_536):
    """Raw record batches of a JSONL or parquet file in the documented schema, streamed (never the whole
    file in memory). ``group`` keeps its type (string or integer ids; checked by ``normalise_batch``)."""
    path = Path(path)
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        yield from pq.ParquetFile(path).iter_batches(batch_size=batch_rows)
        return
    import pyarrow.json as pj

    n, keys = next(jsonl_records(path), (0, None))  # the first row (file:line errors)
    if n == 0:
        raise DataError(path, "no training rows")
    if not isinstance(keys, dict):
        raise DataError(f"{path}:{n}", "expected a JSON object")
    missing = [c for c in ("group", "lang", "query", "positive") if c not in keys]
    if missing:
        raise DataError(path, f"missing column '{missing[0]}' (have: {', '.join(keys)})")
    options = {"read_options": pj.ReadOptions(block_size=16 << 20),
               "parse_options": pj.ParseOptions(explicit_schema=JSONL_TYPES, unexpected_field_behavior="infer")}
    try:
        reader = pj.open_json(path, **options) if hasattr(pj, "open_json") else (  # streaming (pyarrow >= 19)
            pj.read_json(path, **options).to_batches())
        for batch in reader:
            batch.validate(full=True)  # Arrow's JSON reader lets bytes that are not UTF-8 through
            yield batch
    except (pa.ArrowInvalid, UnicodeDecodeError) as err:  # Arrow names no line: find it, line by line
        first_bad_jsonl_line(path)
        raise DataError(path, f"cannot read ({str(err).splitlines()[0][:200]})") from None


def file_store(path, name: str, cache_root: Path, parallel: bool = True) -> CorpusStore:
    """The Arrow store of a user file, converted once into ``cache_root`` (keyed by path, size, mtime)."""
    fp = file_fingerprint(path)
    return cached_store(cache_root, {"kind": "file", **fp}, name, str(path), lambda: file_batches(Path(fp["path"])),
                        parallel=parallel)
