"""InfoNCE variants, GradCache parity (loss and gradients equal the plain path), and a 2-process gloo
run whose loss and gradients equal the single-process global batch."""

import os
import socket

import pytest
import torch
import torch.multiprocessing as mp
import torch.nn.functional as F

from hybrid_sweep.training import distributed
from hybrid_sweep.training.grad_cache import grad_cache_step, plain_step
from hybrid_sweep.training.loss import info_nce


class ToyEncoder(torch.nn.Module):
    """Bag of character embeddings -> linear -> L2 norm; 'query'/'passage' use different biases."""

    def __init__(self, dim=16, seed=0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.emb = torch.nn.Parameter(torch.randn(256, dim, generator=g) * 0.3)
        self.proj = torch.nn.Linear(dim, dim)
        self.kind_bias = torch.nn.Parameter(torch.randn(2, dim, generator=g) * 0.1)
        torch.nn.init.normal_(self.proj.weight, generator=g)
        torch.nn.init.normal_(self.proj.bias, generator=g)
        self.drop = torch.nn.Dropout(0.1)

    def forward(self, texts, kind):
        idx = [torch.tensor([ord(c) % 256 for c in t]) for t in texts]
        x = torch.stack([self.emb[i].mean(0) for i in idx])
        x = self.drop(self.proj(x)) + self.kind_bias[0 if kind == "query" else 1]
        return F.normalize(x, dim=-1)


def _batch(b=8, k=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    words = ["alpha", "beta", "gamma", "delta", "eps", "zeta", "eta", "theta", "iota", "kappa"]

    def text():
        return " ".join(words[i] for i in torch.randint(len(words), (4,), generator=g).tolist())
    return [text() for _ in range(b)], [text() for _ in range(b)], [text() for _ in range(b * k)]


def test_info_nce_by_hand():
    q = F.normalize(torch.randn(3, 4), dim=1)
    p = F.normalize(torch.randn(3, 4), dim=1)
    n = F.normalize(torch.randn(6, 4), dim=1)
    t = 0.1
    cands = torch.cat([p, n])
    manual = torch.stack([-torch.log_softmax(q[i] @ cands.T / t, 0)[i] for i in range(3)]).mean()
    torch.testing.assert_close(info_nce(q, p, n, t), manual)
    literal = torch.stack([-torch.log_softmax(torch.cat([q[i:i + 1] @ p[i:i + 1].T, q[i:i + 1] @ n.T], 1)[0] / t, 0)[0]
                           for i in range(3)]).mean()
    torch.testing.assert_close(info_nce(q, p, n, t, in_batch_positives=False), literal)
    back = torch.stack([-torch.log_softmax(p[i] @ q.T / t, 0)[i] for i in range(3)]).mean()
    torch.testing.assert_close(info_nce(q, p, n, t, symmetric=True), (manual + back) / 2)


@pytest.mark.parametrize("symmetric, in_batch", [(False, True), (True, True), (False, False)])
def test_grad_cache_equals_plain_loss_and_gradients(symmetric, in_batch):
    queries, positives, negatives = _batch(b=12, k=2)

    def loss_fn(q, p, n):
        return info_nce(q, p, n, 0.05, in_batch_positives=in_batch, symmetric=symmetric)

    results = []
    for cached in (False, True):
        model = ToyEncoder().eval()  # no dropout: the chunked and plain passes draw different masks
        if cached:
            loss = grad_cache_step(model, queries, positives, negatives, loss_fn, chunk_size=5, device=torch.device("cpu"))
        else:
            loss = plain_step(model, queries, positives, negatives, loss_fn)
        results.append((loss, {n: p.grad.clone() for n, p in model.named_parameters()}))
    (l0, g0), (l1, g1) = results
    torch.testing.assert_close(l1, l0, rtol=1e-5, atol=1e-6)
    for name in g0:
        torch.testing.assert_close(g1[name], g0[name], rtol=1e-4, atol=1e-6, msg=name)


def test_grad_cache_replays_dropout_masks():
    """With dropout on, the second pass must see the first pass's masks: gradients then equal a plain
    backward through the exact embeddings GradCache computed."""
    queries, positives, negatives = _batch(b=6, k=2, seed=3)
    model = ToyEncoder().train()
    torch.manual_seed(0)
    grad_cache_step(model, queries, positives, negatives, lambda q, p, n: info_nce(q, p, n), 6, torch.device("cpu"))
    cached = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()
    torch.manual_seed(0)  # chunk == whole group, so the plain pass consumes the RNG identically
    plain_step(model, queries, positives, negatives, lambda q, p, n: info_nce(q, p, n))
    for name, p in model.named_parameters():
        torch.testing.assert_close(cached[name], p.grad, rtol=1e-4, atol=1e-6, msg=name)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank, world, port, batch, out):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world))
    torch.distributed.init_process_group("gloo", rank=rank, world_size=world)
    queries, positives, negatives = batch
    b, k = len(queries) // world, len(negatives) // len(queries)
    mine = (queries[rank * b:(rank + 1) * b], positives[rank * b:(rank + 1) * b],
            negatives[rank * b * k:(rank + 1) * b * k])

    def loss_fn(q, p, n):
        return info_nce(q, p, n, 0.05, symmetric=True, offset=distributed.rank() * q.shape[0],
                        p_all=distributed.gather_with_grad(p), n_all=distributed.gather_with_grad(n),
                        q_all=distributed.gather_with_grad(q))

    model = ToyEncoder().eval()
    loss = grad_cache_step(model, *mine, loss_fn, chunk_size=3, device=torch.device("cpu"))
    distributed.average_gradients(model.parameters())
    out[rank] = (distributed.mean_scalar(loss.item()), {n: p.grad.clone() for n, p in model.named_parameters()})
    torch.distributed.destroy_process_group()


def test_two_process_gloo_matches_single_process_global_batch():
    # hard negatives must be laid out per owner: rank r holds the negatives of its own queries
    queries, positives, negatives = _batch(b=8, k=2, seed=5)
    with mp.Manager() as manager:
        out = manager.dict()
        mp.spawn(_worker, args=(2, _free_port(), (queries, positives, negatives), out), nprocs=2, join=True)
        results = dict(out)
    model = ToyEncoder().eval()
    ref_loss = plain_step(model, queries, positives, negatives, lambda q, p, n: info_nce(q, p, n, 0.05, symmetric=True))
    for rank in (0, 1):
        loss, grads = results[rank]
        assert loss == pytest.approx(ref_loss.item(), rel=1e-5)
        for name, p in model.named_parameters():
            torch.testing.assert_close(grads[name], p.grad, rtol=1e-4, atol=1e-6, msg=name)
