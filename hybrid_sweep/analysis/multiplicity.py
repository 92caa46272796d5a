"""Multiplicity control inside a report (statsmodels' ``multipletests``): Holm for the few planned
comparisons, Benjamini–Hochberg for the all-pairs table. Comparisons without a p-value (fewer than three
runs a side) are left out of the family and keep an empty adjusted p."""

from __future__ import annotations

import numpy as np
import pandas as pd
from statsmodels.stats.multitest import multipletests

CORRECTIONS = {"holm": "Holm (family-wise error)", "fdr_bh": "Benjamini–Hochberg (false discovery rate)"}


def adjust(p, method: str) -> tuple[np.ndarray, int]:
    """Adjusted p-values (NaN where ``p`` is NaN) and the family size (the number of finite p)."""
    if method not in CORRECTIONS:
        raise ValueError(f"unknown correction {method!r}; one of {sorted(CORRECTIONS)}")
    p = np.asarray(p, dtype=float)
    out = np.full(p.shape, np.nan)
    finite = np.isfinite(p)
    if finite.any():
        out[finite] = multipletests(p[finite], method=method)[1]
    return out, int(finite.sum())


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
