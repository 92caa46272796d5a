"""Bad keys and values through the real CLI: exit 2, exactly one line on stderr naming the field, and no
run started (no run folder, nothing trained or evaluated). One subprocess per input (~5 s each)."""

import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

CASES = [  # overrides, the line's start
    (["+eval@evals.toy=beir", "evals.toy.dataset=org/toy", "evals.toy.format=bier"],
     "evals.toy.format: unknown format 'bier'; one of auto, beir, mteb, trec"),
    (["+evals.synthetic.revison=abc"], "evals.synthetic.revison: unknown key (declared: kind, name, benchmark"),
    (["+eval@evals.toy=beir", "evals.toy.dataset=org/toy", "evals.toy.embedding_store=maybe"],
     "evals.toy.embedding_store: Value 'maybe' is not a valid bool"),
    (["train.temperature=-1"], "train.temperature: must be > 0, got -1.0"),
    (["train.max_steps=0"], "train.max_steps: must be >= 1 when training is enabled"),
    (["encoder.batch_size=0"], "encoder.batch_size: must be a positive integer, got 0"),
    (["logger=wandb", "logger.mode=bogus"], "logger.mode: unknown mode 'bogus'; one of offline, online, disabled"),
    (["hydra/launcher=slurmm"], "hydra/launcher: unknown option 'slurmm'; available: basic,"),
    (["-m", "train.seed=0,1", "train.dropout=1.5"], "train.dropout: must be in [0, 1), got 1.5"),  # a sweep: no run
]


@pytest.mark.parametrize("overrides, message", CASES, ids=[" ".join(c[0]) for c in CASES])
def test_a_bad_input_is_one_line_and_starts_nothing(tmp_path, overrides, message):
    root = tmp_path / "root"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HYBRID_SWEEP_DATA": str(tmp_path / "no-data")}
    res = subprocess.run([sys.executable, "-m", "hybrid_sweep", f"results_root={root}", *overrides],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 2, res.stderr[-2000:]
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {message}"), res.stderr
    assert not (root / "runs").exists() and not (root / "cache").exists()  # no run, no stage started
    assert not list(root.rglob("train_log.jsonl")) and not list(root.rglob("metrics.parquet"))
