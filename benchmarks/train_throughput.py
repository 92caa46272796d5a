"""Training-step throughput and model FLOP utilisation (MFU), used by ``bench_train --throughput``.

Models are random-initialised at the published sizes (no download): XLM-R base (12 x 768, vocabulary
250,002) and multilingual-E5-small (12 x 384, vocabulary 250,037). Inputs are random token ids with fixed
lengths (queries 32, passages 128 tokens; one hard negative per example), so the FLOP count is exact.
Each step is the trainer's own ``contrastive_step`` (plain, or GradCache with ``chunk`` texts per
forward) with InfoNCE, bf16 autocast, gradient clipping and fused AdamW.

Model FLOPs per example (PaLM appendix B): for each sequence of ``s`` tokens, ``s * (6 N + 12 L d s)``
with ``N`` the non-embedding parameters, ``L`` layers, ``d`` width; GradCache's extra forward is not
counted (it is recomputation), so its MFU shows what the memory saving costs.
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F

from hybrid_sweep.training.grad_cache import contrastive_step
from hybrid_sweep.training.loss import info_nce

SIZES = {
    "xlmr-base": ("xlm-roberta", dict(vocab_size=250002, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                                      intermediate_size=3072, max_position_embeddings=514)),
    "me5-small": ("bert", dict(vocab_size=250037, hidden_size=384, num_hidden_layers=12, num_attention_heads=12,
                               intermediate_size=1536, max_position_embeddings=512)),
    "smoke": ("bert", dict(vocab_size=1000, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                           intermediate_size=64, max_position_embeddings=512)),
}
PEAK_BF16 = {"H100 PCIe": 756e12, "H100": 989e12, "H200": 989e12, "A100": 312e12}  # dense, vendor sheets


def peak_flops(name: str) -> float | None:
    return next((v for k, v in PEAK_BF16.items() if k in name), None)


def build(size: str, device: str) -> torch.nn.Module:
    from transformers import AutoConfig, AutoModel
    kind, dims = SIZES[size]
    torch.manual_seed(0)
    cfg = AutoConfig.for_model(kind, **dims)
    return AutoModel.from_config(cfg, add_pooling_layer=False).to(device)


class TokenBank:
    """Random token ids; a 'text' is a row number, so the trainer's step runs unchanged."""

    def __init__(self, model, rows: int, q_len: int, p_len: int, device: str):
        vocab = model.config.vocab_size
        g = torch.Generator().manual_seed(1)
        self.model = model
        self.ids = {"query": torch.randint(5, vocab, (rows, q_len), generator=g).to(device),
                    "passage": torch.randint(5, vocab, (2 * rows, p_len), generator=g).to(device)}

    def __call__(self, rows: list[int], kind: str) -> torch.Tensor:
        h = self.model(input_ids=self.ids[kind][rows]).last_hidden_state
        return F.normalize(h.mean(1), dim=-1)


def flops_per_example(model, q_len: int, p_len: int) -> float:
    cfg = model.config
    n = sum(p.numel() for name, p in model.named_parameters() if "embeddings" not in name)
    per_seq = lambda s: s * (6 * n + 12 * cfg.num_hidden_layers * cfg.hidden_size * s)  # noqa: E731
    return per_seq(q_len) + 2 * per_seq(p_len)


def measure(size: str, batch: int, chunk: int | None, steps: int = 5, warmup: int = 2, device: str = "cuda",
            bf16: bool = True, q_len: int = 32, p_len: int = 128) -> dict:
    model = build(size, device).train()
    bank = TokenBank(model, batch * (steps + warmup), q_len, p_len, device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5, fused=device == "cuda")
    cuda = device.startswith("cuda")
    if cuda:
        torch.cuda.reset_peak_memory_stats()

    def sync():
        if cuda:
            torch.cuda.synchronize()
    for i in range(warmup + steps):
        if i == warmup:
            sync()
            start = time.perf_counter()
        rows = list(range(i * batch, (i + 1) * batch))
        negs = [batch * (warmup + steps) + r for r in rows]
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda and bf16):
            contrastive_step(bank, rows, rows, negs, lambda q, p, n: info_nce(q, p, n, 0.05), chunk,
                             torch.device(device))
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
    sync()
    wall = time.perf_counter() - start
    ex_s = steps * batch / wall
    name = torch.cuda.get_device_name() if cuda else "cpu"
    peak = peak_flops(name)
    flops = flops_per_example(model, q_len, p_len) * ex_s
    return {"model": size, "batch": batch, "grad_cache_chunk": chunk, "bf16": bf16 and cuda, "device": name,
            "examples_per_s": ex_s, "step_s": wall / steps, "model_tflops": flops / 1e12,
            "mfu": flops / peak if peak else None,
            "peak_mem_gb": torch.cuda.max_memory_allocated() / 2**30 if cuda else None}


def table(rows: list[dict]) -> str:
    out = ["| model | batch | GradCache chunk | examples/s | step (s) | model TFLOP/s | MFU | peak memory (GiB) |",
           "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        mfu = f"{100 * r['mfu']:.1f} %" if r["mfu"] is not None else "n/a"
        mem = f"{r['peak_mem_gb']:.1f}" if r["peak_mem_gb"] is not None else "n/a"
        out.append(f"| {r['model']} | {r['batch']} | {r['grad_cache_chunk'] or '-'} | {r['examples_per_s']:,.0f} | "
                   f"{r['step_s']:.3f} | {r['model_tflops']:.1f} | {mfu} | {mem} |")
    return "\n".join(out)
