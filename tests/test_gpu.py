"""Checks that need CUDA (marker ``gpu``; skipped without a working GPU): bf16 against fp32, GradCache
against the plain step, NCCL collectives at world size 1 through the trainer, and exact resume on CUDA.

Tolerances, stated once: bf16 autocast keeps 8 bits of mantissa (relative rounding 2^-8 = 0.4 %), so
the bf16 loss must be within 2 % of fp32 and every parameter's bf16 gradient within a cosine of 0.99 and
a norm ratio of 1 +/- 5 % of the fp32 one (parameters whose fp32 gradient is below 1e-3 of the largest
are skipped: the attention key biases, to which softmax is invariant, have a gradient of pure rounding noise). GradCache in fp32 must equal the plain step like on CPU
(loss rel 1e-5, gradients rel 1e-4 / abs 1e-6; TF32 is switched off for it).
"""

import json
import os

os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # deterministic cuBLAS for the exact-resume check

import pytest
import torch
import torch.nn.functional as F

from hybrid_sweep.training import distributed, trainer
from hybrid_sweep.training.grad_cache import contrastive_step
from hybrid_sweep.training.loss import info_nce
from tests.conftest import compose, free_port, train_log

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a working CUDA device")]
FAST = ("encoder.progress=false", "encoder.device=cuda", "train.batch_size=16", "train.eval_every=5",
        "train.save_every=5", "train.val_batches=1", "encoder.tiny.hidden=32", "encoder.tiny.intermediate=64")


class TokenEncoder(torch.nn.Module):
    """A 2-layer BERT over word-hash token ids, mean-pooled and L2-normalised (texts -> embeddings)."""

    def __init__(self, dropout=0.0):
        super().__init__()
        from transformers import BertConfig, BertModel
        torch.manual_seed(0)
        self.bert = BertModel(BertConfig(vocab_size=512, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                                         intermediate_size=128, hidden_dropout_prob=dropout,
                                         attention_probs_dropout_prob=dropout), add_pooling_layer=False).cuda()

    def forward(self, texts, kind):
        ids = [[(hash(w) % 500) + (0 if kind == "query" else 10) for w in t.split()] for t in texts]
        width = max(map(len, ids))
        x = torch.tensor([i + [0] * (width - len(i)) for i in ids], device="cuda")
        mask = (x != 0).long()
        h = self.bert(input_ids=x, attention_mask=mask).last_hidden_state
        return F.normalize((h * mask[..., None]).sum(1) / mask.sum(1, keepdim=True), dim=-1)


def _texts(n, k=1, seed=0):
    g = torch.Generator().manual_seed(seed)
    words = [f"w{i}" for i in range(300)]

    def text():
        return " ".join(words[i] for i in torch.randint(len(words), (int(torch.randint(4, 12, (1,), generator=g)),),
                                                        generator=g).tolist())
    return [text() for _ in range(n)], [text() for _ in range(n)], [text() for _ in range(n * k)]


def _step(model, batch, bf16, chunk=None):
    model.zero_grad()
    with torch.autocast("cuda", dtype=torch.bfloat16, enabled=bf16):
        loss = contrastive_step(model, *batch, lambda q, p, n: info_nce(q, p, n, 0.05), chunk, torch.device("cuda"))
    return loss.item(), {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}


def test_bf16_loss_and_gradients_track_fp32():
    model, batch = TokenEncoder().eval(), _texts(64, 1)
    l32, g32 = _step(model, batch, bf16=False)
    l16, g16 = _step(model, batch, bf16=True)
    assert l16 == pytest.approx(l32, rel=0.02)
    largest = max(g.norm().item() for g in g32.values())
    for name, ref in g32.items():
        if ref.norm().item() < 1e-3 * largest:  # e.g. attention key biases: softmax-invariant, gradient ~ 0 + noise
            continue
        got = g16[name].float()
        cos = F.cosine_similarity(got.flatten(), ref.flatten(), dim=0).item()
        assert cos > 0.99, (name, cos)
        assert got.norm().item() == pytest.approx(ref.norm().item(), rel=0.05), name


def test_info_nce_is_fp32_under_autocast():
    q, p = (F.normalize(torch.randn(8, 16, device="cuda"), dim=-1).bfloat16() for _ in range(2))
    with torch.autocast("cuda", dtype=torch.bfloat16):
        loss = info_nce(q, p, None)
    assert loss.dtype == torch.float32
    torch.testing.assert_close(loss, info_nce(q.float(), p.float(), None))


@pytest.mark.parametrize("dropout", [0.0, 0.1])
def test_grad_cache_equals_plain_step_on_cuda(dropout, monkeypatch):
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    batch = _texts(24, 2, seed=1)
    model = TokenEncoder(dropout).train(dropout > 0)
    # with dropout, one chunk per group (72 passages): the plain pass then draws the same masks (on CUDA a
    # chunked draw is not a prefix of the whole one, unlike on CPU)
    chunk = 72 if dropout else 7
    torch.manual_seed(5)
    lc, gc = _step(model, batch, bf16=False, chunk=chunk)
    torch.manual_seed(5)
    lp, gp = _step(model, batch, bf16=False)
    assert lc == pytest.approx(lp, rel=1e-5)
    for name in gp:
        torch.testing.assert_close(gc[name], gp[name], rtol=1e-4, atol=1e-6, msg=name)


@pytest.fixture
def deterministic():
    torch.use_deterministic_algorithms(True)
    yield
    torch.use_deterministic_algorithms(False)


def test_nccl_world_one_trains_like_no_process_group(tmp_path, monkeypatch, deterministic):
    """A one-rank NCCL group drives DDP, the loss gather and the device-side means; every tensor handed
    to a collective is on the GPU, and the loss curve equals a run without a process group."""
    plain = trainer.train(compose(*FAST, "train.max_steps=6", config_name="train"), tmp_path / "plain")
    seen = []
    real = torch.distributed.all_reduce

    def checked(t, *a, **k):
        seen.append(t.device.type)
        return real(t, *a, **k)
    monkeypatch.setattr(torch.distributed, "all_reduce", checked)
    monkeypatch.setenv("LOCAL_RANK", "0")
    torch.distributed.init_process_group("nccl", init_method=f"tcp://127.0.0.1:{free_port()}", rank=0, world_size=1)
    try:
        assert distributed.active() and distributed.training_device("cuda") == "cuda:0"
        ddp = trainer.train(compose(*FAST, "train.max_steps=6", config_name="train"), tmp_path / "ddp")
    finally:
        torch.distributed.destroy_process_group()
    assert seen and set(seen) == {"cuda"}
    assert [r["loss"] for r in train_log(tmp_path / "ddp")] == pytest.approx([r["loss"] for r in train_log(tmp_path / "plain")],
                                                                       rel=1e-5)
    assert ddp["best_val_loss"] == pytest.approx(plain["best_val_loss"], rel=1e-5)


@pytest.mark.parametrize("extra", [(), ("train.grad_cache.enabled=true", "train.grad_cache.chunk_size=5")])
def test_cuda_run_resumes_exactly(tmp_path, extra, deterministic):
    trainer.train(compose(*FAST, *extra, "train.max_steps=12", config_name="train"), tmp_path / "straight")
    trainer.train(compose(*FAST, *extra, "train.max_steps=6", "train.schedule_steps=12", config_name="train"),
                  tmp_path / "split")
    trainer.train(compose(*FAST, *extra, "train.max_steps=12", config_name="train"), tmp_path / "split")
    straight, split = train_log(tmp_path / "straight"), train_log(tmp_path / "split")
    assert [r["step"] for r in split] == list(range(12))
    assert [r["loss"] for r in split] == [r["loss"] for r in straight]


def test_continued_pretraining_runs_on_cuda(tmp_path):
    from hybrid_sweep.training.pretrain import continued_mlm
    cfg = compose("pretrain=mlm", "pretrain.max_steps=3", "pretrain.batch_size=8", *FAST[:2], config_name="config")
    torch.cuda.reset_peak_memory_stats()
    continued_mlm(cfg, tmp_path)
    losses = [json.loads(line)["loss"] for line in (tmp_path / "pretrain_log.jsonl").read_text().splitlines()]
    assert len(losses) == 3 and all(map(torch.isfinite, torch.tensor(losses)))
    assert torch.cuda.max_memory_allocated() > 0  # the MLM's weights, batches and optimizer state lived on the GPU


def test_deterministic_key_gives_exact_resume_on_cuda(tmp_path):
    """``train.deterministic=true`` does what the ``deterministic`` fixture does, from the config."""
    assert not torch.are_deterministic_algorithms_enabled()
    det = (*FAST, "train.deterministic=true")
    trainer.train(compose(*det, "train.max_steps=12", config_name="train"), tmp_path / "straight")
    trainer.train(compose(*det, "train.max_steps=6", "train.schedule_steps=12", config_name="train"), tmp_path / "split")
    trainer.train(compose(*det, "train.max_steps=12", config_name="train"), tmp_path / "split")
    assert [r["loss"] for r in train_log(tmp_path / "split")] == [r["loss"] for r in train_log(tmp_path / "straight")]
    assert not torch.are_deterministic_algorithms_enabled()
