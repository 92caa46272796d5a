"""The report's opening: the declared primary hypothesis answered (confirmatory), the look it is, the
secondary hypotheses and the seeds plan; or, with no declaration, the note that everything is exploratory.

The declaration is read from results.parquet's metadata (``"study"``, written by collect from the sweep
preset's ``study:`` block) or passed in."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from hybrid_sweep.analysis.planner import plan_table
from hybrid_sweep.analysis.primary import hypothesis_table, look_status
from hybrid_sweep.analysis.tables import SCHEMA_KEY
from hybrid_sweep.config.study import StudyConfig, study_from_dict
from hybrid_sweep.io import write_csv

VIEW = ["setting", "group", "contrast", "estimate", "lo", "hi", "p", "p_adj", "significant", "n_min", "level"]
EXPLORATORY = ("No primary hypothesis is declared (`study.primary` in the sweep preset): every result in this report "
               "is **exploratory**.")


def declared_study(root: Path) -> StudyConfig | None:
    """The study declaration in results.parquet's metadata, validated; None where there is none."""
    path = Path(root) / "results.parquet"
    meta = (pq.read_schema(path).metadata or {}) if path.exists() else {}
    raw = json.loads(meta[SCHEMA_KEY]).get("study") if SCHEMA_KEY in meta else None
    return study_from_dict(raw)


def seeds_present(results: pd.DataFrame, axis: str) -> int:
    """Seeds per condition in the root: the most distinct seeds any level of ``axis`` has."""
    if "seed" not in results or axis not in results:
        return 0
    return int(results.groupby(axis, dropna=False).seed.nunique().max())


def study_section(out: Path, results: pd.DataFrame, per_query: pd.DataFrame | None, study: StudyConfig | None,
                  log_axes=(), n_boot: int = 1000) -> tuple[list[str], pd.DataFrame | None]:
    """Report lines (placed first) and the primary table (None without a declaration)."""
    if study is None or study.primary is None:
        return [EXPLORATORY, ""], None
    h = study.primary
    n = seeds_present(results, h.axis)
    alpha, look_lines, confirmatory = look_status(study, n)
    table, notes = hypothesis_table(results, h, per_query, alpha, log_axes, n_boot)
    write_csv(out / "primary.csv", table)
    lines = ["## Primary hypothesis (confirmatory)", "",
             f"Declared before the first look: `{h.axis}`, {h.contrast}"
             + (f" {h.pairs}" if h.pairs else f" against {h.reference}" if h.reference is not None else "")
             + f", {h.metric} on {table.benchmark.iloc[0] if len(table) else h.benchmark}, settings {h.settings}, "
             f"{h.alternative}. Error rate: Holm over the primary family only "
             f"({int(table.p.notna().sum())} test(s)) at alpha {alpha:.4g}; the estimate's 95 % CI is two-sided.",
             "", *look_lines, ""]
    if not confirmatory:
        lines += ["The primary answer below is therefore **not** confirmatory as it stands.", ""]
    lines += [f"- {x}" for x in notes] + ([""] if notes else [])
    if len(table):
        lines += [table[VIEW].round(4).to_markdown(index=False), "",
                  f"Test: {'; '.join(sorted(table.test.unique()))} (`level` question: holds for new questions "
                  "as well as new runs; run: on the benchmark's own questions only). CSV: [primary.csv](primary.csv)", ""]
        plan = plan_table(table.dropna(subset=["p"]), alpha=alpha)
        if len(plan):
            write_csv(out / "seeds_plan.csv", plan)
            lines += ["### Seeds plan (power .8 under the primary test and family)", "",
                      "`mde`: the smallest effect these seeds detect with power .8; `seeds_needed`: seeds per level "
                      "for power .8 at the observed effect (none: question-level variance caps the power). Re-plan "
                      "with `python -m hybrid_sweep.plan_seeds <root> --effect E`.", "",
                      plan.round(5).astype(object).fillna("none").to_markdown(index=False), ""]
    for i, sec in enumerate(study.secondary):
        t, sec_notes = hypothesis_table(results, sec, per_query, study.alpha, log_axes, n_boot, name=f"secondary {i + 1}")
        if len(t):
            write_csv(out / f"secondary_{i + 1}.csv", t)
            lines += [f"### Secondary hypothesis {i + 1}: {sec.name or sec.axis} (Holm within it; not confirmatory)", "",
                      t[VIEW].round(4).to_markdown(index=False), ""]
        lines += [f"- {x}" for x in sec_notes]
    lines += ["## Exploratory results", "",
              "Everything below is **exploratory**: p-values are adjusted over every exploratory test the report "
              "shows (one Holm family per p column), not chosen after the fact.", ""]
    return lines, table
