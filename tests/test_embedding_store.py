"""Embedding store: encode once, reuse, whole-or-absent shards under SIGKILL and concurrent processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from hybrid_sweep.errors import ConfigError, DataError
from hybrid_sweep.evaluation.embedding_store import (
    EmbeddingStore,
    corpus_fingerprint,
    encoder_fingerprint,
    model_fingerprint,
)

ROOT = Path(__file__).resolve().parents[1]
DIM = 8


def fake_rows(start, stop):
    """Deterministic 'embeddings': row r is a function of r alone."""
    r = np.arange(start, stop, dtype=np.float64)[:, None]
    return np.sin(r * 0.37 + np.arange(DIM)).astype(np.float32)


def test_encodes_each_shard_once_then_reuses(tmp_path):
    calls = []

    def encode(a, b):
        calls.append((a, b))
        return torch.from_numpy(fake_rows(a, b))

    store = EmbeddingStore(tmp_path)
    emb = store.embeddings("m1", "c1", 23, encode, shard_rows=10)
    assert calls == [(0, 10), (10, 20), (20, 23)]
    assert isinstance(emb, np.memmap) and emb.dtype == np.float16 and emb.shape == (23, DIM)
    np.testing.assert_array_equal(emb, fake_rows(0, 23).astype(np.float16))
    again = store.embeddings("m1", "c1", 23, encode, shard_rows=10)
    assert len(calls) == 3  # reused: no encoding at all
    np.testing.assert_array_equal(again, emb)
    assert not (tmp_path / "m1" / "c1" / "shards").exists()
    assert json.loads((tmp_path / "m1" / "c1" / "manifest.json").read_text())["n_rows"] == 23
    store.embeddings("m2", "c1", 23, encode, shard_rows=100)  # another model: its own entry
    assert len(calls) == 4


def test_bad_encoder_output_and_keys_are_named(tmp_path):
    store = EmbeddingStore(tmp_path)
    with pytest.raises(DataError, match="encode_rows.*shape"):
        store.embeddings("m", "c", 5, lambda a, b: np.zeros((b - a + 1, 4)))
    with pytest.raises(DataError, match="non-finite"):
        store.embeddings("m", "c", 5, lambda a, b: np.full((b - a, 4), np.nan))
    with pytest.raises(DataError, match="float16 range"):
        store.embeddings("m", "c", 5, lambda a, b: np.full((b - a, 4), 1e6))
    with pytest.raises(ConfigError, match="^model_fp:"):
        store.embeddings("../x", "c", 5, fake_rows)
    assert not store.complete("m", "c")
    store.embeddings("m", "c", 5, fake_rows)
    with pytest.raises(DataError, match="holds 5 rows"):
        store.embeddings("m", "c", 6, fake_rows)


def test_fingerprints_change_with_content():
    base = corpus_fingerprint(["a", "b"], ["x", "y"])
    assert base == corpus_fingerprint(["a", "b"], ["x", "y"])
    assert len({base, corpus_fingerprint(["a", "b"], ["x", "z"]), corpus_fingerprint(["b", "a"], ["x", "y"]),
                corpus_fingerprint(["a", "b"], ["x", "y"], kind="query"), corpus_fingerprint(["ab"], ["xy"]),
                corpus_fingerprint(["a"], ["bx"])}) == 6
    torch.manual_seed(0)
    lin = torch.nn.Linear(3, 2)
    fp = model_fingerprint(lin, prefix="q: ")
    assert fp == model_fingerprint(lin, prefix="q: ") != model_fingerprint(lin, prefix="")
    with torch.no_grad():
        lin.weight[0, 0] += 1e-3
    assert model_fingerprint(lin, prefix="q: ") != fp


def test_encoder_fingerprint_of_the_tiny_encoder(tmp_path):
    from hybrid_sweep.encoders.encoder import Encoder
    from hybrid_sweep.encoders.tiny import build_tiny_model

    texts = ["one small text", "another text", "third"]
    enc = Encoder(build_tiny_model(texts, tmp_path / "m", vocab_size=200, layers=1), "tiny", show_progress=False)
    fp = encoder_fingerprint(enc)
    assert encoder_fingerprint(enc) == fp
    enc.prefixes["passage"] = "doc: "
    assert encoder_fingerprint(enc) != fp


WORKER = textwrap.dedent(
    """
    import os, sys, time
    import numpy as np
    from hybrid_sweep.evaluation.embedding_store import EmbeddingStore
    root, log, n, kill_at, delay = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
    DIM = 8

    def encode(start, stop):
        with open(log, "a") as f:
            f.write(f"{os.getpid()} {start}\\n")
        if start == kill_at:
            os.kill(os.getpid(), 9)  # killed while encoding this shard
        time.sleep(delay)
        r = np.arange(start, stop, dtype=np.float64)[:, None]
        return np.sin(r * 0.37 + np.arange(DIM)).astype(np.float32)

    emb = EmbeddingStore(root).embeddings("model", "corpus", n, encode, shard_rows=10)
    np.save(sys.argv[6], np.asarray(emb))
    """
)


def _worker(tmp_path, n=45, kill_at=-1, delay=0.0, fault=None, tag="a"):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("HYBRID_SWEEP_FAULT", None)
    if fault:
        env["HYBRID_SWEEP_FAULT"] = fault
    args = [sys.executable, str(script), str(tmp_path / "store"), str(tmp_path / "calls.log"), str(n),
            str(kill_at), str(delay), str(tmp_path / f"out-{tag}.npy")]
    # its own session: the fault point kills the whole process group, never pytest
    return subprocess.Popen(args, env=env, start_new_session=True, stderr=subprocess.PIPE, text=True)


def _starts(tmp_path):
    return [int(line.split()[1]) for line in (tmp_path / "calls.log").read_text().splitlines()]


@pytest.mark.parametrize("how", ["while_encoding", "tmp_written_not_renamed"])
def test_sigkill_leaves_whole_shards_and_a_rerun_completes(tmp_path, how):
    if how == "while_encoding":
        proc = _worker(tmp_path, kill_at=20)
    else:
        proc = _worker(tmp_path, fault="during_write:shard-000002.npy")
    proc.communicate(timeout=120)
    assert proc.returncode == -9
    entry = tmp_path / "store" / "model" / "corpus"
    assert not (entry / "manifest.json").exists() and not (entry / "embeddings.npy").exists()
    kept = sorted(p.name for p in (entry / "shards").glob("shard-*.npy"))
    assert kept == ["shard-000000.npy", "shard-000001.npy"]  # whole shards only, no partial third one
    for name in kept:
        assert np.load(entry / "shards" / name).shape == (10, DIM)
    (tmp_path / "calls.log").unlink()
    proc = _worker(tmp_path)
    assert proc.communicate(timeout=120)[1] is not None and proc.returncode == 0
    assert _starts(tmp_path) == [20, 30, 40]  # only the missing shards were encoded
    np.testing.assert_array_equal(np.load(tmp_path / "out-a.npy"), fake_rows(0, 45).astype(np.float16))
    assert not (entry / "shards").exists()


def test_two_concurrent_processes_build_one_correct_store(tmp_path):
    procs = [_worker(tmp_path, n=60, delay=0.3, tag=t) for t in "ab"]
    for p in procs:
        err = p.communicate(timeout=120)[1]
        assert p.returncode == 0, err[-2000:]
    starts = _starts(tmp_path)
    assert sorted(starts) == [0, 10, 20, 30, 40, 50]  # every shard encoded exactly once between the two
    want = fake_rows(0, 60).astype(np.float16)
    for t in "ab":
        np.testing.assert_array_equal(np.load(tmp_path / f"out-{t}.npy"), want)
    entry = tmp_path / "store" / "model" / "corpus"
    assert sorted(p.name for p in entry.iterdir()) == ["assemble.lock", "embeddings.npy", "manifest.json"]
