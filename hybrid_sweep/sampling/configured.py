"""The sampler named by the ``sampler`` config: the one place that maps config keys to sampler arguments."""

from __future__ import annotations

from hybrid_sweep.config.load import typed_sections
from hybrid_sweep.sampling.hybrid import HybridBatchSampler


def sampler_from_config(cfg, corpora, languages: list[str], seed: int, validation: bool = False) -> HybridBatchSampler:
    """The training sampler; with ``validation``: every language pair of the held-out set (so validation
    loss is comparable across ``n_pairs``), and monolingual batches only for a one-language set."""
    cfg = typed_sections(cfg)
    s = cfg.sampler
    ratio, n_pairs = dict(s.ratio), s.n_pairs
    if validation:
        n_pairs = None
        ratio = {"mono": 1.0} if len(languages) < 2 else ratio
        ratio = _servable(ratio, corpora)
    return HybridBatchSampler(corpora, languages, cfg.train.batch_size, ratio, n_pairs, s.pair_seed, seed, s.weights,
                              s.n_negatives, pair_kind=s.pair_kind, pair_draw=s.pair_draw, mono_langs=s.mono_languages)


def _servable(ratio: dict, corpora) -> dict:
    """Validation batches of the modes the held-out corpus can serve (a translation-pair set has no mono
    batches), renormalised; training keeps its ratio and refuses a mode no source serves."""
    can = {"mono": any(not c.cross_only for c in corpora), "mixed": any(not c.cross_only for c in corpora),
           "cross": any(c.parallel for c in corpora)}
    kept = {m: float(p) for m, p in ratio.items() if can.get(m) and float(p) > 0}
    total = sum(kept.values())
    return {m: p / total for m, p in kept.items()} if total else ratio
