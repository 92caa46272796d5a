"""The training recipe on the synthetic data with the tiny encoder (a few seconds per run)."""

import json
import math
import os
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file
from sentence_transformers import SentenceTransformer

from hybrid_sweep.errors import ConfigError
from hybrid_sweep.evaluation.pipeline import run_evaluation
from hybrid_sweep.training import trainer
from tests.conftest import ROOT, compose

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


def test_deterministic_key_turns_deterministic_kernels_on_for_the_run_only(tmp_path, monkeypatch):
    seen = []
    real_step = trainer.Recipe.train

    def spy(self):
        seen.append(torch.are_deterministic_algorithms_enabled())
        return real_step(self)
    monkeypatch.setattr(trainer.Recipe, "train", spy)
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    _train(tmp_path / "det", "train.max_steps=3", "train.deterministic=true")
    _train(tmp_path / "plain", "train.max_steps=3")
    assert seen == [True, False] and not torch.are_deterministic_algorithms_enabled()
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"  # set before the run's first CUDA call
    # same numbers on CPU: the key is off the run id (it picks kernels, not the experiment)
    assert [r["loss"] for r in _log(tmp_path / "det")] == [r["loss"] for r in _log(tmp_path / "plain")]


def test_val_seed_gives_every_training_seed_one_validation_set(tmp_path):
    def val_batches(*overrides):
        cfg = compose(*FAST, "train.max_steps=2", *overrides, config_name="train")
        return trainer.Recipe(cfg, tmp_path / "_".join(overrides)).setup().val_batches
    shared = [val_batches(f"train.seed={s}", "train.val_seed=0") for s in (0, 1)]
    own = [val_batches(f"train.seed={s}") for s in (0, 1)]
    assert shared[0] == shared[1] and own[0] != own[1]
    assert own[0] == shared[0]  # val_seed=0 is the set that training seed 0 validates on by default


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


def _weights(folder):
    return load_file(str(next((folder / "model").rglob("model.safetensors"))))


def test_grad_cache_through_the_trainer_equals_the_plain_step(tmp_path):
    """4 steps with GradCache (chunks of 5 texts, so every group is split) and without: the loss curves
    agree to rel 1e-5 and the final weights to abs 1e-5 (fp32 on CPU; the only difference is the order
    of floating-point sums). Dropout is off (a chunked pass draws its masks in another order) and so is
    bf16 on a GPU (chunks of other shapes round differently; tests/test_gpu.py checks CUDA in fp32)."""
    common = ("train.max_steps=4", "train.eval_every=0", "train.dropout=0", "train.bf16=false")
    _train(tmp_path / "plain", *common)
    _train(tmp_path / "cached", *common, "train.grad_cache.enabled=true", "train.grad_cache.chunk_size=5")
    plain, cached = _log(tmp_path / "plain"), _log(tmp_path / "cached")
    assert [r["loss"] for r in cached] == pytest.approx([r["loss"] for r in plain], rel=1e-5)
    a, b = _weights(tmp_path / "plain"), _weights(tmp_path / "cached")
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(b[name], a[name], rtol=0, atol=1e-5, msg=name)
    init = _weights_init(tmp_path / "plain")
    assert sum(not torch.equal(a[n], init[n]) for n in a.keys() & init.keys()) > 10  # the steps moved the weights


def _weights_init(folder):
    return load_file(str(next((folder / "init_model").rglob("model.safetensors"))))


def test_resume_drops_a_torn_log_line(tmp_path):
    _train(tmp_path, "train.max_steps=5", "train.schedule_steps=10", "train.eval_every=0")
    with open(tmp_path / "train_log.jsonl", "a") as f:
        f.write('{"step": 5, "loss": 1.2')  # killed mid-line
    _train(tmp_path, "train.max_steps=10", "train.eval_every=0")
    assert [r["step"] for r in _log(tmp_path)] == list(range(10))


def test_gradient_checkpointing_gives_the_same_gradients_and_later_losses(tmp_path):
    """Checkpointing recomputes activations (same dropout masks): the first step's gradients and the
    losses of later steps, which depend on every earlier update, match the plain run."""
    grads = []
    for name, extra in (("a", ()), ("b", ("train.gradient_checkpointing=true",))):
        cfg = compose(*FAST, "train.max_steps=4", "train.eval_every=0", *extra, config_name="train")
        recipe = trainer.Recipe(cfg, tmp_path / name).setup()
        recipe.step(recipe.sampler.batch_at(0))
        grads.append({n: p.grad.clone() for n, p in recipe.model.named_parameters() if p.grad is not None})
        trainer.train(cfg, tmp_path / f"{name}-run")
    assert grads[0].keys() == grads[1].keys() and len(grads[0]) > 10
    for n in grads[0]:
        torch.testing.assert_close(grads[1][n], grads[0][n], rtol=1e-4, atol=1e-7, msg=n)
    a, b = _log(tmp_path / "a-run"), _log(tmp_path / "b-run")
    assert len(a) == 4 and [r["loss"] for r in b] == pytest.approx([r["loss"] for r in a], rel=1e-5)


def test_log_every_copies_losses_in_batches_with_the_same_numbers(tmp_path):
    _train(tmp_path / "every", "train.max_steps=5", "train.eval_every=0")
    _train(tmp_path / "third", "train.max_steps=5", "train.eval_every=0", "train.log_every=3")  # a window cut by the end
    every, third = _log(tmp_path / "every"), _log(tmp_path / "third")
    assert [r["step"] for r in third] == list(range(5))
    assert [r["loss"] for r in third] == [r["loss"] for r in every]
    assert [r["lr"] for r in third] == [r["lr"] for r in every]


def test_bad_training_settings_are_refused_before_anything_is_written(tmp_path):
    with pytest.raises(ConfigError, match="train.in_batch_positives.*sampler.n_negatives is 0"):
        _train(tmp_path / "a", "train.in_batch_positives=false", "sampler.n_negatives=0")
    with pytest.raises(ConfigError, match="train.log_every"):
        _train(tmp_path / "b", "train.log_every=0")
    with pytest.raises(ConfigError, match="train.dropout"):
        _train(tmp_path / "c", "train.dropout=1.5")
    assert not any(tmp_path.iterdir())


def test_one_language_validation_set_with_cross_batches(tmp_path, data_root):
    """MLQA-R with the paper's English held-out set: validation batches are monolingual even when
    training is cross-lingual with a few pairs (regression: this used to fail at start-up)."""
    summary, _ = _train(tmp_path, "data=mlqa_r", f"paths.data_root={data_root}", "sampler=cross", "sampler.n_pairs=3",
                        "train.max_steps=2", "train.eval_every=2", "train.batch_size=8")
    assert summary["steps"] == 2 and math.isfinite(summary["best_val_loss"])


def test_throughput_benchmark_smoke(tmp_path, monkeypatch):
    """``benchmarks/bench_train.py --smoke`` runs the throughput measurement at toy sizes on CPU; its FLOP
    count is the PaLM formula over the non-embedding parameters, checked here by hand for the toy model."""
    import sys

    from benchmarks import bench_train, train_throughput
    out = tmp_path / "rows.json"
    monkeypatch.setattr(sys, "argv", ["bench_train", "--smoke", "--json", str(out)])
    bench_train.main()
    rows = json.loads(out.read_text())
    assert [(r["batch"], r["grad_cache_chunk"]) for r in rows] == [(8, None), (16, 4)]
    assert all(r["examples_per_s"] > 0 and r["mfu"] is None for r in rows)  # no peak FLOP/s known for a CPU
    d, i, layers = 32, 64, 2  # the smoke size: per layer q, k, v, o (d x d + d), 2 layer norms, the MLP
    n = layers * (4 * (d * d + d) + 2 * 2 * d + (d * i + i) + (i * d + d))
    per_seq = lambda s: s * (6 * n + 12 * layers * d * s)  # noqa: E731
    model = train_throughput.build("smoke", "cpu")
    assert train_throughput.flops_per_example(model, 32, 128) == per_seq(32) + 2 * per_seq(128)


@pytest.mark.parametrize("override, message", [
    ("+train.learning_rate=1e-4", "error: train.learning_rate: unknown key (declared: "),
    ("+sampler.temprature=1", "error: sampler.temprature: unknown key (declared: ratio, n_pairs"),
    ("train.batch_size=abc", "error: train.batch_size: Value 'abc' of type 'str' could not be converted to Integer"),
    ("train.batch_size=1", "error: train.batch_size: must be >= 2"),
])
def test_cli_schema_errors_are_one_line_and_leave_no_output_dir(tmp_path, override, message):
    """``python -m hybrid_sweep.train`` validates through the typed schema (``config.load(cfg, "train")``)
    before anything is written: not even the output folder appears."""
    out = tmp_path / "new" / "run"
    res = subprocess.run([sys.executable, "-m", "hybrid_sweep.train", f"output_dir={out}", override],
                         capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert res.returncode == 2
    assert res.stderr.strip().splitlines() == [res.stderr.strip()] and res.stderr.startswith(message), res.stderr
    assert not (tmp_path / "new").exists()
