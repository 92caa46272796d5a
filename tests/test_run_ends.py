"""How a run ends when its process dies: a worker dies with the sweep (no orphan keeps training and
holding the run), and a cluster job that ends without a result is recorded FAILED with the reason while
the others are collected, the command exits non-zero, and a rerun retries only those."""

import json
import os
import signal
import time

import pandas as pd
import pytest

from hybrid_sweep.runs.store import RunDir
from tests.test_sweeps import app

KILLED = ("train.max_steps=12", "train.save_every=5", "train.eval_every=0", "encoder.progress=false",
          "evals.synthetic.subset.articles=2", "train.batch_size=8")
PARENT_KILLED = dict(os.environ, HYBRID_SWEEP_FAULT="after_checkpoint", HYBRID_SWEEP_FAULT_SCOPE="parent")


def _steps(run_dir):
    return [json.loads(line)["step"] for line in (run_dir / "train_log.jsonl").read_text().splitlines()]


def _released(rd: RunDir, deadline_s: float = 30.0) -> bool:
    """Whether the run's lock becomes free (its holder gone) within the deadline."""
    end = time.monotonic() + deadline_s
    while rd.locked_by_other():
        if time.monotonic() > end:
            return False
        time.sleep(0.2)
    return True


def test_kill_of_the_sweep_process_alone_leaves_no_orphan_worker(tmp_path):
    killed = app(*KILLED, root=tmp_path, env=PARENT_KILLED)
    assert killed.returncode == -signal.SIGKILL  # the sweep's main process only; its group was not signalled
    run_dir = next(p for p in tmp_path.glob("runs/*") if p.is_dir())
    assert _released(RunDir(tmp_path, run_dir.name))  # the forked worker died with it
    logged = len(_steps(run_dir))
    time.sleep(1.0)
    assert len(_steps(run_dir)) == logged  # nothing trains on in the background
    res = app(*KILLED, root=tmp_path)
    assert res.returncode == 0, res.log[-3000:]
    assert "running in another process" not in res.log and " resuming (interrupted)" in res.log
    assert _steps(run_dir) == list(range(12))
    assert "taking over from" in res.log  # the dead holder is named


def test_a_cluster_job_that_ends_without_a_result_is_recorded_failed(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    sweep = ("-m", "train.seed=0,1", "hydra/launcher=submitit_local", "hydra.launcher.timeout_min=10", *KILLED)
    res = app(*sweep, root=tmp_path, env=PARENT_KILLED)  # each job's process killed after its first checkpoint
    assert res.returncode == 1, res.log[-3000:]
    assert res.stderr.strip().splitlines()[-1].startswith("error: 2 run(s) failed")
    runs = pd.read_parquet(tmp_path / "runs.parquet")
    assert list(runs.status) == ["failed", "failed"]
    assert runs.error.str.contains("cluster job .* ended without a result", regex=True).all()
    again = app(*sweep, root=tmp_path)
    assert again.returncode == 0, again.log[-3000:]
    assert list(pd.read_parquet(tmp_path / "runs.parquet").status) == ["done", "done"]


def test_an_error_at_the_end_of_a_multirun_exits_non_zero_in_one_line(tmp_path):
    quick = ("train.max_steps=2", "train.batch_size=8", "train.eval_every=0", "encoder.progress=false",
             "evals.synthetic.subset.articles=2")
    (tmp_path / "results.parquet").mkdir(parents=True)  # collect cannot write its table there
    res = app("-m", "train.seed=0", *quick, root=tmp_path)
    assert res.returncode == 1, res.log[-3000:]
    last = res.stderr.strip().splitlines()[-1]
    assert last.startswith("error: collecting ") and "results.parquet" in last
    assert list(tmp_path.glob("runs/*/DONE"))  # the run itself finished; only the tables could not be written
