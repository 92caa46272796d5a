"""Per-corpus lookup tables for the sampler, built once with numpy over a store's active rows.

For every language: the rows holding a query (and, separately, a positive) sorted by group, with the
sorted distinct groups and where each group's rows start. The eligible groups of a (query language,
passage language) key are the groups with a query row in the first and a positive row in the second.
Drawing a batch then costs O(batch) array operations, independent of the corpus size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hybrid_sweep.data.corpus_store import CorpusStore


@dataclass
class GroupRows:
    """Rows of one language (with a query, or with a positive) grouped by group code."""

    groups: np.ndarray   # sorted distinct group codes
    starts: np.ndarray   # per group code: first position of its rows in ``rows`` (-1: none here)
    counts: np.ndarray   # per group code: its number of rows here
    rows: np.ndarray     # row ids sorted by group

    @classmethod
    def build(cls, group: np.ndarray, rows: np.ndarray, n_groups: int) -> GroupRows:
        order = np.argsort(group[rows], kind="stable")
        rows = rows[order].astype(np.int64)
        groups, first, counts = np.unique(group[rows], return_index=True, return_counts=True)
        starts, per_group = np.full(n_groups, -1, dtype=np.int64), np.zeros(n_groups, dtype=np.int32)
        starts[groups], per_group[groups] = first, counts  # direct lookup by group code: no search per draw
        return cls(groups.astype(np.int64), starts, per_group, rows)

    def pick(self, rng: np.random.Generator, groups: np.ndarray) -> np.ndarray:
        """One row of each group (uniform among the group's rows in this language)."""
        return self.rows[self.starts[groups] + (rng.random(len(groups)) * self.counts[groups]).astype(np.int64)]


class CorpusIndex:
    """Query and positive rows per language, and the eligible groups per (query, passage) language key."""

    def __init__(self, store: CorpusStore, languages: list[str], mono_langs: list[str], pairs: list[tuple[str, str]]):
        self.store = store
        act = store.active_mask()
        self.q, self.p, self.n_groups = {}, {}, len(store.group_names)
        for lang in languages:
            in_lang = act & store.lang_mask([lang])
            q = np.flatnonzero(in_lang & store.has_query)
            p = np.flatnonzero(in_lang & store.has_positive)
            if len(q):
                self.q[lang] = GroupRows.build(store.group, q, self.n_groups)
            if len(p):
                self.p[lang] = GroupRows.build(store.group, p, self.n_groups)
        mono = {} if store.cross_only else {(x, x): self._eligible(x, x) for x in mono_langs}
        cross = {pair: self._eligible(*pair) for pair in pairs} if store.parallel else {}
        self.mono = {k: v for k, v in mono.items() if len(v)}
        self.cross = {k: v for k, v in cross.items() if len(v)}
        self.eligible = {**self.cross, **self.mono}

    def _eligible(self, q_lang: str, p_lang: str) -> np.ndarray:
        q, p = self.q.get(q_lang), self.p.get(p_lang)
        if q is None or p is None:
            return np.zeros(0, dtype=np.int64)
        if len(q.groups) == len(p.groups) and np.array_equal(q.groups, p.groups):
            return q.groups  # fully parallel: share the array
        member = np.zeros(self.n_groups, dtype=bool)
        member[p.groups] = True
        return q.groups[member[q.groups]]

    def positive_groups(self, lang: str) -> np.ndarray:
        return self.p[lang].groups if lang in self.p else np.zeros(0, dtype=np.int64)
