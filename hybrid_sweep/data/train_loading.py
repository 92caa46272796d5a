"""Build the training corpora and the validation corpus named by the ``data`` config."""

from __future__ import annotations

import zlib

from hybrid_sweep.data.download import data_root, ensure_lareqa_file
from hybrid_sweep.data.hub_sources import load_hub_corpus
from hybrid_sweep.data.lareqa import LAREQA_BENCHMARKS, load_lareqa
from hybrid_sweep.data.synthetic import synthetic_benchmark
from hybrid_sweep.data.training import (TrainCorpus, check_languages, corpus_from_benchmark,
                                        corpus_from_rows, read_rows, to_pivot)
from hybrid_sweep.errors import ConfigError

SOURCE_KINDS = ("synthetic", "lareqa", "file", "hub")


def load_source(src, cfg) -> TrainCorpus:
    kind = src.get("kind")
    ctx, negs = cfg.data.get("with_context", False), cfg.data.get("max_negatives", 3)
    if kind == "synthetic":
        return corpus_from_benchmark(synthetic_benchmark(dict(cfg.synthetic), src.get("split", "train")), ctx, negs)
    if kind == "lareqa":
        name = src.get("benchmark")
        if name not in LAREQA_BENCHMARKS:
            raise ConfigError("data.sources.benchmark", f"unknown LAReQA benchmark {name!r}; one of {', '.join(LAREQA_BENCHMARKS)}")
        folder, langs = LAREQA_BENCHMARKS[name]
        root, supplied = data_root(cfg.paths.get("data_root"))
        for lang in langs:
            ensure_lareqa_file(root, folder, lang, supplied)
        return corpus_from_benchmark(load_lareqa(name, root / "lareqa" / folder), ctx, negs)
    if kind == "file":
        if not src.get("path"):
            raise ConfigError("data.sources.path", "a file source needs a path (JSONL or parquet)")
        return corpus_from_rows(read_rows(src.path), src.get("name", str(src.path)), str(src.path),
                                parallel=src.get("parallel", True))
    if kind == "hub":
        return load_hub_corpus(src)
    raise ConfigError("data.sources.kind", f"unknown source kind {kind!r}; one of {', '.join(SOURCE_KINDS)}")


def split_holdout(corpus: TrainCorpus, fraction: float, seed: int) -> tuple[TrainCorpus, TrainCorpus]:
    """Deterministic split by group id (a hash, so adding data never moves existing groups)."""
    if not 0 < fraction < 1:
        raise ConfigError("data.dev.holdout", f"must be in (0, 1), got {fraction}")
    cut = int(fraction * 2**32)
    held = [g for g in corpus.groups if zlib.crc32(f"{seed}:{g.group}".encode()) < cut]
    keep = [g for g in corpus.groups if zlib.crc32(f"{seed}:{g.group}".encode()) >= cut]
    return TrainCorpus(corpus.name, keep, corpus.parallel), TrainCorpus(f"{corpus.name}-dev", held, corpus.parallel)


def load_training_data(cfg) -> tuple[list[TrainCorpus], TrainCorpus | None, list[str]]:
    """(training corpora restricted to the training languages, validation corpus, training languages)."""
    sources = list(cfg.data.get("sources") or [])
    if not sources:
        raise ConfigError("data.sources", "no training sources configured")
    corpora = [load_source(s, cfg) for s in sources]
    languages = cfg.data.get("languages")
    if languages is None:
        languages = sorted({lang for c in corpora for lang in c.languages})
    languages = list(languages)
    union = TrainCorpus("all sources", [g for c in corpora for g in c.groups])
    check_languages(union, languages)
    budgets = dict(cfg.data.get("budgets") or {})
    for lang in budgets:
        if lang not in languages:
            raise ConfigError("data.budgets", f"budget for {lang!r}, which is not a training language")
    dev_cfg = cfg.data.get("dev") or {}
    dev = None
    if dev_cfg.get("holdout"):
        corpora[0], dev = split_holdout(corpora[0], float(dev_cfg.holdout), int(dev_cfg.get("seed", 0)))
    elif dev_cfg.get("kind"):
        dev = load_source(dev_cfg, cfg)
    corpora = [c.restrict(languages, budgets) for c in corpora]
    pivot = cfg.data.get("pivot")
    if pivot:
        if pivot not in languages:
            raise ConfigError("data.pivot", f"{pivot!r} is not a training language ({', '.join(languages)})")
        corpora = [to_pivot(c, pivot) for c in corpora]
    corpora = [c for c in corpora if c.groups]
    if dev is not None:
        dev_langs = dev_cfg.get("languages") or languages
        dev = dev.restrict([lang for lang in dev_langs if lang in dev.languages])
        dev = dev if dev.groups else None
    return corpora, dev, languages


def vocabulary_texts(cfg, corpora: list[TrainCorpus]) -> list[str]:
    """The texts a new tiny encoder builds its vocabulary from (``encoder.tiny.vocab_from``):
    ``all_languages`` (default) reads every language the sources hold, as a multilingual pretrained
    tokenizer covers languages that fine-tuning never sees; ``training_languages`` uses only ``corpora``
    (then languages outside training are out of vocabulary)."""
    if cfg.encoder.get("path") or cfg.encoder.get("kind") != "tiny":
        return []  # a pretrained encoder brings its own tokenizer
    vocab_from = (cfg.encoder.get("tiny") or {}).get("vocab_from", "all_languages")
    if vocab_from == "training_languages":
        return [x for c in corpora for x in c.texts()]
    if vocab_from != "all_languages":
        raise ConfigError("encoder.tiny.vocab_from", f"unknown value {vocab_from!r}; all_languages or training_languages")
    return [x for src in cfg.data.sources for x in load_source(src, cfg).texts()]


__all__ = ["load_training_data", "split_holdout", "vocabulary_texts"]
