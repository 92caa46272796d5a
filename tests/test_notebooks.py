"""The study notebooks execute against results roots produced by small runs of the embedded default."""

import os
import re
import subprocess
import sys

import nbformat
import pandas as pd
import pytest
from nbclient import NotebookClient

from tests.conftest import ROOT

STUDY_AXIS = {"language_pairs": "n_pairs", "mix_ratio": "ratio_mono", "train_languages": "n_train_langs",
              "low_resource_pretrain": "pretrain_low_resource", "synthetic_languages": "n_train_langs"}
MINI = {  # two values of each study's axis
    "language_pairs": ["sampler.n_pairs=1,15"],  # unordered pairs of the 6 synthetic languages: 15
    "mix_ratio": ["+ratio=mono,hybrid"],
    "train_languages": ["data.n_languages=2,3"],  # drawn per seed from the preset's pool of 6
    "low_resource_pretrain": ["pretrain.n_low_resource=0,1", "pretrain.max_steps=3", "pretrain.batch_size=8"],
    "synthetic_languages": ["+langs=syn2,syn3"],
}
QUICK = ["train.seed=0", "train.max_steps=3", "train.batch_size=8", "train.eval_every=0", "encoder.progress=false",
         "evals.synthetic.subset.articles=2", "analyze=false"]


@pytest.mark.parametrize("study", sorted(MINI))
def test_notebook_runs(tmp_path, study):
    assert (ROOT / "analysis" / "notebooks" / f"{study}.ipynb").exists()
    cmd = [sys.executable, "-m", "hybrid_sweep", f"+sweep={study}", "-m", *MINI[study], *QUICK, f"results_root={tmp_path}"]
    res = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, (res.stdout + res.stderr)[-3000:]
    nb = nbformat.read(ROOT / "analysis" / "notebooks" / f"{study}.ipynb", as_version=4)
    os.environ["HYBRID_SWEEP_RESULTS"] = str(tmp_path)
    try:
        NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}).execute()
    finally:
        del os.environ["HYBRID_SWEEP_RESULTS"]
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs)  # the scaling plot or heatmap rendered
    assert "does not vary" not in str(outputs)  # the study's axis is really in the results
    printed = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert STUDY_AXIS[study] in printed.split("axes that vary:")[1].splitlines()[0]
    # Table 1 has one row per (benchmark, condition): the two values of the axis, as results.parquet holds them
    table = next(o["data"]["text/markdown"] for o in outputs if "text/markdown" in o.get("data", {})
                 and "mono" in o["data"]["text/markdown"])
    results = pd.read_parquet(tmp_path / "results.parquet")
    rows = [line for line in table.splitlines()[2:] if line.startswith("|")]
    assert len(rows) == results.benchmark.nunique() * results[STUDY_AXIS[study]].nunique() == 2
    avg = results[(results.query_lang == "avg") & (results.metric == "map") & (results.setting == "mono")]
    cells = [[float(c) for c in row.strip("|").split("|") if re.fullmatch(r"\s*-?\d+\.\d+\s*", c)] for row in rows]
    for value, grp in avg.groupby(STUDY_AXIS[study]):  # one seed: the cell is that run's mAP (3 decimals)
        assert any(abs(c - grp.value.mean()) < 5e-4 for row in cells for c in row), (value, rows)
