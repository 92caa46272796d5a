"""A multi-node SLURM run: node 0 owns the run folder and evaluates; every other node waits for the run's
config.yaml and only joins torchrun's training rendezvous. The launches are recorded, not executed."""

from __future__ import annotations

import subprocess

import pytest

from hybrid_sweep import app
from hybrid_sweep.runs.store import RunDir, run_id
from tests.conftest import compose

SLURM = {"SLURM_JOB_NODELIST": "gpu[07-08]", "SLURM_JOB_ID": "41", "CUDA_VISIBLE_DEVICES": ""}


@pytest.fixture
def launches(monkeypatch):
    calls = []

    def fake_run(cmd, env=None, **kw):
        calls.append((cmd, dict(env or {}), kw))
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(app.subprocess, "run", fake_run)
    return calls


def _cfg(tmp_path):
    return compose(f"results_root={tmp_path}", "resources.nnodes=2", "resources.nproc_per_node=4",
                   "resources.gpu_slots=false", config_name="config")


def test_node_one_waits_for_the_config_then_only_trains(monkeypatch, tmp_path, launches):
    monkeypatch.setenv("SLURM_NODEID", "1")
    for k, v in SLURM.items():
        monkeypatch.setenv(k, v)
    cfg = _cfg(tmp_path)
    rd = RunDir(tmp_path, run_id(app.validate(cfg)))
    with pytest.raises(app.RunFailed, match="node 1: node 0 did not start the run"):
        app._follow(app.validate(cfg), rd, wait_s=0)
    assert launches == []
    rd.path.mkdir(parents=True)
    (rd.path / "config.yaml").write_text("written by node 0\n")
    assert app.run_one(cfg) == "follower"
    [(cmd, env, _)] = launches
    assert cmd[2:] == ["torch.distributed.run", "--nproc_per_node=4", "-m", "hybrid_sweep.runs.worker",
                       str(rd.path), "train"]
    assert (env["PET_NNODES"], env["PET_NODE_RANK"], env["PET_MASTER_ADDR"]) == ("2", "1", "gpu07")
    assert not (rd.path / ".lock").exists() and not (rd.path / "DONE").exists()  # node 0's business


def test_node_zero_trains_under_torchrun_then_evaluates(monkeypatch, tmp_path, launches):
    monkeypatch.setenv("SLURM_NODEID", "0")
    for k, v in SLURM.items():
        monkeypatch.setenv(k, v)
    cfg = app.validate(_cfg(tmp_path))
    rd = RunDir(tmp_path, run_id(cfg))
    rd.path.mkdir(parents=True)
    app._execute(cfg, rd)
    (train, env, train_kw), (evaluate, _, eval_kw) = launches
    assert train[-1] == "train" and "torch.distributed.run" in train and env["PET_NODE_RANK"] == "0"
    assert train_kw["stderr"] is None  # the ranks' logs stream live
    assert evaluate[-1] == "evaluate" and "torch.distributed.run" not in evaluate
