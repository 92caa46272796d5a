"""Continued MLM step time: the model's own forward (the head projects every position) vs
``masked_positions_loss`` (the head projects the masked positions only), same batches, same model.

  python -m benchmarks.bench_pretrain [--batch 32] [--max-length 64] [--layers 4] [--steps 3]
      me5_small_q4 (250k-token vocabulary) on FLORES-200 train sentences of the RQ4 preset's languages
  --smoke   the tiny encoder on synthetic sentences (seconds; run by the tests)
Prints one row per path (best step time of --steps, after one warm-up step) and the loss difference
of the first batch, which the two paths compute from the same weights and masks.
"""

from __future__ import annotations

import time

import torch
from transformers import DataCollatorForLanguageModeling

from benchmarks.common import compose, machine, parser
from hybrid_sweep.config import load
from hybrid_sweep.data.corpus_loading import load_training_data, vocabulary_texts
from hybrid_sweep.encoders import build_encoder
from hybrid_sweep.training.pretrain import _texts, masked_lm, masked_positions_loss, pretrain_languages


def setup(smoke: bool, layers: int, tmp: str):
    overrides = (["pretrain=mlm", "pretrain.n_low_resource=2"] if smoke else
                 ["+sweep=low_resource_pretrain_flores", "pretrain.n_low_resource=4", f"encoder.layers={layers}"])
    cfg = load(compose(*overrides))
    corpora, _, _ = load_training_data(cfg)
    encoder = build_encoder(cfg.encoder, vocabulary_texts(cfg, corpora), f"{tmp}/init")
    texts = [t for ts in _texts(cfg, corpora, pretrain_languages(cfg.pretrain)).values() for t in ts]
    return encoder, texts


def step_times(mlm, batches, fast: bool, steps: int) -> tuple[list[float], float]:
    optimizer = torch.optim.AdamW(mlm.parameters(), lr=1e-5)
    times, first = [], None
    for ids, labels, mask in batches[: steps + 1]:
        start = time.perf_counter()
        loss = (masked_positions_loss(mlm, ids, labels, mask) if fast else
                mlm(input_ids=ids, labels=labels, attention_mask=mask).loss)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - start)
        first = loss.item() if first is None else first
    return times[1:], first  # the first step warms up (allocations, optimizer state)


def main(argv=None) -> dict:
    ap = parser(__doc__)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--max-length", type=int, default=64)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--steps", type=int, default=3)
    args = ap.parse_args(argv)
    batch, steps = (8, 1) if args.smoke else (args.batch, args.steps)
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        encoder, texts = setup(args.smoke, args.layers, tmp)
        tokenizer = encoder.model[0].tokenizer
        mlm, head = masked_lm(encoder.model[0].auto_model)
        mlm.train()
        torch.manual_seed(0)
        collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=0.15)
        batches = []
        for i in range(steps + 1):
            enc = tokenizer(texts[i * batch:(i + 1) * batch], truncation=True, max_length=args.max_length)
            b = collator([{"input_ids": x} for x in enc["input_ids"]])
            batches.append((b["input_ids"], b["labels"], (b["input_ids"] != tokenizer.pad_token_id).long()))
        state = {k: v.clone() for k, v in mlm.state_dict().items()}
        torch.manual_seed(1)
        full, loss_full = step_times(mlm, batches, False, steps)
        mlm.load_state_dict(state)
        torch.manual_seed(1)
        fast, loss_fast = step_times(mlm, batches, True, steps)
    vocab = mlm.get_output_embeddings().weight.shape[0]
    out = {"batch": batch, "tokens": int(batches[0][0].numel()), "vocab": vocab, "full_s": min(full),
           "masked_s": min(fast), "speedup": min(full) / min(fast), "loss_diff": abs(loss_full - loss_fast),
           "machine": machine()}
    print(f"{machine()}\nbatch {batch} x {batches[0][0].shape[1]} tokens, vocabulary {vocab}: full head "
          f"{out['full_s']:.2f} s/step, masked positions {out['masked_s']:.2f} s/step ({out['speedup']:.2f}x); "
          f"first-batch loss difference {out['loss_diff']:.2e}")
    return out


if __name__ == "__main__":
    main()
