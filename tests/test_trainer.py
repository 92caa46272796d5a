"""The training recipe on the synthetic data with the tiny encoder (a few seconds per run)."""

import json
import math

import pytest
import torch
from sentence_transformers import SentenceTransformer

from hybrid_sweep.evaluate import run_evaluation
from hybrid_sweep.training import trainer
from tests.conftest import compose

FAST = ("encoder.progress=false", "train.batch_size=16", "train.eval_every=5", "train.save_every=5",
        "train.val_batches=1", "encoder.tiny.hidden=32", "encoder.tiny.intermediate=64")


def _train(tmp_path, *overrides):
    cfg = compose(*FAST, *overrides, config_name="train")
    return trainer.train(cfg, tmp_path), cfg


def _log(path):
    return [json.loads(line) for line in (path / "train_log.jsonl").read_text().splitlines()]


def test_resume_reproduces_the_uninterrupted_loss_curve(tmp_path):
    _train(tmp_path / "straight", "train.max_steps=20")
    _train(tmp_path / "split", "train.max_steps=10", "train.schedule_steps=20")
    assert len(_log(tmp_path / "split")) == 10
    _train(tmp_path / "split", "train.max_steps=20")
    straight, split = _log(tmp_path / "straight"), _log(tmp_path / "split")
    assert [r["step"] for r in split] == list(range(20))
    assert [r["loss"] for r in split] == [r["loss"] for r in straight]
    assert [r["mode"] for r in split] == [r["mode"] for r in straight]


def test_log_model_and_batches(tmp_path):
    summary, cfg = _train(tmp_path, "train.max_steps=10", "train.log_batches=true", "sampler=cross")
    records = _log(tmp_path)
    assert {"step", "loss", "lr", "mode", "requested", "examples_per_s", "elapsed_s"} <= set(records[0])
    vals = [(r["step"] + 1, r["val_loss"]) for r in records if "val_loss" in r]
    assert summary["best_step"] == min(vals, key=lambda v: v[1])[0]
    batches = [json.loads(line) for line in (tmp_path / "batches.jsonl").read_text().splitlines()]
    assert len(batches) == 10 and all(b["mode"] == "cross" for b in batches)
    assert all(q != p for b in batches for _, q, p in b["items"]) and len(batches[0]["items"]) == 16
    model = SentenceTransformer(str(tmp_path / "model"), device="cpu")
    assert model.prompts["query"] == "query: "
    ev = compose(f"encoder.path={tmp_path / 'model'}", "encoder.progress=false", "eval.subset.articles=2")
    out = run_evaluation(ev)
    assert out.metrics.value.notna().all()


def test_training_learns_monolingual_retrieval(tmp_path):
    """After a short run, monolingual mAP on held-out test articles beats the untrained encoder."""
    _train(tmp_path, "train.max_steps=40", "sampler=mono", "train.lr=2e-3", "train.eval_every=0")
    ev = ("encoder.progress=false", "eval.settings=[mono]", "encoder.tiny.hidden=32", "encoder.tiny.intermediate=64")
    before = run_evaluation(compose(*ev)).metrics
    after = run_evaluation(compose(*ev, f"encoder.path={tmp_path / 'model'}")).metrics

    def avg_map(m):
        return m[(m.query_lang == "avg") & (m.metric == "map")].value.item()
    assert avg_map(after) > avg_map(before) + 0.05


def test_nan_loss_stops_with_clear_error_and_no_model(tmp_path, monkeypatch):
    calls = {"n": 0}
    real = trainer.info_nce

    def flaky(*a, **k):
        calls["n"] += 1
        loss = real(*a, **k)
        return loss * math.nan if calls["n"] == 3 else loss
    monkeypatch.setattr(trainer, "info_nce", flaky)
    with pytest.raises(trainer.TrainingError, match="train: loss is nan at step 2"):
        _train(tmp_path, "train.max_steps=10", "train.eval_every=0")
    assert not (tmp_path / "model").exists()


def test_corrupt_checkpoint_is_one_clear_error(tmp_path):
    _train(tmp_path, "train.max_steps=5", "train.eval_every=0")
    latest = tmp_path / "checkpoints" / (tmp_path / "checkpoints" / "LATEST").read_text().strip()
    (latest / "trainer_state.pt").write_bytes(b"not a torch file")
    with pytest.raises(Exception, match="corrupt checkpoint"):
        _train(tmp_path, "train.max_steps=10", "train.eval_every=0")


def test_grad_cache_path_trains(tmp_path):
    summary, _ = _train(tmp_path, "train.max_steps=3", "train.grad_cache.enabled=true", "train.grad_cache.chunk_size=5",
                        "train.eval_every=0")
    assert summary["steps"] == 3 and torch.isfinite(torch.tensor([r["loss"] for r in _log(tmp_path)])).all()


def test_resume_drops_a_torn_log_line(tmp_path):
    _train(tmp_path, "train.max_steps=5", "train.schedule_steps=10", "train.eval_every=0")
    with open(tmp_path / "train_log.jsonl", "a") as f:
        f.write('{"step": 5, "loss": 1.2')  # killed mid-line
    _train(tmp_path, "train.max_steps=10", "train.eval_every=0")
    assert [r["step"] for r in _log(tmp_path)] == list(range(10))


def test_gradient_checkpointing_gives_the_same_first_loss(tmp_path):
    plain, _ = _train(tmp_path / "a", "train.max_steps=2", "train.eval_every=0")
    ckpt, _ = _train(tmp_path / "b", "train.max_steps=2", "train.eval_every=0", "train.gradient_checkpointing=true")
    a, b = _log(tmp_path / "a"), _log(tmp_path / "b")
    assert a[0]["loss"] == pytest.approx(b[0]["loss"], rel=1e-5)


def test_one_language_validation_set_with_cross_batches(tmp_path, data_root):
    """MLQA-R with the paper's English held-out set: validation batches are monolingual even when
    training is cross-lingual with a few pairs (regression: this used to fail at start-up)."""
    summary, _ = _train(tmp_path, "data=mlqa_r", f"paths.data_root={data_root}", "sampler=cross", "sampler.n_pairs=3",
                        "train.max_steps=2", "train.eval_every=2", "train.batch_size=8")
    assert summary["steps"] == 2 and math.isfinite(summary["best_val_loss"])
