"""The trainer under a process group (gloo on CPU here; tests/test_gpu.py does the same with NCCL):
every collective sees a tensor on the training device, collectives run even at world size 1, DDP's
bucketed all-reduce matches the loss curve of a run without a process group, and a CUDA device that
does not work is one ConfigError."""


import pytest
import torch

from hybrid_sweep.errors import ConfigError
from hybrid_sweep.training import distributed, trainer
from tests.conftest import compose, free_port, train_log

FAST = ("encoder.progress=false", "train.batch_size=16", "train.eval_every=3", "train.save_every=3",
        "train.val_batches=1", "encoder.tiny.hidden=32", "encoder.tiny.intermediate=64", "train.max_steps=6")


@pytest.fixture
def gloo_world_one(monkeypatch):
    torch.distributed.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{free_port()}", rank=0, world_size=1)
    yield
    torch.distributed.destroy_process_group()


def _record_collectives(monkeypatch) -> list:
    """Wrap the collectives the trainer may call; each records the device of what it was handed."""
    seen = []
    for name in ("all_reduce", "all_gather", "broadcast", "all_gather_into_tensor"):
        real = getattr(torch.distributed, name)

        def wrapped(t, *a, _real=real, _name=name, **k):
            first = t[0] if isinstance(t, list) else t
            seen.append((_name, first.device))
            return _real(t, *a, **k)
        monkeypatch.setattr(torch.distributed, name, wrapped)
    return seen


def test_collectives_run_at_world_one_on_the_training_device(tmp_path, monkeypatch, gloo_world_one):
    """Fails on the old code path: with a group of one, it skipped every collective (so NCCL was never
    exercised on one GPU), and its loss mean all-reduced a CPU tensor made from ``loss.item()``."""
    seen = _record_collectives(monkeypatch)
    trainer.train(compose(*FAST, config_name="train"), tmp_path)
    names = {n for n, _ in seen}
    assert "all_reduce" in names, "the loss / validation means must go through a collective"
    device = "cuda" if torch.cuda.is_available() else "cpu"  # the training device of encoder.device=auto
    assert {d.type for _, d in seen} == {device}


def test_mean_keeps_the_callers_device(monkeypatch, gloo_world_one):
    """``mean`` hands the collective the caller's tensor device, whatever it is (meta stands in for a GPU)."""
    handed = []
    monkeypatch.setattr(torch.distributed, "all_reduce", lambda t, *a, **k: handed.append(t.device))
    out = distributed.mean(torch.ones(3, device="meta"))
    assert handed == [torch.device("meta")] and out.device.type == "meta"


def test_ddp_at_world_one_equals_no_process_group(tmp_path, monkeypatch):
    plain = trainer.train(compose(*FAST, config_name="train"), tmp_path / "plain")
    torch.distributed.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{free_port()}", rank=0, world_size=1)
    try:
        assert isinstance(distributed.wrap(torch.nn.Linear(2, 2), torch.device("cpu")),
                          torch.nn.parallel.DistributedDataParallel)
        ddp = trainer.train(compose(*FAST, config_name="train"), tmp_path / "ddp")
    finally:
        torch.distributed.destroy_process_group()
    assert [r["loss"] for r in train_log(tmp_path / "ddp")] == pytest.approx([r["loss"] for r in train_log(tmp_path / "plain")],
                                                                       rel=1e-6)
    assert ddp["best_val_loss"] == pytest.approx(plain["best_val_loss"], rel=1e-6)


def test_cuda_asked_for_without_working_cuda_is_one_config_error(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError, match="encoder.device.*CUDA does not work"):
        trainer.train(compose(*FAST, "encoder.device=cuda", config_name="train"), tmp_path / "run")
    assert not (tmp_path / "run").exists()  # refused before anything is written
    with pytest.raises(ConfigError, match="encoder.device.*unknown device"):
        distributed.training_device("gpu0")
    assert distributed.training_device("auto") == "cpu"


def test_pretraining_refuses_cuda_that_does_not_work(tmp_path, monkeypatch):
    from hybrid_sweep.training.pretrain import continued_mlm
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    cfg = compose("pretrain=mlm", "pretrain.max_steps=1", "encoder.device=cuda", config_name="config")
    with pytest.raises(ConfigError, match="encoder.device"):
        continued_mlm(cfg, tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_torchrun_two_processes_match_a_single_process(tmp_path):
    """``torchrun --nproc_per_node=2`` (gloo on CPU, DDP, the loss gathered across ranks, false negatives
    masked per shard) follows the single-process loss curve of the same global batches. Dropout is off:
    each rank draws its own masks (per-rank seeds), which a single process cannot reproduce."""
    import os
    import subprocess
    import sys

    overrides = [*FAST, "train.dropout=0", "train.eval_every=3"]
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="", OMP_NUM_THREADS="1")
    single = [sys.executable, "-m", "hybrid_sweep.train", *overrides, f"output_dir={tmp_path / 'single'}"]
    pair = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m",
            "hybrid_sweep.train", *overrides, f"output_dir={tmp_path / 'pair'}"]
    for cmd in (single, pair):
        res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
        assert res.returncode == 0, res.stderr[-3000:]
    one, two = train_log(tmp_path / "single"), train_log(tmp_path / "pair")
    assert [r["step"] for r in two] == list(range(6))  # rank 0 writes each step once
    assert [r["loss"] for r in two] == pytest.approx([r["loss"] for r in one], rel=1e-4)
    assert [r["val_loss"] for r in two if "val_loss" in r] == pytest.approx(
        [r["val_loss"] for r in one if "val_loss" in r], rel=1e-4)
