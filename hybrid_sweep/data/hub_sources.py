"""Training sets through Hugging Face ``datasets`` (SWIM-IR, mMARCO, other hub or local row sets).

Each source is described by config (``conf/data/<name>.yaml``) and read with the ``datasets.load_dataset``
call a user would make (a hub id, or a local folder or file in the same layout — which is how the tests
feed fixture files). Rows are mapped to the training schema with Arrow compute (no Python loop per row)
and converted once into a ``CorpusStore``:

- ``kind: hub`` (row sets: SWIM-IR): per language, ``load_dataset(**spec)``; ``fields`` name the columns
  holding the group id, query, positive and (optionally) negatives.
  ``passage_lang`` set (SWIM-IR cross-lingual: query in X, passage in English): each row becomes a query
  row in X and a passage row in ``passage_lang`` of the same group, so only X->passage_lang uses it.
  ``group_scope: language`` prefixes ids with the language (SWIM-IR: nothing says an ``_id`` names the same
  item across languages, so it is not trusted to); ``parallel: false``: monolingual batches only.
- ``kind: mmarco`` (the real mMARCO repository layout): per language a collection ``pid<TAB>text`` and
  train queries ``qid<TAB>text``, and the shared triples ``qid<TAB>pos_pid<TAB>neg_pid``. Every triple
  becomes one row per language (group = query id, parallel across languages by query and passage id,
  the triple's negative as hard negative); a query has as many rows as triples.
"""

from __future__ import annotations

import csv

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from hybrid_sweep.config.load import typed_section
from hybrid_sweep.config.sources import HubSource, MmarcoSource
from hybrid_sweep.data.corpus_store import CorpusStore, cached_store
from hybrid_sweep.errors import ConfigError, DataError

TSV_OPTIONS = {"delimiter": "\t", "quoting": csv.QUOTE_NONE, "keep_default_na": False, "na_filter": False}


def load_hub_dataset(spec: dict, lang: str):
    """``datasets.load_dataset(path, split=..., **rest)`` for one language, with one clear error."""
    import datasets

    args = dict(spec)
    path = args.pop("path")
    split = args.pop("split", "train")
    try:
        return datasets.load_dataset(path, split=split, **args)
    except (FileNotFoundError, ConnectionError, OSError, ValueError) as err:
        raise DataError(f"{path} [{lang}]", f"cannot load ({type(err).__name__}: {str(err).splitlines()[0][:200]}); "
                                            "offline? pre-download it or point data_files at local copies") from None


def _arrow(ds) -> pa.Table:
    return ds.data.table if hasattr(ds.data, "table") else ds.data


def _fingerprint(ds) -> str:
    return getattr(ds, "_fingerprint", None) or str([f["filename"] for f in ds.cache_files])


def _col(table: pa.Table, name: str | None, source: str, key: str):
    if name is None:
        return None
    if name not in table.column_names:
        raise DataError(source, f"missing column '{name}' (data.sources.fields.{key}; have: {', '.join(table.column_names)})")
    return table.column(name)


def _text(arr, length: int):
    return pa.nulls(length, pa.string()) if arr is None else pc.cast(arr, pa.string())


def hub_source_rows(cfg, lang: str, table: pa.Table, source: str):
    """Record batches in the raw training schema for one language's table."""
    fields = dict(cfg.fields)
    group = _col(table, fields.get("group"), source, "group")
    if group is None:
        raise ConfigError("data.sources.fields.group", f"source {cfg.name!r} names no group column")
    if pa.types.is_integer(group.type):
        group = pc.cast(group, pa.string())
    if cfg.group_scope == "language" or not cfg.parallel:
        group = pc.binary_join_element_wise(lang, pc.cast(group, pa.string()), "/")
    query = _col(table, fields.get("query"), source, "query")
    positive = _col(table, fields.get("positive"), source, "positive")
    negs = _col(table, fields.get("negatives"), source, "negatives")
    n = table.num_rows
    if negs is not None and (pa.types.is_string(negs.type) or pa.types.is_large_string(negs.type)):
        negs = pa.ListArray.from_arrays(pa.array(np.arange(n + 1, dtype=np.int32)), pc.cast(negs, pa.string()).combine_chunks())
    negs = pa.nulls(n, pa.list_(pa.string())) if negs is None else negs
    passage_lang = cfg.passage_lang
    langs = pa.array([lang] * n, pa.string())
    if passage_lang and passage_lang != lang:
        yield from pa.table({"group": group, "lang": langs, "query": _text(query, n), "positive": pa.nulls(n, pa.string()),
                        "negatives": pa.nulls(n, pa.list_(pa.string()))}).to_batches(max_chunksize=65_536)
        yield from pa.table({"group": group, "lang": pa.array([passage_lang] * n, pa.string()),
                        "query": pa.nulls(n, pa.string()), "positive": _text(positive, n),
                        "negatives": negs}).to_batches(max_chunksize=65_536)
    else:
        yield from pa.table({"group": group, "lang": langs, "query": _text(query, n), "positive": _text(positive, n),
                        "negatives": negs}).to_batches(max_chunksize=65_536)


def _languages(cfg) -> dict:
    if not cfg.languages:
        raise ConfigError("data.sources.languages", f"source {cfg.name!r} lists no languages")
    return dict(cfg.languages)


def _limited(table: pa.Table, limit) -> pa.Table:
    return table if limit is None else table.slice(0, int(limit))


def load_hub_corpus(cfg, cache_root) -> CorpusStore:
    """A row-set source (``kind: hub``) as a cached store."""
    cfg = typed_section(cfg, HubSource, "data.sources")  # checked, with the declared defaults
    tables, prints = {}, {}
    for lang, spec in _languages(cfg).items():
        ds = load_hub_dataset(dict(spec), lang)
        tables[lang] = _limited(_arrow(ds), cfg.max_rows_per_lang)
        prints[lang] = _fingerprint(ds)
    sources = {lang: f"{dict(spec).get('path')} [{lang}]" for lang, spec in _languages(cfg).items()}

    def batches():
        for lang, table in tables.items():
            yield from hub_source_rows(cfg, lang, table, sources[lang])
    key = {"kind": "hub", "fingerprints": prints, "cfg": _plain(cfg)}
    return cached_store(cache_root, key, cfg.name, cfg.name, batches, parallel=cfg.parallel)


def _plain(cfg) -> dict:
    from omegaconf import OmegaConf

    return OmegaConf.to_container(cfg, resolve=True) if not isinstance(cfg, dict) else cfg


def _tsv(cfg, file: str, columns: list[str], lang: str) -> tuple[pa.Table, str]:
    import datasets

    features = datasets.Features({c: datasets.Value("int64" if c != "text" else "string") for c in columns})
    ds = load_hub_dataset({"path": cfg.path, "data_files": file, "names": columns, "header": None, "features": features,
                           **TSV_OPTIONS}, lang)
    return _arrow(ds), _fingerprint(ds)


def _lookup(ids, table: pa.Table, what: str, source: str) -> pa.Array:
    """The texts of ``ids`` in a (id, text) table, by a hash join; a missing id is one error."""
    pos = pc.index_in(ids, value_set=table.column(0).combine_chunks())
    missing = _first_null(pos)
    if missing is not None:
        raise DataError(source, f"{what} id {ids[missing].as_py()} of triple {missing} not found")
    return table.column("text").take(pos)


def _first_null(arr) -> int | None:
    bad = np.flatnonzero(np.asarray(pc.is_null(arr).to_numpy(zero_copy_only=False)))
    return int(bad[0]) if len(bad) else None


def load_mmarco_corpus(cfg, cache_root) -> CorpusStore:
    """The mMARCO layout: shared id triples joined with each language's queries and collection."""
    cfg = typed_section(cfg, MmarcoSource, "data.sources")
    langs = _languages(cfg)
    triples, tprint = _tsv(cfg, cfg.triples, ["qid", "pos", "neg"], "triples")
    triples = _limited(triples, cfg.max_rows_per_lang)
    prints = {"triples": tprint}
    parts = {}
    for lang, language in langs.items():
        queries, qp = _tsv(cfg, cfg.queries.format(language=language), ["qid", "text"], lang)
        coll, cp = _tsv(cfg, cfg.collection.format(language=language), ["pid", "text"], lang)
        parts[lang] = (queries, coll)
        prints[lang] = [qp, cp]

    def batches():
        n = triples.num_rows
        group = pc.cast(triples.column("qid"), pa.string())
        for lang, (queries, coll) in parts.items():
            source = f"{cfg.path} [{lang}]"
            negs = _lookup(triples.column("neg"), coll, "negative passage", source).combine_chunks()
            yield from pa.table({"group": group, "lang": pa.array([lang] * n, pa.string()),
                            "query": _lookup(triples.column("qid"), queries, "query", source),
                            "positive": _lookup(triples.column("pos"), coll, "positive passage", source),
                            "negatives": pa.ListArray.from_arrays(pa.array(np.arange(n + 1, dtype=np.int32)), negs)}
                           ).to_batches(max_chunksize=65_536)
    key = {"kind": "mmarco", "fingerprints": prints, "cfg": _plain(cfg)}
    return cached_store(cache_root, key, cfg.name, cfg.name, batches, parallel=True)
