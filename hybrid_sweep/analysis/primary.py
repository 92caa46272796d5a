"""The declared primary hypothesis of a study, answered (docs/statistics.md "Declared studies").

``hypothesis_table`` turns one ``HypothesisConfig`` into its family of tests — every contrast (pair, level
vs reference, or the trend) x setting x language group — each with estimate, 95 % CI and p, and Holm's
adjustment over that family only. The test of every row is chosen by one rule (``test: auto``): the
hierarchical bootstrap over runs and question clusters (``HierarchicalBootstrap.contrast``) where the runs
have per-query rows, so the answer holds for new questions too; else the run-level contrast
(``run_contrast``), labelled as conditional on the benchmark's questions. ``looks`` says which look the
seeds present are and the alpha that look may spend."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from hybrid_sweep.analysis.contrasts import run_contrast, trend_weights
from hybrid_sweep.analysis.hierarchical import HierarchicalBootstrap, cells_from_frame
from hybrid_sweep.analysis.multiplicity import adjust
from hybrid_sweep.config.study import HypothesisConfig, StudyConfig, level_key
from hybrid_sweep.data.languages import flores_code, resource_class

QUERY_COLUMN = {"map": "ap", "rank_distance": "rank_distance"}
COLUMNS = ["hypothesis", "benchmark", "setting", "group", "contrast", "estimate", "lo", "hi", "p", "p_adj", "alpha",
           "significant", "alternative", "level", "test", "n_min", "clusters", "se", "run_var", "cluster_var"]


def _lang_key(lang) -> str:
    return flores_code(lang) or str(lang)


def _in_languages(query_lang: pd.Series, langs) -> pd.Series:
    """Rows whose query language is one of ``langs`` (labels compared as FLORES codes: yo = yor_Latn)."""
    wanted = {_lang_key(x) for x in langs}
    return query_lang.map({lang: _lang_key(lang) in wanted for lang in query_lang.unique()}).astype(bool)


def language_groups(h: HypothesisConfig, langs_present) -> list[tuple[str, list[str] | None]]:
    """(group name, query languages or None for the macro average) of the hypothesis' endpoints."""
    if h.languages:
        return [("declared languages", list(h.languages))]
    if h.language_groups:
        return [(name, list(v)) for name, v in h.language_groups.items()]
    if h.group_by == "joshi":
        by = {}
        for lang in sorted(set(langs_present) - {"avg"}):
            by.setdefault(f"Joshi class {resource_class(lang)}", []).append(lang)
        return sorted(by.items())
    return [("macro average", None)]


def endpoint_runs(results: pd.DataFrame, h: HypothesisConfig, bench: str, setting: str, langs) -> pd.DataFrame:
    """condition (the axis level as text), seed, value: one row per run, the endpoint's value (the macro
    average row, or the mean of the declared query languages' pool rows)."""
    rows = results[(results.benchmark == bench) & (results.setting == setting) & (results.metric == h.metric)]
    if langs is None:
        rows = rows[rows.query_lang == "avg"]
    else:
        rows = rows[(rows.query_lang != "avg") & _in_languages(rows.query_lang, langs)]
    seed = rows.seed if "seed" in rows else pd.Series(None, index=rows.index)
    frame = pd.DataFrame({"run_id": rows.run_id, "condition": rows[h.axis].map(level_key), "seed": seed, "value": rows.value})
    return frame.groupby("run_id", sort=False).agg(condition=("condition", "first"), seed=("seed", "first"),
                                                   value=("value", "mean")).reset_index()


def contrasts(h: HypothesisConfig, present: list[str], log: bool) -> list[tuple[str, dict | None, list[str]]]:
    """(label, weights or None for the trend, levels used) of the hypothesis' contrasts."""
    if h.contrast == "pairs":
        return [(f"{a} − {b}", {a: 1.0, b: -1.0}, [a, b]) for a, b in h.pairs]
    levels = list(h.levels or present)
    if h.contrast == "vs_reference":
        return [(f"{lv} − {h.reference}", {lv: 1.0, h.reference: -1.0}, [lv, h.reference]) for lv in levels
                if lv != h.reference]
    unit = "per doubling" if log else "per unit"
    return [(f"slope {unit} of {h.axis}", None, [lv for lv in levels if _numeric(lv, log)])]


def _numeric(level: str, log: bool) -> bool:
    """A level a trend can place on its axis (a zero-shot run's missing level, or 0 on log2, cannot)."""
    try:
        return math.isfinite(float(level)) and (float(level) > 0 or not log)
    except ValueError:
        return False


def hypothesis_table(results: pd.DataFrame, h: HypothesisConfig, per_query: pd.DataFrame | None = None,
                     alpha: float = 0.05, log_axes=(), n_boot: int = 1000, name: str = "primary") -> tuple[pd.DataFrame, list[str]]:
    """The hypothesis' family of tests (``COLUMNS``) with Holm's adjustment over it, and notes (what is
    missing). ``log_axes``: axes fitted on log2 when ``h.scale`` is auto."""
    notes: list[str] = []
    if h.axis not in results:
        return pd.DataFrame(columns=COLUMNS), [f"axis `{h.axis}` is not a column of results.parquet"]
    benches = sorted(results.benchmark.unique())
    bench = h.benchmark or (benches[0] if len(benches) == 1 else None)
    if bench not in benches:
        return pd.DataFrame(columns=COLUMNS), [f"benchmark {h.benchmark or '(not declared; several present)'} "
                                               f"not among {benches}"]
    log = h.scale == "log2" or (h.scale == "auto" and h.axis in log_axes)
    rows = []
    for setting in h.settings:
        here = results[(results.benchmark == bench) & (results.setting == setting)]
        if here.empty:
            notes.append(f"setting {setting} has no rows on {bench}")
            continue
        for group, langs in language_groups(h, here.query_lang.unique()):
            runs = endpoint_runs(results, h, bench, setting, langs)
            present = sorted(runs.condition.dropna().unique())
            boot = _bootstrap(per_query, h, bench, setting, langs, present, n_boot) if h.test != "run" else None
            if h.test == "question" and boot is None:
                notes.append(f"{setting}/{group}: no per-query rows; run-level test instead of the declared question level")
            for label, weights, used in contrasts(h, present, log):
                missing = [lv for lv in used if lv not in present]
                if missing:
                    notes.append(f"{setting}/{group}: level(s) {missing} of `{h.axis}` have no runs")
                    continue
                if weights is None and len(used) < 2:
                    notes.append(f"{setting}/{group}: a trend needs two numeric levels of `{h.axis}`, found {used}")
                    continue
                if weights is None:
                    x = {lv: (math.log2(float(lv)) if log else float(lv)) for lv in used}
                    n = {lv: int((runs.condition == lv).sum()) for lv in used}
                    if boot is not None:
                        n = {lv: boot.conditions[lv]["runs"].shape[-1] for lv in used}
                    weights = trend_weights(x, n)
                row = {"hypothesis": h.name or name, "benchmark": bench, "setting": setting, "group": group,
                       "contrast": label, "alternative": h.alternative}
                if boot is not None:
                    res = boot.contrast(weights, alternative=h.alternative)
                    row.update(level="question", test="hierarchical bootstrap over runs and question clusters",
                               clusters=res["clusters"])
                else:
                    res = run_contrast(runs, weights, h.alternative)
                    row.update(level="run (on these questions)", test=res["test"], clusters=0)
                row.update(estimate=res["diff"], lo=res["lo"], hi=res["hi"], p=res["p"], se=res["se"],
                           n_min=res["n_min"], run_var=res.get("run_var", res["se"] ** 2),
                           cluster_var=res.get("cluster_var", 0.0))
                rows.append(row)
    table = pd.DataFrame(rows, columns=[c for c in COLUMNS if c not in ("p_adj", "alpha", "significant")])
    table["p_adj"], family = adjust(table.p, "holm")
    table["alpha"] = alpha
    table["significant"] = table.p_adj < alpha
    table["family"] = f"Holm over {family} test(s) of this hypothesis"
    return table[[*COLUMNS, "family"]], notes


def _bootstrap(per_query, h, bench, setting, langs, present, n_boot) -> HierarchicalBootstrap | None:
    col = QUERY_COLUMN.get(h.metric)
    if per_query is None or per_query.empty or col not in per_query or h.axis not in per_query:
        return None
    rows = per_query[(per_query.benchmark == bench) & (per_query.setting == setting)]
    if langs is not None:
        rows = rows[_in_languages(rows.query_lang, langs)]
    rows = rows[rows[col].notna()]
    if rows.empty:
        return None
    rows = rows.assign(condition=rows[h.axis].map(level_key))
    if set(rows.condition.unique()) != set(present):
        return None  # some levels lack query rows: the run level covers them all
    return HierarchicalBootstrap(cells_from_frame(rows, col), n_boot=n_boot)


def spent_alpha(seeds: list[int], spending: str, alpha: float) -> list[float]:
    """Alpha each planned look may spend: the increments of the Lan–DeMets spending function at the
    information fractions seeds_k / seeds_max. Testing look k at its increment is conservative (the
    increments sum to alpha: Bonferroni over looks, no joint boundary computed)."""
    t = np.asarray(seeds, dtype=float) / seeds[-1]
    if spending == "obrien_fleming":
        cum = 2 - 2 * stats.norm.cdf(stats.norm.ppf(1 - alpha / 2) / np.sqrt(t))
    else:  # pocock
        cum = alpha * np.log(1 + (np.e - 1) * t)
    return list(np.diff(np.concatenate([[0.0], cum])))


def look_status(study: StudyConfig, seeds_present: int) -> tuple[float, list[str], bool]:
    """(alpha for this look, report lines, is the answer confirmatory): seeds present vs the declaration."""
    alpha = study.alpha
    if study.looks:
        planned = study.looks.seeds
        if seeds_present not in planned:
            return alpha, [f"**Unplanned look:** {seeds_present} seeds per condition, the declared looks are at "
                           f"{planned}: the primary p is not covered by the sequential design."], False
        k = planned.index(seeds_present)
        a = spent_alpha(planned, study.looks.spending, alpha)[k]
        return a, [f"Look {k + 1} of {len(planned)} (group-sequential, {study.looks.spending} alpha spending): "
                   f"this look tests at alpha {a:.4g}."], True
    if study.seeds_fixed is None:
        return alpha, ["Seeds per condition were not declared before the first look (`study.seeds_fixed`)."], False
    if seeds_present > study.seeds_fixed:
        return alpha, [f"**Second look:** {seeds_present} seeds per condition, {study.seeds_fixed} were fixed before "
                       "the first look and no group-sequential design is declared. Testing again after adding "
                       "seeds raises the error rate above alpha (two looks at .05: about .086); read the primary "
                       "answer as exploratory, or declare `study.looks`."], False
    if seeds_present < study.seeds_fixed:
        return alpha, [f"**Incomplete:** {seeds_present} of the {study.seeds_fixed} declared seeds per condition."], False
    return alpha, [f"Seeds per condition as declared before the first look: {seeds_present}."], True
