"""Training throughput and GradCache memory.

  --compare-st  our training step vs sentence-transformers' trainer with MultipleNegativesRankingLoss:
                same model (me5_small_q4, first 2 layers), same (query, positive, negative) triplets from
                our sampler (monolingual batches), same batch size, max length and optimiser (AdamW).
  --memory      peak resident memory of one training step: plain batch 64, plain batch 1024, GradCache
                batch 1024 (chunks of 64), each in a fresh subprocess.
  --throughput  GPU examples/s and model FLOP utilisation, XLM-R-base and mE5-small sizes (random init),
                batch 256 plain and 4,096 GradCache, bf16 (benchmarks/train_throughput.py).
  --smoke       the throughput measurement at toy sizes on CPU (seconds; run by the tests).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import torch

from benchmarks import train_throughput
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


def ours(steps: int, batch_size: int) -> float:
    cfg, enc, sampler = setup(batch_size)
    opt = torch.optim.AdamW(enc.model.parameters(), lr=1e-5, fused=True)  # as the trainer does
    enc.model.train()
    batches = [triplets(sampler.batch_at(i)) for i in range(steps + 1)]
    for i, (q, p, n) in enumerate(batches):
        if i == 1:
            start = time.perf_counter()
        plain_step(enc.forward, q, p, n, lambda a, b, c: info_nce(a, b, c, 0.05))
        opt.step()
        opt.zero_grad()
    return steps * batch_size / (time.perf_counter() - start)


def st_trainer(steps: int, batch_size: int, tmp: str) -> float:
    from datasets import Dataset
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
    from transformers import TrainerCallback

    cfg, enc, sampler = setup(batch_size)
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
        use_cpu=True, disable_tqdm=True, seed=0)
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
    ap.add_argument("--_peak", nargs=2, type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    quiet_libraries()
    if args._peak:
        print(json.dumps({"peak_mb": one_step_peak_mb(args._peak[0], args._peak[1] or None)}))
        return
    print(f"machine: {machine()}")
    if args.smoke or args.throughput:
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
    if args.compare_st:
        import tempfile
        a = ours(args.steps, args.batch_size)
        with tempfile.TemporaryDirectory() as tmp:
            b = st_trainer(args.steps, args.batch_size, tmp)
        print(f"throughput, batch {args.batch_size}, {args.steps} timed steps: ours {a:.1f} ex/s | "
              f"SentenceTransformerTrainer+MNRL {b:.1f} ex/s | ratio {a / b:.2f}x")
    if args.memory:
        for bs, chunk in ((64, 0), (1024, 0), (1024, 64)):
            out = subprocess.run([sys.executable, "-m", "benchmarks.bench_train", "--_peak", str(bs), str(chunk)],
                                 cwd=ROOT, capture_output=True, text=True, check=True)
            peak = json.loads(out.stdout.strip().splitlines()[-1])["peak_mb"]
            print(f"batch {bs:5d} {'GradCache chunk ' + str(chunk) if chunk else 'plain':>20}: step peak +{peak:,.0f} MB RSS")


if __name__ == "__main__":
    main()
