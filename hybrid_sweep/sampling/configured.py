"""The sampler named by the ``sampler`` config: the one place that maps config keys to sampler arguments."""

from __future__ import annotations

from hybrid_sweep.sampling.hybrid import HybridBatchSampler


def sampler_from_config(cfg, corpora, languages: list[str], seed: int, validation: bool = False) -> HybridBatchSampler:
    """The training sampler; with ``validation``: every language pair of the held-out set (so validation
    loss is comparable across ``n_pairs``), and monolingual batches only for a one-language set."""
    s = cfg.sampler
    ratio, n_pairs = dict(s.ratio), s.get("n_pairs")
    if validation:
        n_pairs = None
        ratio = {"mono": 1.0} if len(languages) < 2 else ratio
        ratio = _servable(ratio, corpora)
    return HybridBatchSampler(corpora, languages, cfg.train.batch_size, ratio, n_pairs, s.get("pair_seed", 0), seed,
                              s.get("weights"), s.get("n_negatives", 1), pair_kind=s.get("pair_kind", "ordered"),
                              pair_draw=s.get("pair_draw", "fixed"), mono_langs=s.get("mono_languages", "all"))


def _servable(ratio: dict, corpora) -> dict:
    """Validation batches of the modes the held-out corpus can serve (a translation-pair set has no mono
    batches), renormalised; training keeps its ratio and refuses a mode no source serves."""
    can = {"mono": any(not c.cross_only for c in corpora), "mixed": any(not c.cross_only for c in corpora),
           "cross": any(c.parallel for c in corpora)}
    kept = {m: float(p) for m, p in ratio.items() if can.get(m) and float(p) > 0}
    total = sum(kept.values())
    return {m: p / total for m, p in kept.items()} if total else ratio
