"""The hybrid batch sampler (method.md §2). Hand-written: no library composes batches by language mode.

Every step draws one global batch, independently and reproducibly from ``(seed, step)``:

1. a mode with probabilities ``ratio = {mono, cross, mixed}``:
   - ``mono``: one language, uniform over the mono languages; every query and passage in it;
   - ``cross``: per example one ordered pair (X, Y), X != Y, uniform over the active pairs;
   - ``mixed``: per example one language, uniform; query and passage in it (languages mixed);
2. a corpus among those that can serve the mode, in proportion to its number of examples (rows with a
   query) or to the given ``weights``: non-parallel sets (English-only) serve mono / mixed only,
   translation-pair sets (FLORES, SWIM-IR cross-lingual) cross only, so a mix of sources gives hybrid
   batches wherever both kinds exist. If no weighted corpus can serve the mode and all are non-parallel,
   the batch is monolingual and the drawn mode is recorded as ``requested``;
3. ``batch_size`` examples from distinct groups (no parallel false negatives within a batch): a group
   uniformly among the key's eligible groups, then one of its rows in that language (a group may have
   several: mMARCO triples);
4. per example ``n_negatives`` hard negatives in the passage language: the row's own, topped up with
   positives of groups outside the batch. A source's own ``n_negatives`` overrides the sampler's (0 for
   sets without hard negatives: in-batch negatives only); asking hard negatives of a source that has none
   is a ``ConfigError``.

Because a batch depends only on ``(seed, step)``, the sampler's whole state is the next step, and a
resumed run draws exactly the batches of an uninterrupted one. Under DDP every rank draws the same
global batch and takes its own slice (``Batch.shard``). Per-step cost is O(batch): numpy draws on
precomputed index arrays (``sampling/index.py``), then only the batch's texts are read from the store.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from hybrid_sweep.config.mix import MODES
from hybrid_sweep.config.mix import check_ratio as check_mix
from hybrid_sweep.data.corpus_store import CorpusStore
from hybrid_sweep.data.training import TrainCorpus, corpus_to_store
from hybrid_sweep.errors import ConfigError
from hybrid_sweep.sampling.index import CorpusIndex
from hybrid_sweep.sampling.pairs import active_pairs, mono_languages, ordered_pairs



def _draw(rng: np.random.Generator, probs: np.ndarray) -> int:
    """One index with probabilities ``probs`` (an inverse-CDF draw: one uniform number)."""
    return min(int(np.searchsorted(np.cumsum(probs), rng.random(), side="right")), len(probs) - 1)


class BatchItem(NamedTuple):
    """One example: immutable, compared by value (a named tuple: cheap to build 1,024 times a step)."""

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


class HybridBatchSampler:
    def __init__(self, corpora: list[CorpusStore | TrainCorpus], languages: list[str], batch_size: int, ratio: dict,
                 n_pairs: int | None = None, pair_seed: int = 0, seed: int = 0, weights: list[float] | None = None,
                 n_negatives: int | None = 1, pair_kind: str = "ordered", pair_draw: str = "fixed",
                 mono_langs: str = "all"):
        self.corpora = [corpus_to_store(c) if isinstance(c, TrainCorpus) else c for c in corpora]
        self.languages = sorted(languages)
        self.batch_size, self.seed = int(batch_size), int(seed)
        self.ratio = self.check_ratio(ratio)
        self.pairs = active_pairs(self.languages, n_pairs, pair_seed, pair_kind, pair_draw, seed)
        self.mono_languages = mono_languages(self.languages, self.pairs, mono_langs)
        self._index = [CorpusIndex(c, self.languages, self.mono_languages, self.pairs) for c in self.corpora]
        self.n_negatives = [self._resolve_negatives(c, n_negatives) for c in self.corpora]
        self.weights = self._corpus_weights(weights)
        self._serving = {m: self._check_mode(m) for m in MODES}
        self.step = 0

    # --- configuration checks ------------------------------------------------------------------
    @staticmethod
    def check_ratio(ratio: dict) -> np.ndarray:
        """The mix as mode probabilities (validated by the config layer's one check of it)."""
        p = np.array(check_mix(ratio))
        return p / p.sum()

    def _corpus_weights(self, weights) -> np.ndarray:
        if weights is None:
            w = np.array([c.n_examples for c in self.corpora], dtype=float)
        else:
            if len(weights) != len(self.corpora):
                raise ConfigError("sampler.weights", f"{len(weights)} weights for {len(self.corpora)} corpora")
            w = np.array(weights, dtype=float)
        if (w < 0).any() or w.sum() <= 0:
            raise ConfigError("sampler.weights", "weights must be >= 0 with a positive sum")
        return w

    def _resolve_negatives(self, corpus: CorpusStore, default) -> int:
        n = getattr(corpus, "n_negatives", None)
        n = default if n is None else n
        n = 0 if n is None else int(n)
        if n < 0:
            raise ConfigError("sampler.n_negatives", f"must be >= 0, got {n}")
        if n > 0 and not corpus.has_negatives:
            raise ConfigError("sampler.n_negatives", f"{n} hard negatives asked of source {corpus.name!r}, which has "
                                                     "none; set its n_negatives: 0 (in-batch negatives only)")
        return n

    def _check_mode(self, mode: str) -> tuple[np.ndarray, np.ndarray] | None:
        """(corpus ids, probabilities) of the weighted corpora that can serve ``mode``."""
        for c, idx in zip(self.corpora, self._index):
            if not idx.eligible:
                raise ConfigError("data.languages", f"{c.name} has no data in the training languages {self.languages}")
            for (x, y), groups in idx.mono.items():
                if len(groups) < self.batch_size:
                    raise ConfigError("train.batch_size", f"{self.batch_size} is larger than the {len(groups)} groups "
                                                          f"of {c.name} in language {x!r}")
        table = [idx.cross if mode == "cross" else idx.mono for idx in self._index]
        ids = np.array([i for i, t in enumerate(table) if t and self.weights[i] > 0], dtype=np.int64)
        if len(ids):
            return ids, self.weights[ids] / self.weights[ids].sum()
        if self.ratio[MODES.index(mode)] == 0:
            return None
        if mode != "mono" and not any(c.parallel for c, w in zip(self.corpora, self.weights) if w > 0):
            return None  # English-only sets: the batch falls back to mono, recorded as ``requested``
        if mode == "cross":
            raise ConfigError("sampler.n_pairs", f"no training source has a group for any active language pair {self.pairs[:4]}...")
        raise ConfigError("sampler.ratio", f"{mode} batches need same-language data, which no source has "
                                           f"({', '.join(c.name for c in self.corpora)}); add a source with it")

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
        requested = MODES[_draw(rng, self.ratio)]
        mode = requested if self._serving[requested] is not None else "mono"
        ids, probs = self._serving[mode]
        c = int(ids[_draw(rng, probs)])
        corpus, idx = self.corpora[c], self._index[c]
        if mode == "cross":
            keys = sorted(idx.cross)
            key_of = rng.integers(len(keys), size=self.batch_size)
        else:
            keys = sorted(idx.mono)
            key_of = (np.full(self.batch_size, rng.integers(len(keys))) if mode == "mono"
                      else rng.integers(len(keys), size=self.batch_size))
        groups, key_of = self._draw_groups(rng, idx, keys, key_of)
        langs = self.languages
        key_langs = np.array([[langs.index(x), langs.index(y)] for x, y in keys], dtype=np.int64)
        q_langs, p_langs = key_langs[key_of, 0], key_langs[key_of, 1]
        q_rows, p_rows = self._pick_rows(rng, idx, groups, q_langs, p_langs, langs)
        negatives = self._negatives(rng, corpus, idx, groups, p_rows, p_langs, self.n_negatives[c])
        names = corpus.group_names.take(pa.array(groups)).to_pylist()
        queries, positives = corpus.texts_at("query", q_rows), corpus.texts_at("positive", p_rows)
        items = [tuple.__new__(BatchItem, t) for t in zip(names, [langs[i] for i in q_langs],
                                                           [langs[i] for i in p_langs], queries, positives, negatives)]
        return Batch(step, mode, requested, corpus.name, items)

    def _draw_groups(self, rng, idx: CorpusIndex, keys, key_of: np.ndarray):
        """Distinct groups, one per example, uniform among each example's key; duplicates are redrawn."""
        groups = np.empty(len(key_of), dtype=np.int64)
        for k in np.unique(key_of):
            at = np.flatnonzero(key_of == k)
            pool = idx.eligible[keys[k]]
            groups[at] = pool[rng.integers(len(pool), size=len(at))]
        for _ in range(16):
            dup = np.ones(len(groups), dtype=bool)
            dup[np.unique(groups, return_index=True)[1]] = False
            if not dup.any():
                return groups, key_of
            for i in np.flatnonzero(dup):
                pool = idx.eligible[keys[key_of[i]]]
                groups[i] = pool[int(rng.integers(len(pool)))]
        return self._resolve_exhausted(rng, idx, keys, key_of, groups)

    def _resolve_exhausted(self, rng, idx, keys, key_of, groups):
        """Slow path for keys with few groups: draw from the groups still free, else another key of the batch."""
        key_of = key_of.copy()
        used: set[int] = set()
        for i in range(len(groups)):
            if int(groups[i]) not in used:
                used.add(int(groups[i]))
                continue
            for k in [key_of[i]] + sorted(set(key_of.tolist()) - {key_of[i]}):
                free = np.setdiff1d(idx.eligible[keys[k]], np.fromiter(used, dtype=np.int64))
                if len(free):
                    groups[i], key_of[i] = free[int(rng.integers(len(free)))], k
                    used.add(int(groups[i]))
                    break
            else:
                raise ConfigError("train.batch_size", f"{self.batch_size} exceeds the distinct groups available for one batch")
        return groups, key_of

    @staticmethod
    def _pick_rows(rng, idx: CorpusIndex, groups, q_langs: np.ndarray, p_langs: np.ndarray, langs: list[str]):
        """Per example a query row of its group in the query language and a positive row in the passage
        language (the query's own row where the languages agree and it has a positive)."""
        q_rows, p_rows = np.empty(len(groups), dtype=np.int64), np.full(len(groups), -1, dtype=np.int64)
        for li in np.unique(q_langs):
            at = np.flatnonzero(q_langs == li)
            q_rows[at] = idx.q[langs[li]].pick(rng, groups[at])
        own = (q_langs == p_langs) & idx.store.has_positive[q_rows]
        p_rows[own] = q_rows[own]
        for li in np.unique(p_langs[~own]):
            at = np.flatnonzero(~own & (p_langs == li))
            p_rows[at] = idx.p[langs[li]].pick(rng, groups[at])
        return q_rows, p_rows

    def _negatives(self, rng, corpus, idx, groups, p_rows, p_langs, n: int) -> list[tuple[str, ...]]:
        """Exactly ``n`` hard negatives in the passage language per example: the row's own (drawn without
        replacement), topped up with positives of groups outside the batch (true negatives)."""
        if n == 0:
            return [()] * len(groups)
        counts = np.asarray(corpus.n_neg[p_rows], dtype=np.int64)
        width = int(counts.max(initial=0))
        chosen = np.zeros((len(groups), 0), dtype=np.int64)
        if width:
            keys_r = rng.random((len(groups), width))
            keys_r[np.arange(width)[None, :] >= counts[:, None]] = np.inf
            chosen = np.sort(np.argsort(keys_r, axis=1)[:, :n], axis=1)
        lists = corpus.take("negatives", p_rows)
        offsets = np.asarray(lists.offsets.to_numpy()) - int(lists.offsets[0].as_py())
        own_n = np.minimum(counts, n)
        take = np.arange(chosen.shape[1])[None, :] < own_n[:, None]
        flat_idx = (offsets[:-1, None] + chosen)[take]  # row-major: each example's negatives in order
        values = pc.list_flatten(lists).take(pa.array(flat_idx.astype(np.int64))).to_pylist()
        if (own_n == n).all():  # every row had enough of its own: no top-up
            return list(zip(*[iter(values)] * n))
        out, pos, batch_groups = [], 0, set(groups.tolist())
        for i in range(len(groups)):
            own = tuple(values[pos: pos + own_n[i]])
            pos += own_n[i]
            if own_n[i] < n:
                own += self._top_up(rng, corpus, idx, self.languages[p_langs[i]], n - own_n[i], batch_groups)
            out.append(own)
        return out

    def _top_up(self, rng, corpus, idx, lang: str, need: int, batch_groups: set) -> tuple[str, ...]:
        others = idx.positive_groups(lang)
        picked: list[int] = []
        for _ in range(4 * need):  # rejection sampling; large corpora almost never reject
            g = int(others[int(rng.integers(len(others)))])
            if g not in batch_groups and g not in picked:
                picked.append(g)
                if len(picked) == need:
                    break
        if len(picked) < need:
            free = np.setdiff1d(others, np.fromiter(batch_groups | set(picked), dtype=np.int64))
            if len(free) < need - len(picked):
                raise ConfigError("sampler.n_negatives", f"not enough groups in {lang!r} outside the batch "
                                                         f"to fill {need} negatives")
            picked += free[np.sort(rng.choice(len(free), size=need - len(picked), replace=False))].tolist()
        rows = idx.p[lang].pick(rng, np.array(picked, dtype=np.int64))
        return tuple(corpus.texts_at("positive", rows))


__all__ = ["Batch", "BatchItem", "HybridBatchSampler", "MODES", "ordered_pairs"]
