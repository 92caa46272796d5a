"""Paper-style tables from results.parquet (mean ± 95 % CI over seeds) and paired tests from the runs'
per_query.parquet files."""

from __future__ import annotations

import itertools
from pathlib import Path

import pandas as pd

from hybrid_sweep.analysis.stats import mean_ci, paired_randomization, seed_query_bootstrap
from hybrid_sweep.results_schema import axes, numeric_axes

AXIS_COLUMNS, NUMERIC_AXES = tuple(axes()), tuple(numeric_axes())  # declared by the typed configs
IGNORED = ("seed", "run_id", "sweep", "trained")


def varying_axes(results: pd.DataFrame) -> list[str]:
    cols = [c for c in AXIS_COLUMNS if c in results and c not in IGNORED]
    return [c for c in cols if results[c].astype(str).nunique() > 1]


def condition_label(row, by: list[str]) -> str:
    return ", ".join(f"{c}={row[c]}" for c in by) if by else "all runs"


def summary(results: pd.DataFrame, metric: str, by: list[str]) -> pd.DataFrame:
    """benchmark, *by, setting, mean, ci, n — macro-average rows, aggregated over seeds."""
    avg = results[(results.query_lang == "avg") & (results.metric == metric)]
    rows = []
    for key, grp in avg.groupby(["benchmark", *by, "setting"], dropna=False, sort=True):
        m, ci, n = mean_ci(grp.value)
        rows.append((*key, m, ci, n))
    return pd.DataFrame(rows, columns=["benchmark", *by, "setting", "mean", "ci", "n"])


def wide_markdown(table: pd.DataFrame, by: list[str], digits: int = 3) -> str:
    """Conditions as rows, settings as columns, cells 'mean ± ci (n)'."""
    def cell(r):
        ci = "" if pd.isna(r["ci"]) else f" ± {r['ci']:.{digits}f}"
        return f"{r['mean']:.{digits}f}{ci}"
    t = table.assign(cell=table.apply(cell, axis=1))
    t[by] = t[by].astype(object).where(t[by].notna(), "–")  # e.g. zero-shot runs have no ratio: keep their row
    wide = t.pivot_table(index=["benchmark", *by], columns="setting", values="cell", aggfunc="first")
    order = [s for s in ("mono", "cross", "multi") if s in wide.columns]
    wide = wide[order].reset_index()
    n = t.groupby(["benchmark", *by], dropna=False)["n"].max().reset_index(name="seeds")
    wide = wide.merge(n, on=["benchmark", *by])
    numeric = [c for c in by if c in NUMERIC_AXES]  # order rows along the study's numeric axis first
    wide = wide.sort_values(["benchmark", *numeric, *[c for c in by if c not in numeric]], key=_sort_key)
    return wide.to_markdown(index=False)


def _sort_key(col: pd.Series) -> pd.Series:
    return pd.to_numeric(col, errors="coerce").fillna(float("inf")) if col.name in NUMERIC_AXES else col.astype(str)


def per_query_frame(root: Path, runs: pd.DataFrame) -> pd.DataFrame:
    frames = []
    for _, run in runs[runs.status == "done"].iterrows():
        path = Path(root) / "runs" / run.run_id / "per_query.parquet"
        if path.exists():
            pq = pd.read_parquet(path, columns=["benchmark", "setting", "query_id", "doc_lang", "ap", "rank_distance"])
            for col in [c for c in (*AXIS_COLUMNS, "variant") if c in run.index]:
                pq[col] = run[col]
            pq["run_id"] = run.run_id
            frames.append(pq)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def paired_tests(per_query: pd.DataFrame, by: list[str], max_conditions: int = 8) -> pd.DataFrame:
    """Every pair of conditions, per benchmark and setting, on per-query AP (and, in the multilingual
    setting, rank distance): a paired sign-flip test over queries on the seed-averaged values (``p_value``,
    ``effect_size`` = d_z), and a bootstrap over seeds and queries (``lo``/``hi`` = 95 % CI of the
    difference, ``p_boot``) that also carries seed-to-seed variance."""
    if per_query.empty or not by:
        return pd.DataFrame()
    pq = per_query.assign(condition=per_query.apply(lambda r: condition_label(r, by), axis=1))
    rows = []
    for (bench, setting), grp in pq.groupby(["benchmark", "setting"]):
        metrics = ["ap"] + (["rank_distance"] if setting == "multi" else [])
        for metric in metrics:
            per_run = grp.pivot_table(index=["query_id", "doc_lang"], columns=["condition", "run_id"], values=metric)
            wide = per_run.T.groupby(level="condition").mean().T
            conds = list(wide.columns)[:max_conditions]
            for a, b in itertools.combinations(conds, 2):
                both = wide[[a, b]].dropna()
                res = paired_randomization(both[a], both[b])
                boot = seed_query_bootstrap(per_run[a].loc[both.index].T.to_numpy(), per_run[b].loc[both.index].T.to_numpy())
                rows.append({"benchmark": bench, "setting": setting, "metric": metric, "A": a, "B": b,
                             "mean_A": both[a].mean(), "mean_B": both[b].mean(), **res,
                             "lo": boot["lo"], "hi": boot["hi"], "p_boot": boot["p_boot"],
                             "seeds_A": per_run[a].shape[1], "seeds_B": per_run[b].shape[1]})
    return pd.DataFrame(rows)


def language_groups(results: pd.DataFrame, resource: dict[str, str], by: list[str]) -> pd.DataFrame:
    """mAP per query language grouped by resource level and by seen / unseen in training: condition x
    setting x group -> mean over languages, doc languages and seeds (benchmark languages only)."""
    rows = results[(results.query_lang != "avg") & (results.metric == "map")].copy()
    if rows.empty:
        return rows
    rows["level"] = rows.query_lang.map(resource).fillna("unknown")
    langs = rows.train_langs.fillna("").astype(str).str.split(",")
    rows["seen"] = [q in ls or ls == ["all"] for q, ls in zip(rows.query_lang, langs)]
    rows["seen"] = rows["seen"].map({True: "seen", False: "unseen"})
    out = []
    for group in ("level", "seen") if (rows.level != "unknown").any() else ("seen",):
        g = rows.groupby(["benchmark", *by, "setting", group], dropna=False).value.mean().reset_index()
        out.append(g.rename(columns={group: "group"}).assign(grouping=group))
    return pd.concat(out, ignore_index=True)
