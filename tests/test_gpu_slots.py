"""GPU slots for parallel local jobs (flock per GPU, fake GPU counts) and the SLURM rendezvous for torchrun."""

import multiprocessing
import os
import time

import pytest

from hybrid_sweep.errors import ConfigError
from hybrid_sweep.runs import gpu_slots


@pytest.fixture(autouse=True)
def _release():
    yield
    gpu_slots.release()


def test_visible_gpus_from_env_or_the_machine():
    assert gpu_slots.visible_gpus({"CUDA_VISIBLE_DEVICES": "2,5"}, count=lambda: 8) == ["2", "5"]
    assert gpu_slots.visible_gpus({"CUDA_VISIBLE_DEVICES": ""}, count=lambda: 8) == []  # hidden on purpose
    assert gpu_slots.visible_gpus({}, count=lambda: 4) == ["0", "1", "2", "3"]  # unset: all of the box
    assert gpu_slots.visible_gpus({}, count=lambda: 0) == []


def _hold(lock_dir, gpus, per, queue, seconds):
    queue.put(gpu_slots.claim(gpus, per, lock_dir))
    time.sleep(seconds)


def test_jobs_get_free_gpus_not_job_number_mod_count(tmp_path):
    """Two processes hold GPUs 0 and 1 of 4; a third job gets a free one (2), whatever its number."""
    ctx = multiprocessing.get_context("fork")
    q = ctx.Queue()
    holders = [ctx.Process(target=_hold, args=(tmp_path, ["0", "1", "2", "3"], 1, q, 30)) for _ in range(2)]
    for p in holders:
        p.start()
    try:
        held = sorted(q.get(timeout=20)[0] for _ in holders)
        assert held == ["0", "1"]
        env = gpu_slots.slot_env({}, 1, tmp_path, count=lambda: 4)  # CUDA_VISIBLE_DEVICES unset
        assert env["CUDA_VISIBLE_DEVICES"] == "2"
        gpu_slots.release()
        two = gpu_slots.slot_env({"CUDA_VISIBLE_DEVICES": "0,1,2,3"}, 2, tmp_path)
        assert two["CUDA_VISIBLE_DEVICES"] == "2,3"
    finally:
        for p in holders:
            p.kill()
            p.join()
    gpu_slots.release()
    # the holders died: the kernel dropped their locks, so all four are free again
    assert gpu_slots.claim(["0", "1", "2", "3"], 4, tmp_path) == ["0", "1", "2", "3"]


def test_a_job_waits_for_a_slot_and_no_gpus_means_no_change(tmp_path):
    gpu_slots.claim(["0"], 1, tmp_path)
    ctx = multiprocessing.get_context("fork")
    q = ctx.Queue()
    p = ctx.Process(target=lambda: q.put(_try(tmp_path)))
    p.start()
    p.join(20)
    assert q.get(timeout=5) == "timeout"  # GPU 0 is held by this process
    assert gpu_slots.slot_env({"CUDA_VISIBLE_DEVICES": "", "X": "1"}, 1, tmp_path) == {"CUDA_VISIBLE_DEVICES": "",
                                                                                        "X": "1"}
    with pytest.raises(ConfigError, match="resources.nproc_per_node"):
        gpu_slots.claim(["0"], 2, tmp_path)


def _try(lock_dir):
    try:
        gpu_slots.claim(["0"], 1, lock_dir, poll_s=0.05, timeout_s=0.3)
        return "claimed"
    except TimeoutError:
        return "timeout"


@pytest.mark.parametrize("nodelist, hosts", [
    ("gpu[01-03,07]", ["gpu01", "gpu02", "gpu03", "gpu07"]),
    ("node7", ["node7"]),
    ("a[1-2],b3,c[09-10]", ["a1", "a2", "b3", "c09", "c10"]),
    ("rack[1-2]-n[1-2]", ["rack1-n1", "rack1-n2", "rack2-n1", "rack2-n2"]),
])
def test_expand_nodelist(nodelist, hosts):
    assert gpu_slots.expand_nodelist(nodelist) == hosts


def test_slurm_rendezvous_from_sample_environments():
    env = {"SLURM_JOB_NODELIST": "gpu[01-03,07]", "SLURM_NODEID": "2", "SLURM_JOB_ID": "123456"}
    rdzv = gpu_slots.slurm_rendezvous(env, 4)
    assert rdzv == {"PET_NNODES": "4", "PET_NODE_RANK": "2", "PET_MASTER_ADDR": "gpu01",
                    "PET_MASTER_PORT": str(29500 + 123456 % 10000)}
    assert gpu_slots.slurm_rendezvous({"SLURM_NODELIST": "n[1-2]", "SLURM_NODEID": "0", "MASTER_PORT": "4000"},
                                      2)["PET_MASTER_PORT"] == "4000"
    assert gpu_slots.slurm_rendezvous({}, 1) == {}
    with pytest.raises(ConfigError, match="resources.nnodes.*SLURM"):
        gpu_slots.slurm_rendezvous({}, 2)
    with pytest.raises(ConfigError, match="resources.nnodes.*has 4"):
        gpu_slots.slurm_rendezvous(env, 2)


def test_slurm_launcher_ties_nodes_and_gpus_to_resources():
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    from hydra import compose, initialize_config_dir

    from tests.conftest import ROOT
    with initialize_config_dir(config_dir=os.path.join(ROOT, "conf"), version_base="1.3"):
        cfg = compose("config", overrides=["hydra/launcher=slurm", "resources.nproc_per_node=4", "resources.nnodes=2"],
                      return_hydra_config=True)
    launcher = cfg.hydra.launcher
    assert (launcher.nodes, launcher.tasks_per_node, launcher.gpus_per_node) == (2, 1, 4)


def test_child_env_takes_a_free_slot_and_the_rendezvous(tmp_path, monkeypatch):
    from omegaconf import OmegaConf

    from hybrid_sweep import app
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1,2,3")
    monkeypatch.setenv("SLURM_JOB_NODELIST", "gpu[1-2]")
    monkeypatch.setenv("SLURM_NODEID", "1")
    monkeypatch.setenv("SLURM_JOB_ID", "7")
    cfg = OmegaConf.create({"resources": {"nproc_per_node": 2, "nnodes": 2, "gpu_slots": True,
                                          "gpu_lock_dir": str(tmp_path), "threads": 3}})
    gpu_slots.claim(["0", "1", "2", "3"], 1, tmp_path)  # as if another job held GPU 0 ...
    held = list(gpu_slots._held)
    gpu_slots._held.clear()  # ... from another process: app's claim below must not release it
    try:
        env = app._child_env(cfg)
    finally:
        for fd in held:
            os.close(fd)
    assert env["CUDA_VISIBLE_DEVICES"] == "1,2" and env["OMP_NUM_THREADS"] == "3"
    assert (env["PET_NNODES"], env["PET_NODE_RANK"], env["PET_MASTER_ADDR"]) == ("2", "1", "gpu1")
    assert env["PET_TEE"] == "3" and env["PYTHONUNBUFFERED"] == "1"
