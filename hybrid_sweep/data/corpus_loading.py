"""Build the training corpora and the validation corpus named by the ``data`` config.

Every source becomes a ``CorpusStore`` (``corpus_store``): small ones (synthetic, LAReQA, FLORES) in
memory, files and hub sets converted once into ``data.cache_dir``. Training languages, budgets, the
held-out split and the pivot are masks over the store's rows, so every corpus returned is a view.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import platformdirs

from hybrid_sweep.config.load import typed_section, typed_sections
from hybrid_sweep.config.sources import SourceConfig
from hybrid_sweep.data.corpus_store import CorpusStore, mix64
from hybrid_sweep.data.download import data_root, ensure_lareqa_file
from hybrid_sweep.data.flores_pairs import load_flores_pairs
from hybrid_sweep.data.hub_sources import load_hub_corpus, load_mmarco_corpus
from hybrid_sweep.data.ict_queries import load_inverse_cloze
from hybrid_sweep.data.lareqa import LAREQA_BENCHMARKS, load_lareqa
from hybrid_sweep.data.synthetic import synthetic_benchmark
from hybrid_sweep.data.training import corpus_from_benchmark, corpus_to_store, file_store
from hybrid_sweep.errors import ConfigError, DataError

log = logging.getLogger(__name__)
from hybrid_sweep.config.sources import SOURCE_KINDS  # noqa: E402  (the kind list, defined once)


def cache_root(cfg) -> Path:
    """Where converted stores live: ``data.cache_dir``, else the user cache folder (never the package)."""
    configured = cfg.data.cache_dir
    if configured:
        return Path(str(configured)).expanduser()
    return Path(platformdirs.user_cache_dir("hybrid_sweep")) / "corpora"


def source_name(src) -> str:
    return str(src.name or src.get("path") or src.get("benchmark") or src.kind)  # path / benchmark: per kind


def load_source(src, cfg) -> CorpusStore:
    cfg, src = typed_sections(cfg), typed_section(src, SourceConfig, "data.sources")  # checked: config.sources
    store = _load_source(src, cfg)
    return store if src.n_negatives is None else store.view(n_negatives=int(src.n_negatives))


def _load_source(src, cfg) -> CorpusStore:
    kind = src.kind
    ctx, negs = cfg.data.with_context, cfg.data.max_negatives
    if kind == "synthetic":
        return corpus_to_store(corpus_from_benchmark(synthetic_benchmark(dict(cfg.synthetic), src.split), ctx, negs))
    if kind == "lareqa":
        folder, langs = LAREQA_BENCHMARKS[src.benchmark]  # a declared name (config.sources)
        root, supplied = data_root(cfg.paths.data_root)
        for lang in langs:
            ensure_lareqa_file(root, folder, lang, supplied)
        return corpus_to_store(corpus_from_benchmark(load_lareqa(src.benchmark, root / "lareqa" / folder), ctx, negs))
    if kind == "file":
        return file_store(src.path, src.name or str(src.path), cache_root(cfg), parallel=src.parallel)
    if kind == "hub":
        return load_hub_corpus(src, cache_root(cfg))
    if kind == "mmarco":
        return load_mmarco_corpus(src, cache_root(cfg))
    if kind == "flores":
        return load_flores_pairs(src, cfg.paths.data_root)
    if kind == "inverse_cloze":  # automatically generated queries (data/ict_queries.py)
        return load_inverse_cloze(src, cfg.paths.data_root)
    raise ConfigError("data.sources.kind", f"unknown source kind {kind!r}; one of {', '.join(SOURCE_KINDS)}")


def split_holdout(corpus: CorpusStore, fraction: float, seed: int) -> tuple[CorpusStore, CorpusStore]:
    """Deterministic split by group: a seeded hash of the group id, so adding data never moves a group."""
    if not 0 < fraction < 1:
        raise ConfigError("data.dev.holdout", f"must be in (0, 1), got {fraction}")
    held_group = mix64(corpus.group_hash, seed) < np.uint64(int(fraction * 2**64))
    held = held_group[corpus.group]
    act = corpus.active_mask()
    return corpus.view(active=act & ~held), corpus.view(f"{corpus.name}-dev", active=act & held)


def apply_budgets(corpus: CorpusStore, budgets: dict) -> CorpusStore:
    """Keep the first N groups (in source order) of each budgeted language."""
    act = corpus.active_mask().copy()
    for lang, n in budgets.items():
        rows = act & corpus.lang_mask([lang])
        keep = np.unique(corpus.group[rows])[: int(n)]
        act &= ~rows | np.isin(corpus.group, keep)
    return corpus.view(active=act)


def to_pivot(corpus: CorpusStore, pivot: str) -> CorpusStore:
    """SWIM-IR-style structure: queries in every language, passages only in ``pivot``; groups without a
    pivot row are dropped, so the only pairs are X->pivot (and pivot mono)."""
    act = corpus.active_mask()
    at_pivot = corpus.lang_mask([pivot])
    act = act & np.isin(corpus.group, np.unique(corpus.group[act & at_pivot]))
    return corpus.view(f"{corpus.name}-pivot-{pivot}", active=act, has_positive=corpus.has_positive & at_pivot)


def draw_languages(pool: list[str], n: int | None, draw: str = "fixed", language_seed: int = 0,
                   train_seed: int = 0) -> list[str]:
    """The training languages: ``n`` of ``pool`` (all when ``n`` is null), in pool order.

    ``fixed`` takes the first ``n`` of the pool (nested sets in the pool's order: the old RQ3 design);
    ``per_seed`` takes the first ``n`` of a permutation drawn with (``language_seed``, ``train_seed``), so
    the sets are nested within a seed and each seed draws other languages: the count is averaged over
    which languages join (RQ3; docs/study_designs.md)."""
    if n is None:
        return list(pool)
    if not 1 <= int(n) <= len(pool):
        raise ConfigError("data.n_languages", f"{n} languages asked of a pool of {len(pool)} ({', '.join(pool)})")
    if draw not in ("fixed", "per_seed"):
        raise ConfigError("data.language_draw", f"unknown value {draw!r}; fixed or per_seed")
    order = list(pool)
    if draw == "per_seed":
        rng = np.random.default_rng([int(language_seed), int(train_seed)])
        order = [order[i] for i in rng.permutation(len(order))]
    chosen = set(order[:int(n)])
    return [lang for lang in pool if lang in chosen]


def declared_languages(cfg) -> list[str] | None:
    """The languages the configured sources can hold, from the config alone (synthetic: its languages;
    LAReQA and inverse cloze: the benchmark's; FLORES, hub, mMARCO: their language maps) — a superset of
    what loading finds; None where a source must be read to know (a file)."""
    cfg = typed_sections(cfg)
    found: set[str] = set()
    for src in cfg.data.sources or []:
        if src.kind == "synthetic":
            found |= {str(lang["code"]) for lang in cfg.synthetic.languages}
        elif src.kind in ("lareqa", "inverse_cloze"):
            found |= set(LAREQA_BENCHMARKS[src.benchmark][1])
        elif src.kind in ("flores", "hub", "mmarco"):
            found |= {str(lang) for lang in src.languages}
        else:
            return None
    return sorted(found)


def check_languages(cfg) -> None:
    """Before anything is loaded or written: a training language no source can hold is the one-line error
    the loader would give after reading the data (``data.languages``); nothing is said where only reading
    can tell (a file source)."""
    cfg = typed_sections(cfg)
    available = declared_languages(cfg) if cfg.train.enabled and cfg.data.languages else None
    if available is None:
        return
    missing = [lang for lang in cfg.data.languages if lang not in available]
    if missing:
        names = ", ".join(source_name(s) for s in cfg.data.sources)
        raise ConfigError("data.languages", f"{names} has no language {missing[0]!r}; available: {', '.join(available)}")


def load_training_data(cfg) -> tuple[list[CorpusStore], CorpusStore | None, list[str]]:
    """(training corpora restricted to the training languages, validation corpus, training languages)."""
    cfg = typed_sections(cfg)
    sources = list(cfg.data.sources or [])
    if not sources:
        raise ConfigError("data.sources", "no training sources configured")
    corpora = [load_source(s, cfg) for s in sources]
    available = sorted({lang for c in corpora for lang in c.languages})
    languages = available if cfg.data.languages is None else list(cfg.data.languages)
    if not languages:
        raise ConfigError("data.languages", "empty training-language set")
    missing = [lang for lang in languages if lang not in available]
    if missing:
        raise ConfigError("data.languages", f"{', '.join(source_name(s) for s in sources)} has no language "
                                            f"{missing[0]!r}; available: {', '.join(available)}")
    budgets = dict(cfg.data.budgets)
    for lang in budgets:
        if lang not in languages:
            raise ConfigError("data.budgets", f"budget for {lang!r}, which is not a training language")
    languages = draw_languages(languages, cfg.data.n_languages, cfg.data.language_draw, cfg.data.language_seed,
                               cfg.train.seed)
    budgets = {lang: n for lang, n in budgets.items() if lang in languages}
    dev_cfg, dev = cfg.data.dev, None  # typed: a holdout {holdout, seed, languages, source} or a source
    if dev_cfg is not None and "holdout" in dev_cfg:
        i = dev_cfg.source
        if not 0 <= i < len(sources):
            raise ConfigError("data.dev.source", f"index of the source to hold out from, 0..{len(sources) - 1}; got {i!r}")
        corpora[i], dev = split_holdout(corpora[i], float(dev_cfg.holdout), int(dev_cfg.seed))
        if corpora[i].n_rows == 0:
            raise DataError(source_name(sources[i]), f"no rows left for training after data.dev.holdout={dev_cfg.holdout}")
    elif dev_cfg is not None:
        dev = load_source(dev_cfg, cfg)
    kept = []
    for src, c in zip(sources, corpora):
        c = c.view(active=c.active_mask() & c.lang_mask(languages))
        c = apply_budgets(c, budgets) if budgets else c
        if cfg.data.pivot:
            if cfg.data.pivot not in languages:
                raise ConfigError("data.pivot", f"{cfg.data.pivot!r} is not a training language ({', '.join(languages)})")
            c = to_pivot(c, cfg.data.pivot)
        if c.n_rows:
            kept.append(c)
        else:
            log.warning("source %s has no rows in the training languages %s; not used", source_name(src), languages)
    if dev is not None:
        dev_langs = [lang for lang in (dev_cfg.get("languages") or languages) if lang in dev.languages]  # per kind
        dev = dev.view(active=dev.active_mask() & dev.lang_mask(dev_langs))
        dev = dev if dev.n_rows else None
    return kept, dev, languages


def vocabulary_texts(cfg, corpora: list[CorpusStore]) -> list[str]:
    """The texts a new tiny encoder builds its vocabulary from (``encoder.tiny.vocab_from``):
    ``all_languages`` (default) reads every language the sources hold, as a multilingual pretrained
    tokenizer covers languages that fine-tuning never sees; ``training_languages`` uses only ``corpora``
    (then languages outside training are out of vocabulary)."""
    cfg = typed_sections(cfg)
    if cfg.encoder.path or cfg.encoder.kind != "tiny":
        return []  # a pretrained encoder brings its own tokenizer
    if cfg.encoder.tiny is not None and cfg.encoder.tiny.vocab_from == "training_languages":  # checked: config
        return [x for c in corpora for x in c.texts()]
    return [x for src in cfg.data.sources for x in load_source(src, cfg).texts()]


__all__ = ["load_training_data", "split_holdout", "vocabulary_texts"]
