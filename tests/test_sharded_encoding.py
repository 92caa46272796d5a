"""Sharded corpus encoding (evaluation/sharded.py): under a process group every rank stores its shards of
a corpus in the embedding store and rank 0 searches. Two gloo processes on CPU give the store and the
metrics one process gives; a rank that dies is one clear error, with nothing marked complete."""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hybrid_sweep.errors import DataError
from hybrid_sweep.evaluation.embedding_store import EmbeddingStore, shard_rows_for
from hybrid_sweep.evaluation.sharded import ShardPlan, hold_rank
from tests.conftest import compose, free_port
from tests.retrieval_fixtures import write_beir

N_DOCS = 600  # shard_rows_for(600) = 256 rows: shards 0 and 2 go to rank 0, shard 1 to rank 1


def _fixture(tmp_path: Path) -> tuple[Path, Path]:
    from hybrid_sweep.encoders.tiny import build_tiny_model

    docs = [(f"d{i:04d}", "", f"word{i} shared text {i % 7} and more {i % 11}") for i in range(N_DOCS)]
    queries = [(f"q{i}", f"word{i * 37 % N_DOCS} question {i % 5}") for i in range(40)]
    qrels = {"test": [(f"q{i}", f"d{i * 37 % N_DOCS:04d}", 1) for i in range(40)]}
    folder = write_beir(tmp_path / "toy", docs, queries, qrels)
    model = tmp_path / "model"
    texts = [t for _, _, t in docs] + [t for _, t in queries]
    build_tiny_model(texts, model, vocab_size=300, layers=1).save(str(model))
    return folder, model


def _cfg(folder: Path, model: Path):
    from omegaconf import OmegaConf

    from hybrid_sweep.config import load

    cfg = load(compose("eval=beir", f"eval.path={folder}", "eval.embedding_store=true", f"encoder.path={model}",
                       "encoder.progress=false", "eval.full_rank_max=100", "output_dir=unused"), "evaluate")
    return OmegaConf.to_yaml(cfg, resolve=True)  # a plain text that crosses the process boundary


def _rank_main(rank: int, world: int, port: int, cfg_yaml: str, out: str, store: str, ranks: str, die: bool) -> None:
    """One rank: a gloo process group, then the evaluation as the run worker does it."""
    import sys

    import torch
    import torch.distributed as dist
    from omegaconf import OmegaConf

    from hybrid_sweep.evaluation import embedding_store
    from hybrid_sweep.evaluation.pipeline import run_evaluation
    from hybrid_sweep.evaluation.sharded import rank_group

    torch.set_num_threads(1)
    real = embedding_store.EmbeddingStore._write_shard

    def recorded(shards, i, start, stop, encode_rows):
        if die:
            os._exit(3)  # as a killed rank: no exception, no cleanup
        with open(Path(out).parent / f"encoded-{rank}.txt", "a") as f:
            f.write(f"{i}\n")
        return real(shards, i, start, stop, encode_rows)

    embedding_store.EmbeddingStore._write_shard = staticmethod(recorded)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        with rank_group(Path(ranks)) as plan:
            run_evaluation(OmegaConf.create(cfg_yaml), Path(out), None, None, Path(store), plan)
    except DataError as err:
        (Path(out).parent / f"error-{rank}.txt").write_text(str(err))
        sys.exit(2)


def _two_ranks(tmp_path: Path, cfg_yaml: str, die_rank: int | None = None) -> list[int]:
    ctx, port = multiprocessing.get_context("spawn"), free_port()
    procs = [ctx.Process(target=_rank_main, args=(r, 2, port, cfg_yaml, str(tmp_path / "sharded" / "out"),
                                                  str(tmp_path / "sharded" / "store"), str(tmp_path / "ranks"),
                                                  r == die_rank)) for r in range(2)]
    (tmp_path / "sharded").mkdir()
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=240)  # a guard against a hang, not a timing assertion
    alive = [p for p in procs if p.is_alive()]
    for p in alive:
        p.kill()
    assert not alive, "a rank hung"
    return [p.exitcode for p in procs]


def test_two_gloo_ranks_store_and_score_what_one_process_does(tmp_path):
    from omegaconf import OmegaConf

    from hybrid_sweep.evaluation.pipeline import run_evaluation

    folder, model = _fixture(tmp_path)
    cfg_yaml = _cfg(folder, model)
    single = run_evaluation(OmegaConf.create(cfg_yaml), tmp_path / "single" / "out", None, None,
                            tmp_path / "single" / "store")
    assert _two_ranks(tmp_path, cfg_yaml) == [0, 0]
    enc = {r: sorted(int(x) for x in (tmp_path / "sharded" / f"encoded-{r}.txt").read_text().split()) for r in (0, 1)}
    assert enc == {0: [0, 2], 1: [1]}  # shard i on rank i % 2, each encoded once
    [one] = list((tmp_path / "single" / "store").rglob("embeddings.npy"))
    [two] = list((tmp_path / "sharded" / "store").rglob("embeddings.npy"))
    assert one.relative_to(tmp_path / "single" / "store") == two.relative_to(tmp_path / "sharded" / "store")
    a, b = np.load(one), np.load(two)
    assert a.shape[0] == N_DOCS and a.dtype == np.float16 and np.array_equal(a, b)  # bit for bit
    assert (one.parent / "manifest.json").read_text() == (two.parent / "manifest.json").read_text()
    assert not list((tmp_path / "sharded" / "store").rglob("shard-*.npy"))  # joined, then removed
    out = tmp_path / "sharded" / "out"
    got = pd.read_parquet(out / "metrics.parquet")
    pd.testing.assert_frame_equal(got, single.metrics.reset_index(drop=True), check_dtype=False)
    pd.testing.assert_frame_equal(pd.read_parquet(out / "per_query.parquet"),
                                  pd.read_parquet(tmp_path / "single" / "out" / "per_query.parquet"))
    assert set(got.depth) == {"top100"}  # the store searched by the blocked top-k, as in one process


def test_a_rank_that_dies_is_one_error_and_nothing_is_complete(tmp_path):
    folder, model = _fixture(tmp_path)
    codes = _two_ranks(tmp_path, _cfg(folder, model), die_rank=1)
    assert codes == [2, 3]
    message = (tmp_path / "sharded" / "error-0.txt").read_text()
    assert "shard-000001.npy: rank 1 of 2 exited without writing this shard" in message
    store = tmp_path / "sharded" / "store"
    assert not list(store.rglob("manifest.json")) and not list(store.rglob("embeddings.npy"))
    kept = sorted(p.name for p in store.rglob("shard-*.npy"))
    assert kept == ["shard-000000.npy", "shard-000002.npy"]  # rank 0's whole shards, kept for a rerun
    assert not (tmp_path / "sharded" / "out" / "metrics.parquet").exists()


def test_rank_zero_raises_at_once_when_the_owner_of_a_shard_is_gone(tmp_path):
    """No process holds rank 1's liveness lock: rank 0 stores its shards, then one DataError (no wait)."""
    calls = []

    def encode(a, b):
        calls.append(a)
        return np.ones((b - a, 4), np.float32)

    with hold_rank(tmp_path / "ranks", 0, 2) as plan:
        with pytest.raises(DataError, match="shard-000001.npy: rank 1 of 2 exited"):
            EmbeddingStore(tmp_path / "store").embeddings("m", "c", 25, encode, shard_rows=10, plan=plan)
    assert calls == [0, 20]
    assert not list((tmp_path / "store").rglob("manifest.json"))


def test_other_ranks_store_their_shards_and_return_none(tmp_path):
    calls = []

    def encode(a, b):
        calls.append(a)
        return np.full((b - a, 4), a, np.float32)

    plan = ShardPlan(rank=1, world=3, ranks_dir=tmp_path)
    assert EmbeddingStore(tmp_path / "store").embeddings("m", "c", 95, encode, shard_rows=10, plan=plan) is None
    assert calls == [10, 40, 70]  # shards 1, 4, 7
    assert not list((tmp_path / "store").rglob("manifest.json"))


def test_shard_rows_depend_on_the_corpus_only():
    assert shard_rows_for(600) == 256 and shard_rows_for(100_000) == 3125 and shard_rows_for(10_000_000) == 65536


def test_a_shard_of_another_size_is_one_error(tmp_path):
    store, encode = EmbeddingStore(tmp_path), lambda a, b: np.ones((b - a, 4), np.float32)
    shards = tmp_path / "m" / "c" / "shards"
    shards.mkdir(parents=True)
    np.save(shards / "shard-000000.npy", np.ones((20, 4), np.float16))  # left by a process cutting 20 rows
    with pytest.raises(DataError, match="shard-000000.npy: holds 20 rows, expected 10"):
        store.embeddings("m", "c", 25, encode, shard_rows=10)
    assert not (tmp_path / "m" / "c" / "manifest.json").exists()


def test_a_sweep_with_two_processes_encodes_under_torchrun(tmp_path):
    """resources.nproc_per_node=2 and an entry on the embedding store: the evaluation stage runs under
    torchrun (both ranks take part), rank 0 writes the entry's results and the store entry is complete."""
    import json
    import subprocess
    import sys

    from tests.conftest import ROOT

    folder, model = _fixture(tmp_path)
    root = tmp_path / "root"
    res = subprocess.run([sys.executable, "-m", "hybrid_sweep", f"results_root={root}", "resources.nproc_per_node=2",
                          "resources.gpu_slots=false", "train.enabled=false", "~eval@evals.synthetic",
                          "+eval@evals.toy=beir", f"evals.toy.path={folder}", "evals.toy.embedding_store=true",
                          f"encoder.path={model}", "encoder.progress=false"],
                         cwd=ROOT, capture_output=True, text=True, timeout=300, start_new_session=True)
    assert res.returncode == 0, (res.stdout + res.stderr)[-3000:]
    [run] = [p for p in (root / "runs").iterdir() if p.is_dir()]
    assert sorted(p.name for p in (run / "eval_ranks").iterdir()) == ["rank-0.lock", "rank-1.lock"]
    [entry] = json.loads((run / "evals.json").read_text()).values()
    assert (run / "eval" / "toy" / entry["key"] / "metrics.parquet").exists() and (run / "DONE").exists()
    [manifest] = list((root / "cache" / "embeddings").rglob("manifest.json"))
    assert json.loads(manifest.read_text())["n_rows"] == N_DOCS


def test_the_sweep_launches_evaluation_under_torchrun_only_for_store_entries(tmp_path, monkeypatch):
    """Trained run: torchrun trains, then torchrun (standalone, node 0) evaluates; without a store entry
    evaluation stays one process, as before."""
    import subprocess

    from hybrid_sweep import app
    from hybrid_sweep.runs.store import RunDir, requested_evals, run_id

    calls = []
    monkeypatch.setattr(app.subprocess, "run", lambda cmd, env=None, **kw: calls.append(cmd)
                        or subprocess.CompletedProcess(cmd, 0, "", ""))
    folder = write_beir(tmp_path / "toy", [("d0", "", "x")], [("q0", "y")], {"test": [("q0", "d0", 1)]})
    for store, want in ((True, ["train", "evaluate"]), (False, ["train", None])):
        cfg = app.validate(compose(f"results_root={tmp_path}", "resources.nproc_per_node=2",
                                   "resources.gpu_slots=false", "+eval@evals.toy=beir", f"evals.toy.path={folder}",
                                   f"evals.toy.embedding_store={str(store).lower()}", config_name="config"))
        rd = RunDir(tmp_path, run_id(cfg))
        rd.path.mkdir(parents=True, exist_ok=True)
        (rd.path / "evals.json").unlink(missing_ok=True)
        rd.request(requested_evals(cfg))
        calls.clear()
        app._execute(cfg, rd)
        assert [c[-1] for c in calls] == ["train", "evaluate"]
        assert [c[-1] if "torch.distributed.run" in c else None for c in calls] == want
        if store:
            assert "--standalone" in calls[1] and "--nproc_per_node=2" in calls[1]


def test_bench_sharded_encode_smoke_stores_equal_embeddings():
    """benchmarks/bench_sharded_encode.py --smoke: 2 ranks vs 1 process, the stores equal bit for bit."""
    from benchmarks import bench_sharded_encode

    out = bench_sharded_encode.main(["--smoke"])
    assert set(out) == {"1 proc x 1 thread", "2 ranks x 1 thread"} and all(v["equal"] for v in out.values())
