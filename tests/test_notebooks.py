"""The study notebooks execute against results roots produced by small runs of the embedded default."""

import os
import subprocess
import sys

import nbformat
import pytest
from nbclient import NotebookClient

from tests.conftest import ROOT

MINI = {
    "language_pairs": ["sampler.n_pairs=1,30"],
    "mix_ratio": ["+ratio=mono,hybrid"],
    "train_languages": ["+langs=syn2,syn3"],
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
