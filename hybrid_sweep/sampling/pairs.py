"""Language-pair sets for cross-lingual batches (research question 1), each choice explicit.

- ``kind``: ``ordered`` counts directed pairs (n=1 is X->Y only); ``unordered`` counts language pairs
  {X, Y} and trains both directions of each.
- order: all pairs of the sorted languages, shuffled once; ``draw: fixed`` seeds the shuffle with
  ``pair_seed`` alone (every training seed sees the same pairs), ``draw: per_seed`` with
  (``pair_seed``, training seed), so seed-to-seed variation includes which pairs were drawn.
- the first ``n_pairs`` of that order are active, so a smaller set is a prefix of a larger one (nested).
- ``mono_languages``: mono / mixed batches use ``all`` training languages, or only those in the active
  ``pairs``.
"""

from __future__ import annotations

import numpy as np

from hybrid_sweep.errors import ConfigError

PAIR_KINDS = ("ordered", "unordered")
PAIR_DRAWS = ("fixed", "per_seed")
MONO_LANGUAGES = ("all", "pairs")


def _shuffled(items: list, seed) -> list:
    order = np.random.default_rng(seed).permutation(len(items))
    return [items[i] for i in order]


def ordered_pairs(languages: list[str], pair_seed) -> list[tuple[str, str]]:
    """All ordered pairs (X, Y), X != Y, in a seeded order that does not depend on anything else."""
    return _shuffled([(x, y) for x in sorted(languages) for y in sorted(languages) if x != y], pair_seed)


def unordered_pairs(languages: list[str], pair_seed) -> list[tuple[str, str]]:
    """All pairs {X, Y} (as X < Y) in a seeded order."""
    langs = sorted(languages)
    return _shuffled([(x, y) for i, x in enumerate(langs) for y in langs[i + 1:]], pair_seed)


def check_choice(key: str, value, allowed: tuple) -> str:
    if value not in allowed:
        raise ConfigError(key, f"unknown value {value!r}; one of {', '.join(allowed)}")
    return value


def active_pairs(languages: list[str], n_pairs: int | None, pair_seed: int = 0, kind: str = "ordered",
                 draw: str = "fixed", train_seed: int = 0) -> list[tuple[str, str]]:
    """The directed pairs cross-lingual batches use (both directions of each pair for ``unordered``)."""
    check_choice("sampler.pair_kind", kind, PAIR_KINDS)
    check_choice("sampler.pair_draw", draw, PAIR_DRAWS)
    seed = [int(pair_seed), int(train_seed)] if draw == "per_seed" else int(pair_seed)
    pairs = (ordered_pairs if kind == "ordered" else unordered_pairs)(languages, seed)
    if n_pairs is not None and not 1 <= n_pairs <= len(pairs):
        raise ConfigError("sampler.n_pairs", f"must be in 1..{len(pairs)} ({kind} pairs of {len(languages)} languages), "
                                             f"got {n_pairs}")
    chosen = pairs[: n_pairs or len(pairs)]
    return chosen if kind == "ordered" else [d for x, y in chosen for d in ((x, y), (y, x))]


def mono_languages(languages: list[str], pairs: list[tuple[str, str]], which: str = "all") -> list[str]:
    check_choice("sampler.mono_languages", which, MONO_LANGUAGES)
    return sorted(languages) if which == "all" else sorted({lang for p in pairs for lang in p})
