"""Write a results root's analysis: tables (Markdown + CSV), scaling figures with fits, paired tests,
heatmaps, and report.md linking them, under ``<results_root>/analysis/``."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from hybrid_sweep.analysis.plots import cross_heatmap, scaling_plot
from hybrid_sweep.analysis.tables import (NUMERIC_AXES, language_groups, paired_tests, per_query_frame, summary,
                                          varying_axes, wide_markdown)
from hybrid_sweep.io import write_csv, write_text


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
    axes = varying_axes(results)
    if "variant" in results and results.groupby(axes or ["sweep"], dropna=False).variant.nunique().max() > 1:
        axes.append("variant")  # the runs differ in settings that are not axis columns
    by = [a for a in axes if a not in NUMERIC_AXES] or axes
    lines += [f"Axes that vary: {', '.join(axes) or 'none (seeds only)'}. Cells: mean ± 95 % CI over seeds "
              "(t distribution; no ± where one seed).", ""]
    for title, metric, settings in (("Table 1: mAP", "map", None), ("Table 2: rank distance (multilingual)",
                                                                      "rank_distance", ["multi"])):
        table = summary(results, metric, axes)
        if settings:
            table = table[table.setting.isin(settings)]
        if table.empty:
            continue
        stem = "table1_map" if metric == "map" else "table2_rank_distance"
        write_csv(out / f"{stem}.csv", table)
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
                  "mAP averaged over the query languages of a group, their candidate languages and seeds.", "",
                  wide.to_markdown(index=False), ""]
    pq = per_query_frame(root, runs)
    tests = paired_tests(pq, by if by else axes)
    if not tests.empty:
        write_csv(out / "paired_tests.csv", tests)
        view = tests[["benchmark", "setting", "metric", "A", "B", "mean_A", "mean_B", "diff", "lo", "hi", "p_boot",
                      "effect_size", "p_value", "n", "seeds_A", "seeds_B"]]
        lines += ["## Paired tests", "",
                  "`diff` = A − B. `lo`/`hi`/`p_boot`: 95 % CI and two-sided p of the difference from a bootstrap that "
                  "resamples seeds within each condition and queries (2,000 replicates) — the one to trust when "
                  "seeds disagree. `p_value`/`effect_size`: sign-flip randomisation test over queries on "
                  "seed-averaged values (10,000 permutations), Cohen's d_z; it ignores seed variance.", "",
                  view.round(4).to_markdown(index=False), ""]
    numeric = [a for a in axes if a in NUMERIC_AXES]
    fits = []
    for bench in sorted(results.benchmark.unique()):
        for axis in numeric:
            for metric in ("map", "rank_distance"):
                files, fit = scaling_plot(results, axis, metric, bench, out / f"scaling_{bench}_{axis}_{metric}")
                fits.append(fit)
                lines += [f"![{metric} vs {axis} on {bench}]({files[0].name})", ""]
        files = cross_heatmap(results, bench, f"{bench}: mAP by query / candidate language, all runs pooled",
                              out / f"heatmap_{bench}")
        lines += [f"## Language pairs on {bench}", "", f"![heatmap]({files[0].name})", ""]
    if fits:
        fit_table = pd.concat(fits, ignore_index=True)
        write_csv(out / "fits.csv", fit_table)
        lines += ["## Fits (metric = a + b · log2(axis) for pairs, languages and steps; a + b · axis otherwise; "
                  "bootstrap 95 % CI of b)", "",
                  fit_table.round(4).to_markdown(index=False), ""]
    write_text(out / "report.md", "\n".join(lines) + "\n")
    return out / "report.md"


def resource_levels(root: Path, runs: pd.DataFrame) -> dict[str, str]:
    """Language -> resource level, from the synthetic benchmark's config of any finished run."""
    from omegaconf import OmegaConf

    for run_id in runs[runs.status == "done"].run_id:
        cfg = OmegaConf.load(Path(root) / "runs" / run_id / "config.yaml")
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
