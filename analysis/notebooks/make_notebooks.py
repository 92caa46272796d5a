"""Writes the study notebooks (one per research question). Rerun after editing the cells here:
    .venv/bin/python analysis/notebooks/make_notebooks.py
Each notebook reads the results root in $HYBRID_SWEEP_RESULTS (default outputs/<study>)."""

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

STUDIES = {
    "language_pairs": ("Research question 1: does retrieval improve with the number of language pairs in hybrid "
                       "training?", "n_pairs", False),
    "mix_ratio": ("Research question 2: which mix of monolingual, cross-lingual and multilingual batches is best?",
                  "ratio_mono", False),
    "train_languages": ("Research question 3: how does retrieval scale with the number of training languages?",
                        "n_train_langs", True),
    "low_resource_pretrain": ("Research question 4: does adding low-resource languages to continued pre-training help "
                              "after hybrid fine-tuning?", "pretrain_low_resource", True),
    "synthetic_languages": ("Research question 5: SWIM-IR-style synthetic training data with a growing number of "
                            "languages, by language resource level.", "n_train_langs", True),
}

SETUP = """import os
from pathlib import Path

import pandas as pd
from IPython.display import Image, Markdown, display

from hybrid_sweep.analysis.plots import cross_heatmap, scaling_plot
from hybrid_sweep.analysis.tables import summary, varying_axes, wide_markdown
from hybrid_sweep.results_schema import read_table

root = Path(os.environ.get("HYBRID_SWEEP_RESULTS", "outputs/{study}"))
results, meta = read_table(root / "results.parquet")  # checks the schema version; meta["axes"] lists the axes
runs, _ = read_table(root / "runs.parquet")
figures = root / "analysis"
runs.status.value_counts()"""

TABLES = """axes = varying_axes(results)
print("axes that vary:", axes or "none")
display(Markdown("**mAP, mean ± 95 % CI over seeds**"))
display(Markdown(wide_markdown(summary(results, "map", axes), axes)))
rd = summary(results, "rank_distance", axes)
display(Markdown("**Rank distance (multilingual pool; lower = less language bias)**"))
display(Markdown(wide_markdown(rd[rd.setting == "multi"], axes)))"""

SCALING = """axis = "{axis}"
benchmark = sorted(results.benchmark.unique())[0]
if axis in results and results[axis].nunique() > 1:
    files, fits = scaling_plot(results, axis, "map", benchmark, figures / f"nb_scaling_{{axis}}_map")
    display(Image(filename=str(files[0])))
    display(fits.round(4))
else:
    print(f"{{axis}} does not vary in this results root")"""

GROUPS = """from hybrid_sweep.analysis.report import resource_levels
from hybrid_sweep.analysis.tables import language_groups

groups = language_groups(results, resource_levels(root), varying_axes(results))
groups.pivot_table(index=["grouping", "group"], columns="setting", values="value").round(3)"""

HEATMAP = """files = cross_heatmap(results, benchmark, f"{benchmark}: mAP by query / candidate language", figures / "nb_heatmap")
Image(filename=str(files[0]))"""


def build(study: str, question: str, axis: str, groups: bool) -> nbformat.NotebookNode:
    cells = [
        new_markdown_cell(f"# {study}\n\n{question}\n\nProduce the results with\n"
                          f"`python -m hybrid_sweep +sweep={study} -m` (results in `outputs/{study}`), or point "
                          "`HYBRID_SWEEP_RESULTS` at another results root."),
        new_code_cell(SETUP.replace("{study}", study)),
        new_markdown_cell("## Tables"),
        new_code_cell(TABLES),
        new_markdown_cell(f"## Scaling with `{axis}`\n\nMean and 95 % CI band over seeds; dotted: fitted trend, "
                          "slope and its bootstrap CI in the legend."),
        new_code_cell(SCALING.format(axis=axis)),
        new_markdown_cell("## Language pairs"),
        new_code_cell(HEATMAP),
    ]
    if groups:
        cells += [new_markdown_cell("## By resource level and seen / unseen languages"), new_code_cell(GROUPS)]
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


if __name__ == "__main__":
    here = Path(__file__).parent
    for study, (question, axis, groups) in STUDIES.items():
        nbformat.write(build(study, question, axis, groups), here / f"{study}.ipynb")
        print(here / f"{study}.ipynb")
