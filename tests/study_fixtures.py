"""Fabricated results roots for the study-level tests: per-query values from a known model, the results
rows collect would write from them (per-pool means and their macro average), and the per-query frame."""

from __future__ import annotations

import numpy as np
import pandas as pd

LANGS = ("aa", "bb")


def fabricate(rng, levels: dict, n_seeds: int, axis: str = "n_pairs", questions: int = 40, langs=LANGS,
              interaction: float = 0.0, run_sd: float = 0.01, seed_share: float = 0.5, rxq_sd: float = 0.05,
              row_sd: float = 0.1, setting: str = "mono", benchmark: str = "bench") -> tuple[pd.DataFrame, pd.DataFrame]:
    """(results, per_query) of one study: ``levels`` maps an axis level to its true effect on every query
    row (the null: all 0). Value of a query row = 0.5 + effect + question (sd .15) + language version (sd
    .1) + condition x question (``interaction``) + run (``run_sd``, a share ``seed_share`` of its variance
    shared by a seed across conditions) + run x question (``rxq_sd``) + row noise (``row_sd``)."""
    c, n, q, nl = len(levels), n_seeds, questions, len(langs)
    y = (0.5 + np.array(list(levels.values()))[:, None, None, None] + rng.normal(0, 0.15, (1, 1, q, 1))
         + rng.normal(0, 0.1, (1, 1, q, nl)) + rng.normal(0, interaction, (c, 1, q, 1))
         + rng.normal(0, run_sd * np.sqrt(seed_share), (1, n, 1, 1))
         + rng.normal(0, run_sd * np.sqrt(1 - seed_share), (c, n, 1, 1))
         + rng.normal(0, rxq_sd, (c, n, q, 1)) + rng.normal(0, row_sd, (c, n, q, nl)))
    keys = list(levels)
    ci, si, qi, li = (a.ravel() for a in np.meshgrid(range(c), range(n), range(q), range(nl), indexing="ij"))
    lang = np.array(langs)[li]
    per_query = pd.DataFrame({"benchmark": benchmark, "setting": setting, "run_id": [f"r{keys[a]}-{b}" for a, b in zip(ci, si)],
                              axis: np.array(keys, dtype=object)[ci], "seed": si, "group": qi.astype(str),
                              "query_lang": lang, "doc_lang": lang, "ap": y.ravel()})
    pools = y.mean(axis=2)  # (c, n, langs)
    rows = []
    for a, key in enumerate(keys):
        for b in range(n):
            base = {"benchmark": benchmark, "setting": setting, "metric": "map", "run_id": f"r{key}-{b}", axis: key, "seed": b}
            rows += [{**base, "query_lang": lg, "doc_lang": lg, "value": pools[a, b, i]} for i, lg in enumerate(langs)]
            rows.append({**base, "query_lang": "avg", "doc_lang": "avg", "value": pools[a, b].mean()})
    return pd.DataFrame(rows), per_query


def write_root(root, results: pd.DataFrame, per_query: pd.DataFrame | None, axes: list[str], numeric=(), log=(),
               study: dict | None = None) -> None:
    """results.parquet (with collect's schema metadata, and the study declaration under "study"),
    runs.parquet and a collected per_query.parquet under ``root``."""
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    from hybrid_sweep.analysis.tables import SCHEMA_KEY

    root.mkdir(parents=True, exist_ok=True)
    meta = {"schema_version": "2", "axes": [*axes, "seed"], "numeric_axes": list(numeric), "log_axes": list(log)}
    if study is not None:
        meta["study"] = study
    table = pa.Table.from_pandas(results.assign(sweep="s", trained=True), preserve_index=False)
    pq.write_table(table.replace_schema_metadata({**(table.schema.metadata or {}), SCHEMA_KEY: json.dumps(meta).encode()}),
                   root / "results.parquet")
    runs = results.drop_duplicates("run_id")[["run_id", *axes, "seed"]].assign(status="done", error=None)
    runs.to_parquet(root / "runs.parquet")
    if per_query is not None:
        per_query.drop(columns=[c for c in axes if c in per_query] + ["seed"]).assign(rank_distance=np.nan).to_parquet(
            root / "per_query.parquet")
