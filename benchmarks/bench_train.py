"""Training throughput and GradCache memory.

  --compare-st  our training step vs sentence-transformers' trainer with MultipleNegativesRankingLoss:
                same model (me5_small_q4, first 2 layers), same (query, positive, negative) triplets from
                our sampler (monolingual batches), same batch size, max length, optimiser (AdamW) and
                gradient clipping (norm 1.0 on both sides). Ours is the trainer's own step + update.
                With --real-text: the MLQA-R rows and 4 layers of the real-data presets, batch 24 and 128.
  --real-text   training examples/s on MLQA-R rows, one padded forward vs length-sorted micro-batches
                (train.max_tokens), side by side in one process (benchmarks/train_real_text.py).
  --memory      peak resident memory of one training step: plain batch 64, plain batch 1024, GradCache
                batch 1024 (chunks of 64), each in a fresh subprocess.
  --throughput  GPU examples/s and model FLOP utilisation, XLM-R-base and mE5-small sizes (random init),
                batch 256 plain and 4,096 GradCache, bf16 (benchmarks/train_throughput.py).
  --smoke       the throughput measurement at toy sizes on CPU (seconds; run by the tests).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch

from benchmarks import train_real_text, train_throughput
from benchmarks.common import ROOT, machine
from hybrid_sweep.cli import quiet_libraries
from hybrid_sweep.data.corpus_loading import load_training_data
from hybrid_sweep.encoders import build_encoder
from hybrid_sweep.training.grad_cache import grad_cache_step, plain_step
from hybrid_sweep.training.loss import info_nce
from hybrid_sweep.sampling.configured import sampler_from_config
from tests.conftest import compose


def setup(batch_size: int, max_length: int = 64):
    cfg = compose("encoder=me5_small_q4", "encoder.layers=2", f"encoder.max_length={max_length}", "encoder.device=cpu",
                  "encoder.progress=false", "sampler=mono", f"train.batch_size={batch_size}",
                  "synthetic.articles.train=120", "data.languages=[qla,qca]",  # 1,440 groups each: room for
                  config_name="train")                                          # a batch of 1,024
    corpora, _, langs = load_training_data(cfg)
    return cfg, build_encoder(cfg.encoder), sampler_from_config(cfg, corpora, langs, 0)


def triplets(batch):
    return [it.query for it in batch.items], [it.positive for it in batch.items], [it.negatives[0] for it in batch.items]


SYNTHETIC = ("encoder=me5_small_q4", "encoder.layers=2", "encoder.max_length=64", "sampler=mono",
             "synthetic.articles.train=120", "data.languages=[qla,qca]")


def ours(overrides: tuple, steps: int, batch_size: int, max_tokens: int | None, tmp: str) -> float:
    """The trainer's step + update (forward, backward, clipping at 1.0, fused AdamW, schedule); batches
    tokenised before the clock as the prefetch thread does."""
    r = train_real_text.recipe(overrides, batch_size, steps + 1, max_tokens, Path(tmp) / f"ours{max_tokens}")
    batches = [r.prepare(r.sampler.batch_at(i)) for i in range(steps + 1)]
    for i, prepared in enumerate(batches):
        if i == 1:
            start = time.perf_counter()
        r.step(prepared)
        r.update()
    return steps * batch_size / (time.perf_counter() - start)


def st_trainer(overrides: tuple, steps: int, batch_size: int, tmp: str) -> float:
    from datasets import Dataset
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
    from transformers import TrainerCallback

    r = train_real_text.recipe(overrides, batch_size, steps + 1, None, Path(tmp) / "st_setup")
    enc, sampler = r.encoder, r.sampler
    rows = {"anchor": [], "positive": [], "negative": []}
    for i in range(steps + 1):
        q, p, n = triplets(sampler.batch_at(i))
        rows["anchor"] += [enc.prefixes["query"] + x for x in q]
        rows["positive"] += [enc.prefixes["passage"] + x for x in p]
        rows["negative"] += [enc.prefixes["passage"] + x for x in n]
    times = []

    class Clock(TrainerCallback):
        def on_step_begin(self, *a, **k):
            times.append(time.perf_counter())

        def on_train_end(self, *a, **k):
            times.append(time.perf_counter())

    args = SentenceTransformerTrainingArguments(
        output_dir=tmp, per_device_train_batch_size=batch_size, max_steps=steps + 1, learning_rate=1e-5,
        warmup_steps=0, logging_steps=10**6, save_strategy="no", report_to=[], dataloader_drop_last=True,
        use_cpu=True, disable_tqdm=True, seed=0, max_grad_norm=1.0, optim="adamw_torch_fused")
    trainer = SentenceTransformerTrainer(model=enc.model, args=args, train_dataset=Dataset.from_dict(rows),
                                         loss=MultipleNegativesRankingLoss(enc.model, scale=20.0), callbacks=[Clock()])
    trainer.train()
    return steps * batch_size / (times[-1] - times[1])


def one_step_peak_mb(batch_size: int, chunk: int | None) -> float:
    cfg, enc, sampler = setup(batch_size)
    q, p, n = triplets(sampler.batch_at(0))
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    loss_fn = lambda a, b, c: info_nce(a, b, c, 0.05)  # noqa: E731
    enc.model.train()
    if chunk:
        grad_cache_step(enc.forward, q, p, n, loss_fn, chunk, torch.device("cpu"))
    else:
        plain_step(enc.forward, q, p, n, loss_fn)
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - base


def real_text(args) -> None:
    """--real-text: before / after rows (``--smoke``: tiny encoder, synthetic rows, batch 8)."""
    if args.smoke:
        rows = [train_real_text.compare(train_real_text.SMOKE, 8, 32, steps=2)]
    else:
        rows = [train_real_text.compare(train_real_text.real_overrides(), b, args.max_tokens, args.steps)
                for b in (int(x) for x in args.batches.split(","))]
    print(train_real_text.table(rows))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--compare-st", action="store_true")
    ap.add_argument("--memory", action="store_true")
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--throughput", action="store_true")
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--chunk", type=int, default=512, help="GradCache texts per forward (--throughput)")
    ap.add_argument("--json", help="also write the throughput rows to this file")
    ap.add_argument("--real-text", action="store_true")
    ap.add_argument("--batches", default="24,128", help="--real-text / --compare-st --real-text batch sizes")
    ap.add_argument("--max-tokens", type=int, default=1024, help="--real-text: train.max_tokens of 'after'")
    ap.add_argument("--_peak", nargs=2, type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    quiet_libraries()
    if args._peak:
        print(json.dumps({"peak_mb": one_step_peak_mb(args._peak[0], args._peak[1] or None)}))
        return
    print(f"machine: {machine()}")
    if (args.smoke and not args.real_text) or args.throughput:
        if args.smoke:
            toy = dict(steps=1, warmup=1, device="cpu", q_len=8, p_len=16)
            rows = [train_throughput.measure("smoke", 8, None, **toy), train_throughput.measure("smoke", 16, 4, **toy)]
        else:
            if not torch.cuda.is_available():
                raise SystemExit("--throughput needs a CUDA device (use --smoke on CPU)")
            print(f"device: {torch.cuda.get_device_name()}, torch {torch.__version__}, CUDA {torch.version.cuda}")
            rows = [train_throughput.measure(size, batch, chunk)
                    for size in ("me5-small", "xlmr-base") for batch, chunk in ((256, None), (4096, args.chunk))]
        print(train_throughput.table(rows))
        if args.json:
            with open(args.json, "w") as f:
                json.dump(rows, f, indent=2)
    if args.real_text and not args.compare_st:
        real_text(args)
    if args.compare_st:
        import tempfile
        overrides = train_real_text.real_overrides() if args.real_text else SYNTHETIC
        batches = [int(b) for b in args.batches.split(",")] if args.real_text else [args.batch_size]
        for batch in batches:
            with tempfile.TemporaryDirectory() as tmp:
                b = st_trainer(overrides, args.steps, batch, tmp)
                a = ours(overrides, args.steps, batch, None, tmp)
                c = ours(overrides, args.steps, batch, args.max_tokens, tmp)
            print(f"throughput, batch {batch}, {args.steps} timed steps, load {os.getloadavg()[0]:.2f}: "
                  f"SentenceTransformerTrainer+MNRL {b:.1f} ex/s | ours {a:.1f} ex/s ({a / b:.2f}x) | "
                  f"ours max_tokens={args.max_tokens} {c:.1f} ex/s ({c / b:.2f}x)")
    if args.memory:
        for bs, chunk in ((64, 0), (1024, 0), (1024, 64)):
            out = subprocess.run([sys.executable, "-m", "benchmarks.bench_train", "--_peak", str(bs), str(chunk)],
                                 cwd=ROOT, capture_output=True, text=True, check=True)
            peak = json.loads(out.stdout.strip().splitlines()[-1])["peak_mb"]
            print(f"batch {bs:5d} {'GradCache chunk ' + str(chunk) if chunk else 'plain':>20}: step peak +{peak:,.0f} MB RSS")


if __name__ == "__main__":
    main()
