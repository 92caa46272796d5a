"""Training sets from the Hugging Face hub through ``datasets`` (SWIM-IR, mMARCO, translated QA sets).

Each source is described by config (``conf/data/<name>.yaml``): per language, what to pass to
``datasets.load_dataset`` (a hub id with config / data_dir, or local ``data_files`` — which is how tests
feed fixture files in the same schema), and which columns hold the group id, query, positive and
negatives. Rows become ``TrainCorpus`` groups:

- parallel sources (mMARCO: the same query id in every language) group rows by id across languages;
- ``passage_lang`` set (SWIM-IR cross-lingual: query in X, passage in English): the query is the X item
  and the passage the ``passage_lang`` item of the same group, so only the X->passage_lang pair can use it;
- ``parallel: false`` (SWIM-IR monolingual, English-only sets): ids are made unique per language.
"""

from __future__ import annotations

from hybrid_sweep.data.training import TrainCorpus, corpus_from_rows
from hybrid_sweep.errors import ConfigError, DataError


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


def _column(row: dict, name: str | None, source: str, n: int):
    if name is None:
        return None
    if name not in row:
        raise DataError(source, f"row {n}: missing column '{name}'")
    return row[name]


def hub_rows(cfg, lang: str, limit: int | None = None):
    """Rows of one language of a hub source, mapped to the training schema."""
    spec = dict(cfg.languages[lang])
    fields = dict(cfg.fields)
    source = f"{spec.get('path')} [{lang}]"
    passage_lang = cfg.get("passage_lang")
    for n, row in enumerate(load_hub_dataset(spec, lang)):
        if limit is not None and n >= limit:
            break
        group = str(_column(row, fields["group"], source, n))
        if not cfg.get("parallel", True):
            group = f"{lang}/{group}"
        query = _column(row, fields["query"], source, n)
        positive = _column(row, fields["positive"], source, n)
        negs = _column(row, fields.get("negatives"), source, n)
        negs = [negs] if isinstance(negs, str) else list(negs or [])
        if passage_lang and passage_lang != lang:
            yield {"group": group, "lang": lang, "query": query, "positive": None}
            yield {"group": group, "lang": passage_lang, "query": None, "positive": positive, "negatives": negs}
        else:
            yield {"group": group, "lang": lang, "query": query, "positive": positive, "negatives": negs}


def load_hub_corpus(cfg) -> TrainCorpus:
    if not cfg.get("languages"):
        raise ConfigError("data.languages", f"source {cfg.get('name')!r} lists no languages")
    rows = []
    for lang in cfg.languages:
        rows.extend(hub_rows(cfg, lang, cfg.get("max_rows_per_lang")))
    if cfg.get("passage_lang"):  # one passage row per group, however many query languages share it
        seen, unique = set(), []
        for r in rows:
            key = (r["group"], r["lang"])
            if key not in seen:
                seen.add(key)
                unique.append(r)
        rows = unique
    return corpus_from_rows(rows, cfg.name, cfg.name, parallel=cfg.get("parallel", True))
