"""Multiplicity control inside a report: Holm (family-wise error) and Benjamini–Hochberg (false discovery
rate, ``scipy.stats.false_discovery_control``). Holm is the few lines of its step-down rule, checked against
statsmodels' ``multipletests`` in the tests: that function runs ``gc.collect()`` on every call (0.2 s on a
busy machine), which the per-report simulations call thousands of times. Comparisons without a p-value (fewer than three
runs a side) are left out of the family and keep an empty adjusted p."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

CORRECTIONS = {"holm": "Holm (family-wise error)", "fdr_bh": "Benjamini–Hochberg (false discovery rate)"}


def adjust(p, method: str) -> tuple[np.ndarray, int]:
    """Adjusted p-values (NaN where ``p`` is NaN) and the family size (the number of finite p)."""
    if method not in CORRECTIONS:
        raise ValueError(f"unknown correction {method!r}; one of {sorted(CORRECTIONS)}")
    p = np.asarray(p, dtype=float)
    out = np.full(p.shape, np.nan)
    finite = np.isfinite(p)
    if finite.any():
        out[finite] = holm(p[finite]) if method == "holm" else stats.false_discovery_control(p[finite], method="bh")
    return out, int(finite.sum())


def holm(p: np.ndarray) -> np.ndarray:
    """Holm's step-down adjusted p: max over j <= i of (m − j + 1) p_(j), capped at 1, in input order."""
    order = np.argsort(p, kind="stable")
    m = len(p)
    stepped = np.minimum(np.maximum.accumulate((m - np.arange(m)) * p[order]), 1.0)
    out = np.empty(m)
    out[order] = stepped
    return out


def add_adjusted(table: pd.DataFrame, method: str, columns=("p",)) -> pd.DataFrame:
    """``table`` with ``<col>_adj`` next to every p column, and ``correction`` naming the method and the
    family size (all rows of the table form one family)."""
    table = table.copy()
    sizes = []
    for col in columns:
        if col in table:
            table[f"{col}_adj"], size = adjust(table[col], method)
            sizes.append(size)
    table["correction"] = f"{CORRECTIONS[method]}, family of {max(sizes, default=0)}"
    return table


def adjust_union(tables: list[tuple[pd.DataFrame, list[str]]], columns=("p",), method: str = "holm") -> list[pd.DataFrame]:
    """Adjust every table's p columns over the union of all their tests: one family per p column across the
    tables (the exploratory part of a report), a test listed in two tables (a planned pair is also in the
    all-pairs table) counted once by its ``key`` columns. Returns the tables with ``<col>_adj`` and
    ``correction`` replaced."""
    out = [t.copy() for t, _ in tables]
    sizes = []
    for col in columns:
        keyed = {}
        for (t, key), o in zip(tables, out):
            if col not in t:
                continue
            for k, p in zip(t[key].astype(str).agg("|".join, axis=1), t[col]):
                if np.isfinite(p):
                    keyed.setdefault(f"{'|'.join(key)}#{k}", p)
        adj, size = adjust(list(keyed.values()), method)
        sizes.append(size)
        lookup = dict(zip(keyed, adj))
        for (t, key), o in zip(tables, out):
            if col in t:
                o[f"{col}_adj"] = [lookup.get(f"{'|'.join(key)}#{k}", np.nan) for k in t[key].astype(str).agg("|".join, axis=1)]
    for o in out:
        o["correction"] = f"{CORRECTIONS[method]} over every exploratory test in this report, family of {max(sizes, default=0)}"
    return out
