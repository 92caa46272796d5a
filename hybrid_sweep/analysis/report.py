"""Write a results root's analysis: tables (Markdown + CSV), scaling figures with fits, paired tests,
heatmaps, and report.md linking them, under ``<results_root>/analysis/``. The report opens with the
study's declared primary hypothesis (``study_report``); everything after it is exploratory, its p-values
adjusted over every exploratory test the report shows."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from hybrid_sweep.analysis.comparisons import compare_conditions
from hybrid_sweep.analysis.mixture import compositional_axes, mixture_table
from hybrid_sweep.analysis.multiplicity import adjust_union
from hybrid_sweep.analysis.plots import cross_heatmap, scaling_plot
from hybrid_sweep.analysis.stats import MIN_RUNS
from hybrid_sweep.analysis.study_report import declared_study, study_section
from hybrid_sweep.analysis.tables import axis_info, language_groups, per_query_frame, summary, wide_markdown
from hybrid_sweep.config.study import StudyConfig, study_from_dict
from hybrid_sweep.io import write_csv, write_text

TEST_VIEW = ["benchmark", "setting", "metric", "A", "B", "n_A", "n_B", "diff", "lo", "hi", "p", "p_adj", "lo_q", "hi_q",
             "p_q", "p_q_adj"]


def analyze(root: Path, study: StudyConfig | dict | None = None, n_boot: int = 1000) -> Path:
    """Write ``<root>/analysis/report.md`` and its tables; ``study``: the declaration (default: the one in
    results.parquet's metadata)."""
    root = Path(root)
    results = pd.read_parquet(root / "results.parquet")
    runs = pd.read_parquet(root / "runs.parquet")
    out = root / "analysis"
    out.mkdir(exist_ok=True)
    lines = [f"# Analysis of `{root}`", "",
             f"{len(runs)} runs: " + ", ".join(f"{k} {v}" for k, v in runs.status.value_counts().items()) + ".", ""]
    failed = runs[runs.status != "done"]
    for _, r in failed.iterrows():
        lines.append(f"- run `{r.run_id}` is **{r.status}**" + (f": {r.error}" if isinstance(r.error, str) else ""))
    if results.empty:
        write_text(out / "report.md", "\n".join(lines + ["", "No finished run yet."]) + "\n")
        return out / "report.md"
    info = axis_info(root, results)
    axes = list(info.axes)
    if "variant" in results and results.groupby(axes or ["sweep"], dropna=False).variant.nunique().max() > 1:
        axes.append("variant")  # the runs differ in settings that are not axis columns
    lines += [f"Axes that vary: {', '.join(axes) or 'none (seeds only)'} (from "
              f"{'results.parquet schema metadata' if info.source == 'schema' else 'the run columns that vary'}). "
              "The replication unit is the training run: a condition's value is one number per run (its "
              "macro-averaged metric), `seeds` = runs per condition. Cells: mean ± 95 % CI over runs "
              "(t distribution; no ± where one run).", ""]
    study = declared_study(root) if study is None else study if isinstance(study, StudyConfig) else study_from_dict(study)
    extra = [study.primary.axis] if study and study.primary and study.primary.axis in results else []
    per_query, missing = per_query_frame(root, results, list(dict.fromkeys([*axes, *extra]))) if axes or extra else (None, [])
    study_lines, _ = study_section(out, results, per_query, study, info.log, n_boot)
    lines += study_lines
    for title, metric, settings in (("Table 1: mAP", "map", None), ("Table 2: rank distance (multilingual)",
                                                                      "rank_distance", ["multi"])):
        table = summary(results, metric, axes)
        if settings:
            table = table[table.setting.isin(settings)]
        if table.empty:
            continue
        stem = "table1_map" if metric == "map" else "table2_rank_distance"
        write_csv(out / f"{stem}.csv", table.assign(test="mean ± t-based 95 % CI over runs (n = runs)"))
        md = wide_markdown(table, axes)
        write_text(out / f"{stem}.md", md + "\n")
        write_text(out / f"{stem}.tex", _latex(table, axes))
        lines += [f"## {title}", "", md, "", f"CSV: [{stem}.csv]({stem}.csv)", ""]
    groups = language_groups(results, resource_levels(root), axes)
    if not groups.empty:
        write_csv(out / "language_groups.csv", groups)
        wide = groups.pivot_table(index=["benchmark", "grouping", "group", *axes], columns="setting", values="value",
                                  dropna=False).dropna(how="all").round(3).reset_index()
        lines += ["## By language group (resource level; seen / unseen in training)", "",
                  "mAP averaged over the query languages of a group, their candidate languages and seeds "
                  "(descriptive: no test).", "", wide.to_markdown(index=False), ""]
    shares = compositional_axes(results, [a for a in axes if a in info.numeric])  # RQ2: fitted as one mixture
    numeric = [a for a in axes if a in info.numeric and a not in shares]
    planned, pairs = compare_conditions(results, axes, numeric, per_query, n_boot) if axes else (None, None)
    fit_lines, fits = _fits(out, results, axes, info, numeric)
    mixture = mixture_table(results, shares) if shares else None
    keys = {"comparison": ["benchmark", "setting", "metric", "A", "B"], "fit": ["benchmark", "metric", "axis", "setting"],
            "mixture": ["benchmark", "setting", "metric", "swap"]}
    found = [(t, k) for t, k in ((planned, "comparison"), (pairs, "comparison"), (fits, "fit"), (mixture, "mixture"))]
    adjusted = iter(adjust_union([(t, keys[k]) for t, k in found if t is not None and len(t)], ("p", "p_q")))
    planned, pairs, fits, mixture = (next(adjusted) if t is not None and len(t) else t for t, _ in found)
    if mixture is not None and len(mixture):
        write_csv(out / "mixture.csv", mixture)
        lines += ["## Batch mix as a mixture (exploratory)", "",
                  f"The shares {', '.join(shares)} sum to 1, so they are fitted together (Scheffé linear mixture model, "
                  "no marginal slopes): `swap` i − j = the change when the whole batch budget moves from mode j to "
                  f"mode i. Correction: {mixture.correction.iloc[0]} (`p_adj`). CSV: [mixture.csv](mixture.csv)", "",
                  mixture.drop(columns=["correction", "model"]).round(4).to_markdown(index=False), ""]
    if pairs is not None and len(pairs):
        lines += _comparisons(out, planned, pairs, missing)
    if fits is not None and len(fits):
        write_csv(out / "fits.csv", fits)
        lines += ["## Fits (exploratory)", "", "metric = a + b · log2(axis) for counts spanning doublings (`fit` = log2), "
                  "a + b · axis otherwise; ordinary least squares on per-run values (`n_runs`), 95 % CI and p of b "
                  f"from t with `df` = runs − 2 (on these questions only). Correction: {fits.correction.iloc[0]} (`p_adj`).",
                  "", fits.drop(columns=["correction", "test"]).round(4).to_markdown(index=False), ""]
    lines += fit_lines
    write_text(out / "report.md", "\n".join(lines) + "\n")
    return out / "report.md"


def _comparisons(out, planned, pairs, missing) -> list[str]:
    write_csv(out / "planned_tests.csv", planned)
    write_csv(out / "paired_tests.csv", pairs)
    lines = ["## Comparisons of conditions (exploratory)", "",
             "`diff` = A − B of the conditions' mean per-run values; `n_A`/`n_B` = runs a side. `lo`/`hi`/`p`: "
             "95 % CI and two-sided p of the run-level test named in the CSV's `test` column — a paired t on "
             "the per-seed differences when both conditions ran the same seeds (the sign-flip permutation over "
             "seeds from 16 pairs on), else Welch's t. `lo_q`/`hi_q`/`p_q`: hierarchical bootstrap over "
             "runs and question clusters (a question with all its language versions), for a difference that "
             "must hold for new questions as well as new runs. Variance models: docs/statistics.md.", ""]
    if missing:
        lines += [f"Runs without query-level rows (left out of the `*_q` columns): {', '.join(missing)}.", ""]
    few = pd.concat([planned, pairs]).query(f"n_A < {MIN_RUNS} or n_B < {MIN_RUNS}")
    if len(few):
        lines += [f"**Warning:** {len(few.drop_duplicates(['A', 'B']))} comparisons have fewer than {MIN_RUNS} runs a "
                  "side: shown without a CI or p-value. Run more seeds to test them.", ""]
    for title, table, csv in (("Planned comparisons", planned, "planned_tests.csv"),
                              ("All pairs", pairs, "paired_tests.csv")):
        if table.empty:
            continue
        lines += [f"### {title} (exploratory)", "", f"Correction: {table.correction.iloc[0]} (`p_adj`, `p_q_adj`; raw p "
                  f"beside them). Tests: {'; '.join(sorted(table.test.unique()))}. CSV: [{csv}]({csv})", "",
                  table[TEST_VIEW].round(4).to_markdown(index=False), ""]
    return lines


def _fits(out, results, axes, info, numeric) -> tuple[list[str], pd.DataFrame | None]:
    """Figure lines and the raw fits table (adjusted with the other exploratory tests by the caller); one
    fit per ``numeric`` axis (shares of a mixture are not fitted one by one)."""
    lines, fits = [], []
    for bench in sorted(results.benchmark.unique()):
        for axis in numeric:
            for metric in ("map", "rank_distance"):
                if not ((results.benchmark == bench) & (results.metric == metric)).any():
                    continue
                files, fit = scaling_plot(results, axis, metric, bench, out / f"scaling_{bench}_{axis}_{metric}",
                                          log=axis in info.log)
                fits.append(fit)
                lines += [f"![{metric} vs {axis} on {bench}]({files[0].name})", ""]
        files = cross_heatmap(results, bench, f"{bench}: mAP by query / candidate language, all runs pooled",
                              out / f"heatmap_{bench}")
        lines += [f"## Language pairs on {bench}", "", f"![heatmap]({files[0].name})", ""]
    fits = [f for f in fits if not f.empty]
    return lines, (pd.concat(fits, ignore_index=True) if fits else None)


def resource_levels(root: Path) -> dict[str, str]:
    """Language -> resource level of the synthetic benchmark, from results.parquet's metadata (collect puts
    it there: no metric row carries it). Empty for a table without it."""
    from hybrid_sweep.results_schema import table_metadata

    return dict((table_metadata(Path(root) / "results.parquet") or {}).get("resource_levels") or {})


def _latex(table: pd.DataFrame, by: list[str]) -> str:
    """The wide table as a LaTeX tabular (mean \\pm CI)."""
    cells = table.assign(cell=[f"{m:.3f}" + ("" if pd.isna(c) else f" $\\pm$ {c:.3f}") for m, c in zip(table["mean"], table["ci"])])
    wide = cells.pivot_table(index=["benchmark", *by], columns="setting", values="cell", aggfunc="first").reset_index()
    wide.columns = [str(c).replace("_", "\\_") for c in wide.columns]
    for col in wide.columns[: len(by) + 1]:
        wide[col] = wide[col].astype(str).str.replace("_", "\\_")
    return wide.to_latex(index=False, escape=False)
