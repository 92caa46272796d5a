"""The hybrid batch sampler (method.md §2). Hand-written: no library composes batches by language mode.

Every step draws one global batch, independently and reproducibly from ``(seed, step)``:

1. a corpus, in proportion to its size (number of groups) or by given weights;
2. a mode with probabilities ``ratio = {mono, cross, multi}``:
   - ``mono``: one language, uniform over the training languages; every query and passage in it;
   - ``cross``: per example one ordered pair (X, Y), X != Y, uniform over the active pairs;
   - ``multi``: per example one language, uniform; query and passage in it (languages mixed);
   a non-parallel corpus (English-only sets) always gives ``mono``: the drawn mode is recorded as
   ``requested`` and the batch is monolingual;
3. ``batch_size`` examples from distinct groups (no parallel false negatives within a batch).

Active pairs: all ordered pairs of the training languages sorted, shuffled once with ``pair_seed`` and
cut to the first ``n_pairs``, so a smaller set is always a prefix of a larger one (nested curves).
Because a batch depends only on ``(seed, step)``, the sampler's whole state is the next step, and a
resumed run draws exactly the batches of an uninterrupted one. Under DDP every rank draws the same
global batch and takes its own slice (``Batch.shard``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hybrid_sweep.data.training import TrainCorpus
from hybrid_sweep.errors import ConfigError

MODES = ("mono", "cross", "multi")


@dataclass(frozen=True)
class BatchItem:
    group: str
    query_lang: str
    passage_lang: str
    query: str
    positive: str
    negatives: tuple[str, ...]


@dataclass
class Batch:
    step: int
    mode: str
    requested: str
    corpus: str
    items: list[BatchItem]

    def shard(self, rank: int, world: int) -> Batch:
        """This rank's contiguous slice of the global batch."""
        per = len(self.items) // world
        return Batch(self.step, self.mode, self.requested, self.corpus, self.items[rank * per : (rank + 1) * per])

    def log_record(self) -> dict:
        return {"step": self.step, "mode": self.mode, "requested": self.requested, "corpus": self.corpus,
                "items": [[it.group, it.query_lang, it.passage_lang] for it in self.items]}


def ordered_pairs(languages: list[str], pair_seed: int) -> list[tuple[str, str]]:
    """All ordered pairs (X, Y), X != Y, in a seeded order that does not depend on anything else."""
    pairs = [(x, y) for x in sorted(languages) for y in sorted(languages) if x != y]
    order = np.random.default_rng(pair_seed).permutation(len(pairs))
    return [pairs[i] for i in order]


class HybridBatchSampler:
    def __init__(self, corpora: list[TrainCorpus], languages: list[str], batch_size: int, ratio: dict,
                 n_pairs: int | None = None, pair_seed: int = 0, seed: int = 0, weights: list[float] | None = None,
                 n_negatives: int = 1):
        self.corpora, self.languages = corpora, sorted(languages)
        self.batch_size, self.seed, self.n_negatives = int(batch_size), int(seed), int(n_negatives)
        self.ratio = self.check_ratio(ratio)
        all_pairs = ordered_pairs(self.languages, pair_seed)
        if n_pairs is not None and not 1 <= n_pairs <= len(all_pairs):
            raise ConfigError("sampler.n_pairs", f"must be in 1..{len(all_pairs)} for {len(self.languages)} languages, got {n_pairs}")
        self.pairs = all_pairs[: n_pairs or len(all_pairs)]
        self.weights = self._corpus_weights(weights)
        self._pools = [self._eligible(c) for c in corpora]
        self.step = 0

    # --- configuration checks ------------------------------------------------------------------
    @staticmethod
    def check_ratio(ratio: dict) -> np.ndarray:
        unknown = set(ratio) - set(MODES)
        if unknown:
            raise ConfigError("sampler.ratio", f"unknown mode {sorted(unknown)[0]!r}; use mono, cross, multi")
        try:
            p = np.array([float(ratio.get(m, 0.0)) for m in MODES])
        except (TypeError, ValueError):
            raise ConfigError("sampler.ratio", f"mono/cross/multi must be numbers, got {dict(ratio)}") from None
        if (p < 0).any() or not np.isclose(p.sum(), 1.0, atol=1e-6):
            raise ConfigError("sampler.ratio", f"mono/cross/multi must be >= 0 and sum to 1, got {dict(zip(MODES, p.tolist()))}")
        return p / p.sum()

    def _corpus_weights(self, weights) -> np.ndarray:
        if weights is None:
            w = np.array([len(c.groups) for c in self.corpora], dtype=float)
        else:
            if len(weights) != len(self.corpora):
                raise ConfigError("sampler.weights", f"{len(weights)} weights for {len(self.corpora)} corpora")
            w = np.array(weights, dtype=float)
        if (w < 0).any() or w.sum() <= 0:
            raise ConfigError("sampler.weights", "weights must be >= 0 with a positive sum")
        return w / w.sum()

    def _eligible(self, corpus: TrainCorpus) -> dict:
        mono = {x: corpus.groups_for(x, x) for x in self.languages}
        mono = {x: g for x, g in mono.items() if g}
        cross = {p: corpus.groups_for(*p) for p in self.pairs} if corpus.parallel else {}
        cross = {p: g for p, g in cross.items() if g}
        for lang, groups in mono.items():
            if len(groups) < self.batch_size:
                raise ConfigError("train.batch_size", f"{self.batch_size} is larger than the {len(groups)} groups of "
                                                      f"{corpus.name} in language {lang!r}")
        if not mono and not cross:
            raise ConfigError("data.languages", f"{corpus.name} has no data in the training languages {self.languages}")
        if corpus.parallel and self.ratio[1] > 0 and not cross:
            raise ConfigError("sampler.n_pairs", f"{corpus.name} has no group for any active language pair")
        if (self.ratio[0] + self.ratio[2] > 0 or not corpus.parallel) and not mono:
            raise ConfigError("sampler.ratio", f"{corpus.name} has no same-language data for mono/multi batches")
        return {"mono": mono, "cross": cross}

    # --- drawing -------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {"step": self.step, "seed": self.seed}

    def load_state_dict(self, state: dict) -> None:
        self.step = int(state["step"])

    def __iter__(self):
        return self

    def __next__(self) -> Batch:
        batch = self.batch_at(self.step)
        self.step += 1
        return batch

    def batch_at(self, step: int) -> Batch:
        rng = np.random.default_rng([self.seed, step])
        c = int(rng.choice(len(self.corpora), p=self.weights))
        corpus, pools = self.corpora[c], self._pools[c]
        requested = MODES[int(rng.choice(3, p=self.ratio))]
        mode = requested if corpus.parallel else "mono"
        if mode == "mono":
            lang = sorted(pools["mono"])[int(rng.integers(len(pools["mono"])))]
            keys = [(lang, lang)] * self.batch_size
        elif mode == "cross":
            pairs = list(pools["cross"])
            keys = [pairs[i] for i in rng.integers(len(pairs), size=self.batch_size)]
        else:
            langs = sorted(pools["mono"])
            keys = [(lang, lang) for lang in (langs[i] for i in rng.integers(len(langs), size=self.batch_size))]
        table = {**pools["cross"], **{(x, x): g for x, g in pools["mono"].items()}}
        used: set[int] = set()
        drawn = []
        for q_lang, p_lang in keys:
            gi = self._draw_group(rng, table[(q_lang, p_lang)], used)
            if gi is None:  # this key's groups are all taken: fall back to any key of the batch
                gi, (q_lang, p_lang) = self._draw_any(rng, table, set(keys), used)
            used.add(gi)
            drawn.append((gi, q_lang, p_lang))
        items = [BatchItem(corpus.groups[gi].group, q_lang, p_lang, corpus.groups[gi].items[q_lang].query,
                           corpus.groups[gi].items[p_lang].positive, self._negatives(rng, corpus, gi, p_lang, used))
                 for gi, q_lang, p_lang in drawn]
        return Batch(step, mode, requested, corpus.name, items)

    @staticmethod
    def _draw_group(rng, candidates: list[int], used: set[int], tries: int = 16) -> int | None:
        for _ in range(tries):
            gi = candidates[int(rng.integers(len(candidates)))]
            if gi not in used:
                return gi
        free = [g for g in candidates if g not in used]
        return free[int(rng.integers(len(free)))] if free else None

    def _draw_any(self, rng, table, keys, used):
        for key in sorted(keys):
            gi = self._draw_group(rng, table[key], used)
            if gi is not None:
                return gi, key
        raise ConfigError("train.batch_size", f"{self.batch_size} exceeds the distinct groups available for one batch")

    def _negatives(self, rng, corpus: TrainCorpus, gi: int, lang: str, used: set[int]) -> tuple[str, ...]:
        """Exactly ``n_negatives`` hard negatives in the passage language: the group's own, topped up with
        positives of groups outside the batch (true negatives, never a parallel version)."""
        negs = corpus.groups[gi].items[lang].negatives
        if len(negs) >= self.n_negatives:
            return tuple(negs[i] for i in sorted(rng.choice(len(negs), size=self.n_negatives, replace=False)))
        others = self._pools[self.corpora.index(corpus)]["mono"].get(lang) or corpus.groups_for(lang, lang)
        need, picked = self.n_negatives - len(negs), []
        for _ in range(4 * need):  # rejection sampling; large corpora almost never reject
            oi = others[int(rng.integers(len(others)))]
            if oi not in used and oi not in picked:
                picked.append(oi)
                if len(picked) == need:
                    break
        if len(picked) < need:
            free = [oi for oi in others if oi not in used and oi not in picked]
            if len(free) < need - len(picked):
                raise ConfigError("sampler.n_negatives", f"not enough groups in {lang!r} outside the batch "
                                                         f"to fill {self.n_negatives} negatives")
            picked += [free[i] for i in sorted(rng.choice(len(free), size=need - len(picked), replace=False))]
        extra = [corpus.groups[oi].items[lang].positive for oi in picked]
        return tuple(negs) + tuple(extra)
