"""Pre-training text kept apart from the fine-tuning passages (research question 4).

- ``flores``: FLORES-200 sentences as split by SIB-200, ``<data root>/sib200/<FLORES code>/<split>.tsv``
  (real text in 205 varieties, every resource level). Language labels are mapped to FLORES codes
  through the language table (``yo`` -> ``yor_Latn``; FLORES codes pass through).
- ``synthetic``: a fresh sample of the synthetic benchmark's articles: the same languages (lexicons,
  word orders) as ``synthetic.*`` describes, but content drawn from its own seed, so no pre-training
  paragraph is a fine-tuning passage or an evaluation candidate.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from hybrid_sweep.data.download import data_root
from hybrid_sweep.data.flores_pairs import read_flores_tsv
from hybrid_sweep.data.languages import flores_code
# The generator's building blocks: the fresh sample must use exactly the benchmark's lexicons.
from hybrid_sweep.data.synthetic import SyntheticConfig, _content, _lexicons, _reorder
from hybrid_sweep.errors import ConfigError, DataError


def flores_texts(langs: list[str], split: str, configured_root: str | None,
                 max_per_language: int | None = None) -> dict[str, list[str]]:
    """Language label -> FLORES sentences of ``split`` (train or dev)."""
    if split not in ("train", "dev"):
        raise ConfigError("pretrain.text_split", f"FLORES split {split!r}; one of train, dev")
    root, _ = data_root(configured_root)
    out = {}
    for lang in langs:
        code = flores_code(lang)
        if code is None:
            raise ConfigError("pretrain.text_source", f"language {lang!r} has no FLORES-200 code (language table)")
        texts = [t for t in read_flores_tsv(root / "sib200" / code / f"{split}.tsv").column("text").to_pylist() if t]
        if not texts:
            raise DataError(root / "sib200" / code / f"{split}.tsv", "no sentences")
        out[lang] = texts[:max_per_language] if max_per_language else texts
    return out


def synthetic_texts(synthetic: dict, langs: list[str], n_articles: int, seed: int) -> dict[str, list[str]]:
    """Language code -> paragraphs of ``n_articles`` new synthetic articles (content seed ``[synthetic.seed,
    seed]``; the benchmark itself uses ``synthetic.seed`` alone)."""
    if n_articles < 1:
        raise ConfigError("pretrain.text_articles", f"must be >= 1, got {n_articles}")
    cfg = SyntheticConfig.from_dict(synthetic)
    rng = np.random.default_rng(cfg.seed)
    _content(cfg, rng)  # advance the generator as the benchmark does, so the lexicons are the benchmark's
    lexicons = _lexicons(cfg, rng)
    fresh = dataclasses.replace(cfg, articles={"train": n_articles, "dev": 0, "test": 0})
    articles = _content(fresh, np.random.default_rng([cfg.seed, int(seed)]))
    by_code = {lang.code: lang for lang in cfg.languages}
    out = {}
    for lang in langs:
        if lang not in by_code:
            raise ConfigError("pretrain.text_source", f"language {lang!r} is not a synthetic language "
                                                      f"({', '.join(by_code)})")
        lex, order = lexicons[lang], by_code[lang].order
        out[lang] = [" ".join(" ".join(lex[w] for w in _reorder(s, order)) + "." for s in para["sentences"])
                     for paragraphs in articles for para in paragraphs]
    return out
