"""Write a results root's analysis: tables (Markdown + CSV), scaling figures with fits, paired tests,
heatmaps, and report.md linking them, under ``<results_root>/analysis/``."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from hybrid_sweep.analysis.comparisons import compare_conditions
from hybrid_sweep.analysis.multiplicity import add_adjusted
from hybrid_sweep.analysis.plots import cross_heatmap, scaling_plot
from hybrid_sweep.analysis.stats import MIN_RUNS
from hybrid_sweep.analysis.tables import axis_info, language_groups, per_query_frame, summary, wide_markdown
from hybrid_sweep.io import write_csv, write_text

TEST_VIEW = ["benchmark", "setting", "metric", "A", "B", "n_A", "n_B", "diff", "lo", "hi", "p", "p_adj", "lo_q", "hi_q",
             "p_q", "p_q_adj"]


def analyze(root: Path) -> Path:
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
    groups = language_groups(results, resource_levels(root, runs), axes)
    if not groups.empty:
        write_csv(out / "language_groups.csv", groups)
        wide = groups.pivot_table(index=["benchmark", "grouping", "group", *axes], columns="setting", values="value",
                                  dropna=False).dropna(how="all").round(3).reset_index()
        lines += ["## By language group (resource level; seen / unseen in training)", "",
                  "mAP averaged over the query languages of a group, their candidate languages and seeds "
                  "(descriptive: no test).", "", wide.to_markdown(index=False), ""]
    lines += _comparisons(root, out, results, axes, [a for a in axes if a in info.numeric])
    lines += _fits(out, results, axes, info)
    write_text(out / "report.md", "\n".join(lines) + "\n")
    return out / "report.md"


def _comparisons(root, out, results, axes, numeric) -> list[str]:
    if not axes:
        return []
    per_query, missing = per_query_frame(root, results, axes)
    planned, pairs = compare_conditions(results, axes, numeric, per_query)
    if pairs.empty:
        return []
    write_csv(out / "planned_tests.csv", planned)
    write_csv(out / "paired_tests.csv", pairs)
    lines = ["## Comparisons of conditions", "",
             "`diff` = A − B of the conditions' mean per-run values; `n_A`/`n_B` = runs a side. `lo`/`hi`/`p`: "
             "95 % CI and two-sided p of the run-level test named in the CSV's `test` column — a paired t on "
             "the per-seed differences when both conditions ran the same seeds (an exact sign-flip permutation "
             "over seeds from 8 pairs on), else Welch's t. `lo_q`/`hi_q`/`p_q`: hierarchical bootstrap over "
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
        lines += [f"### {title}", "", f"Correction: {table.correction.iloc[0]} (`p_adj`, `p_q_adj`; raw p beside "
                  f"them). Tests: {'; '.join(sorted(table.test.unique()))}. CSV: [{csv}]({csv})", "",
                  table[TEST_VIEW].round(4).to_markdown(index=False), ""]
    return lines


def _fits(out, results, axes, info) -> list[str]:
    lines, fits = [], []
    for bench in sorted(results.benchmark.unique()):
        for axis in [a for a in axes if a in info.numeric]:
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
    if fits:
        table = add_adjusted(pd.concat(fits, ignore_index=True), "holm")
        write_csv(out / "fits.csv", table)
        lines += ["## Fits", "", "metric = a + b · log2(axis) for counts spanning doublings (`fit` = log2), "
                  "a + b · axis otherwise; ordinary least squares on per-run values (`n_runs`), 95 % CI and p of b "
                  f"from t with `df` = runs − 2. Correction: {table.correction.iloc[0]} (`p_adj`).", "",
                  table.drop(columns=["correction", "test"]).round(4).to_markdown(index=False), ""]
    return lines


def resource_levels(root: Path, runs: pd.DataFrame) -> dict[str, str]:
    """Language -> resource level, from the synthetic benchmark's config of any finished run (the one
    input not in a table: results carry no resource level). Empty where no run has its config.yaml."""
    from omegaconf import OmegaConf

    for run_id in runs[runs.status == "done"].run_id:
        path = Path(root) / "runs" / run_id / "config.yaml"
        if not path.exists():
            continue
        cfg = OmegaConf.load(path)
        if "synthetic" in cfg:
            return {lang.code: lang.resource for lang in cfg.synthetic.languages}
    return {}


def _latex(table: pd.DataFrame, by: list[str]) -> str:
    """The wide table as a LaTeX tabular (mean \\pm CI)."""
    cells = table.assign(cell=[f"{m:.3f}" + ("" if pd.isna(c) else f" $\\pm$ {c:.3f}") for m, c in zip(table["mean"], table["ci"])])
    wide = cells.pivot_table(index=["benchmark", *by], columns="setting", values="cell", aggfunc="first").reset_index()
    wide.columns = [str(c).replace("_", "\\_") for c in wide.columns]
    for col in wide.columns[: len(by) + 1]:
        wide[col] = wide[col].astype(str).str.replace("_", "\\_")
    return wide.to_latex(index=False, escape=False)
