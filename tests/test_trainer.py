"""The training recipe on the synthetic data with the tiny encoder (a few seconds per run)."""

import json
import math
import os
import subprocess
import sys
import threading

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


@pytest.mark.parametrize("budget", [(), ("train.max_tokens=48",)], ids=["one_forward", "max_tokens"])
def test_resume_reproduces_the_uninterrupted_loss_curve(tmp_path, budget):
    _train(tmp_path / "straight", "train.max_steps=20", *budget)
    _train(tmp_path / "split", "train.max_steps=10", "train.schedule_steps=20", *budget)
    assert len(_log(tmp_path / "split")) == 10
    _train(tmp_path / "split", "train.max_steps=20", *budget)
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
    from hybrid_sweep.training import loss as losses
    calls = {"n": 0}
    real = losses.LOSSES["info_nce"]

    def flaky(*a, **k):
        calls["n"] += 1
        loss = real.fn(*a, **k)
        return loss * math.nan if calls["n"] == 3 else loss
    monkeypatch.setitem(losses.LOSSES, "info_nce", losses.LossEntry(flaky, real.options))
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


@pytest.mark.parametrize("extra", [(), ("train.grad_cache.enabled=true", "train.grad_cache.chunk_size=5")],
                         ids=["plain", "grad_cache"])
def test_max_tokens_through_the_trainer_equals_one_padded_forward(tmp_path, extra):
    """``train.max_tokens``: length-sorted sub-batches of at most 40 padded tokens (3 texts of the toy
    data's ~14 tokens), with the plain step and with GradCache: 4 steps and a validation give the loss
    curve of the single padded forward to rel 1e-5 and the final weights to abs 1e-5 (fp32 CPU, dropout
    off: other groupings draw other dropout masks)."""
    common = ("train.max_steps=4", "train.eval_every=2", "train.dropout=0", "train.bf16=false", *extra)
    _train(tmp_path / "one", *common)
    _train(tmp_path / "split", *common, "train.max_tokens=40")
    one, split = _log(tmp_path / "one"), _log(tmp_path / "split")
    assert [r["loss"] for r in split] == pytest.approx([r["loss"] for r in one], rel=1e-5)
    val = [[r["val_loss"] for r in log if "val_loss" in r] for log in (one, split)]
    assert len(val[0]) == 2 and val[1] == pytest.approx(val[0], rel=1e-5)
    a, b = _weights(tmp_path / "one"), _weights(tmp_path / "split")
    for name in a:
        torch.testing.assert_close(b[name], a[name], rtol=0, atol=1e-5, msg=name)


def test_training_batches_are_tokenised_in_the_prefetch_thread(tmp_path, monkeypatch):
    threads = []
    real = trainer.tokenize

    def spy(*a, **k):
        threads.append(threading.current_thread().name)
        return real(*a, **k)
    monkeypatch.setattr(trainer, "tokenize", spy)
    _train(tmp_path, "train.max_steps=3", "train.eval_every=0")
    assert len(threads) == 9 and set(threads) == {"batch-prefetch"}  # queries, positives, negatives per step


def _weights_init(folder):
    return load_file(str(next((folder / "init_model").rglob("model.safetensors"))))


def test_resume_drops_a_torn_log_line(tmp_path):
    _train(tmp_path, "train.max_steps=5", "train.schedule_steps=10", "train.eval_every=0")
    with open(tmp_path / "train_log.jsonl", "a") as f:
        f.write('{"step": 5, "loss": 1.2')  # killed mid-line
    _train(tmp_path, "train.max_steps=10", "train.eval_every=0")
    assert [r["step"] for r in _log(tmp_path)] == list(range(10))


def test_gradient_checkpointing_gives_the_same_gradients_and_later_losses(tmp_path):
    """Checkpointing recomputes activations (same dropout masks): it is on in the model, a layer's forward
    runs twice per pass (once more in the backward), and the first step's gradients and the losses of
    later steps, which depend on every earlier update, match the plain run."""
    grads, calls = [], []
    for name, extra in (("a", ()), ("b", ("train.gradient_checkpointing=true",))):
        cfg = compose(*FAST, "train.max_steps=4", "train.eval_every=0", *extra, config_name="train")
        recipe = trainer.Recipe(cfg, tmp_path / name).setup()
        auto = recipe.model[0].auto_model
        assert auto.is_gradient_checkpointing == (name == "b")
        seen = []
        # a module inside the first layer: transformers checkpoints the layer's forward, so hooks on the layer
        # itself stay outside the checkpoint, and its children run again in the backward
        hook = auto.encoder.layer[0].intermediate.register_forward_hook(lambda *_: seen.append(1))
        recipe.step(recipe.sampler.batch_at(0))
        hook.remove()
        calls.append(len(seen))
        grads.append({n: p.grad.clone() for n, p in recipe.model.named_parameters() if p.grad is not None})
        trainer.train(cfg, tmp_path / f"{name}-run")
    assert calls == [2, 4]  # queries and passages; with checkpointing each recomputed in the backward
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
    with pytest.raises(ConfigError, match="train.max_tokens"):
        _train(tmp_path / "d", "train.max_tokens=0")
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


def test_only_parameters_outside_the_loss_graph_are_frozen_so_ddp_needs_no_unused_search(tmp_path):
    """The BERT pooler (mean pooling never reads it) is the only parameter without a gradient: it is
    frozen, and DDP runs with ``find_unused_parameters=False`` (tests/test_distributed.py trains under it);
    the probe forward draws no dropout mask of the run (the resume and parity tests compare curves)."""
    recipe = trainer.Recipe(compose(*FAST, "train.max_steps=1", config_name="train"), tmp_path).setup()
    assert recipe.frozen and all(".pooler." in name for name in recipe.frozen)
    recipe.step(recipe.sampler.batch_at(0))
    trainable = [n for n, p in recipe.model.named_parameters() if p.requires_grad]
    assert len(trainable) > 10 and all(p.grad is not None for p in recipe.model.parameters() if p.requires_grad)


def test_compile_traces_the_forward_and_keeps_the_eager_loss_curve(tmp_path, monkeypatch):
    """``train.compile``: the transformer's forward under torch.compile (dynamic shapes, so sub-batches of
    several widths do not recompile every step) trains 3 steps to the eager loss curve and saves a model
    with the eager parameter names. Dynamo's graph capture runs with the ``eager`` backend here: inductor
    works on this CPU but its first step took 382 s on the shared 2-core machine (same losses)."""
    from torch._dynamo.utils import counters
    real = torch.compile
    monkeypatch.setattr(torch, "compile", lambda fn, **kw: real(fn, **kw, backend="eager"))
    common = ("train.max_steps=3", "train.eval_every=0", "train.dropout=0", "train.max_tokens=40")
    _train(tmp_path / "eager", *common)
    frames = counters["frames"]["ok"]
    _train(tmp_path / "compiled", *common, "train.compile=true")
    assert counters["frames"]["ok"] > frames  # dynamo captured the forward
    eager, compiled = _log(tmp_path / "eager"), _log(tmp_path / "compiled")
    assert [r["loss"] for r in compiled] == pytest.approx([r["loss"] for r in eager], rel=1e-5)
    assert _weights(tmp_path / "compiled").keys() == _weights(tmp_path / "eager").keys()


def test_the_loss_is_chosen_by_config_and_any_entry_works_with_grad_cache(tmp_path, monkeypatch):
    """``train.loss`` picks an entry of ``loss.LOSSES`` with its ``train.*`` options; a registered entry
    (here a plain cosine-margin loss reading ``train.temperature`` as its margin) trains through the plain
    step and through GradCache to the same curve; an unknown name is one ConfigError before anything runs."""
    from hybrid_sweep.training import loss as losses
    seen = []

    def margin(q, p, n, temperature, offset=0, p_all=None, q_all=None, n_all=None, exclude=None):
        seen.append(temperature)
        neg = (q @ n.T).max(1).values if n is not None else (q @ p.roll(1, 0).T).diagonal()
        return torch.relu(temperature - (q * p).sum(1) + neg).mean()
    from hybrid_sweep.config import stages
    monkeypatch.setitem(losses.LOSSES, "margin", losses.LossEntry(margin, ("temperature",)))
    monkeypatch.setattr(stages, "LOSS_NAMES", [*stages.LOSS_NAMES, "margin"])  # as register_loss does
    common = ("train.loss=margin", "train.temperature=0.3", "train.max_steps=3", "train.eval_every=0",
              "train.dropout=0")
    _train(tmp_path / "plain", *common)
    _train(tmp_path / "cached", *common, "train.grad_cache.enabled=true", "train.grad_cache.chunk_size=5")
    assert seen and set(seen) == {0.3}
    plain, cached = _log(tmp_path / "plain"), _log(tmp_path / "cached")
    assert [r["loss"] for r in cached] == pytest.approx([r["loss"] for r in plain], rel=1e-5)
    _train(tmp_path / "nce", *common[1:])  # the same run with the default loss
    assert [r["loss"] for r in plain] != pytest.approx([r["loss"] for r in _log(tmp_path / "nce")], rel=1e-3)
    with pytest.raises(ConfigError, match="train.loss: unknown loss 'bogus'; one of info_nce, margin"):
        _train(tmp_path / "bad", "train.loss=bogus")
    assert not (tmp_path / "bad").exists()


def test_real_text_benchmark_smoke(tmp_path, monkeypatch):
    """``benchmarks/bench_train.py --real-text --smoke``: the before / after comparison (one padded forward
    vs ``train.max_tokens``) at toy size: fewer padded tokens processed, the same loss curve."""
    from benchmarks import bench_train
    out = tmp_path / "rows.json"
    monkeypatch.setattr(sys, "argv", ["bench_train", "--real-text", "--smoke", "--json", str(out)])
    bench_train.main()
    (row,) = json.loads(out.read_text())
    assert row["batch"] == 8 and row["before_ex_s"] > 0 and row["after_ex_s"] > 0
    assert row["after_padding"] < row["before_padding"]
    assert row["loss_curve_max_rel_diff"] < 1e-5 and len(row["losses_after"]) == 3
