"""InfoNCE variants, false-negative masking, GradCache parity (loss and gradients equal the plain path),
and a 2-process gloo run under DDP (bucketed all-reduce, ``no_sync`` for GradCache's extra backward
passes) whose loss and gradients equal the single-process global batch."""

import os

import pytest
import torch
import torch.multiprocessing as mp
import torch.nn.functional as F

from hybrid_sweep.training import distributed
from hybrid_sweep.errors import ConfigError
from hybrid_sweep.training.grad_cache import contrastive_step, grad_cache_step, plain_step
from hybrid_sweep.training.loss import false_negative_mask, info_nce
from tests.conftest import free_port


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


def _worker(rank, world, port, batch, out, chunk):
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
    ddp = distributed.wrap(model, torch.device("cpu"))
    loss = contrastive_step(ddp, *mine, loss_fn, chunk, torch.device("cpu"), distributed.no_sync(ddp))
    out[rank] = (distributed.mean(loss).item(), {n: p.grad.clone() for n, p in model.named_parameters()})
    torch.distributed.destroy_process_group()


@pytest.mark.parametrize("chunk", [None, 3])
def test_two_process_gloo_matches_single_process_global_batch(chunk):
    # hard negatives must be laid out per owner: rank r holds the negatives of its own queries
    queries, positives, negatives = _batch(b=8, k=2, seed=5)
    with mp.Manager() as manager:
        out = manager.dict()
        mp.spawn(_worker, args=(2, free_port(), (queries, positives, negatives), out, chunk), nprocs=2, join=True)
        results = dict(out)
    model = ToyEncoder().eval()
    ref_loss = plain_step(model, queries, positives, negatives, lambda q, p, n: info_nce(q, p, n, 0.05, symmetric=True))
    for rank in (0, 1):
        loss, grads = results[rank]
        assert loss == pytest.approx(ref_loss.item(), rel=1e-5)
        for name, p in model.named_parameters():
            torch.testing.assert_close(grads[name], p.grad, rtol=1e-4, atol=1e-6, msg=name)


def test_false_negative_mask_marks_a_rows_positive_text_elsewhere():
    # row 0's paragraph reappears as row 1's hard negative (candidate 2 + 1 = 3) and as row 1's positive text
    # is unique; row 1's own positive column (1) is never masked even though its text repeats nowhere
    positives = ["para A", "para B"]
    candidates = positives + ["para C", "para A"]
    mask = false_negative_mask(positives, candidates)
    assert mask.tolist() == [[False, False, False, True], [False, False, False, False]]
    assert false_negative_mask(["x", "y"], ["x", "y", "z", "w"]) is None
    # rank 1 of 2: its rows are global rows 2 and 3; identical positives mask each other, not themselves
    shard = false_negative_mask(["p", "p"], ["q", "r", "p", "p"], offset=2)
    assert shard.tolist() == [[False, False, False, True], [False, False, True, False]]


def test_masked_false_negative_leaves_the_rows_softmax():
    """A duplicate of row 0's positive among the candidates: masked, the loss equals the loss without
    that candidate at all (computed by hand); unmasked, it counts as a negative and the loss is higher."""
    torch.manual_seed(0)
    q, p = F.normalize(torch.randn(3, 8), dim=1), F.normalize(torch.randn(3, 8), dim=1)
    n = torch.cat([F.normalize(torch.randn(2, 8), dim=1), p[:1]])  # the last hard negative is row 0's paragraph
    mask = false_negative_mask(["a", "b", "c"], ["a", "b", "c", "n1", "n2", "a"])
    t = 0.05
    cands = torch.cat([p, n])
    keep = [list(range(6)) if i else list(range(5)) for i in range(3)]
    manual = torch.stack([-torch.log_softmax(q[i] @ cands[keep[i]].T / t, 0)[i] for i in range(3)]).mean()
    masked = info_nce(q, p, n, t, exclude=mask)
    torch.testing.assert_close(masked, manual)
    assert info_nce(q, p, n, t) > masked
    # symmetric: the back direction drops query j for passage i when j's positive is i's paragraph
    sym = info_nce(q, p, n, t, symmetric=True, exclude=false_negative_mask(["a", "a", "c"], ["a", "a", "c", "x", "y", "z"]))
    fwd = torch.stack([-torch.log_softmax((q[i] @ cands.T / t).masked_fill(
        torch.tensor([j == 1 - i and i < 2 for j in range(6)]), float("-inf")), 0)[i] for i in range(3)]).mean()
    back = torch.stack([-torch.log_softmax((p[i] @ q.T / t).masked_fill(
        torch.tensor([j == 1 - i and i < 2 for j in range(3)]), float("-inf")), 0)[i] for i in range(3)]).mean()
    torch.testing.assert_close(sym, (fwd + back) / 2)


def test_no_in_batch_positives_without_negatives_is_refused():
    q = p = F.normalize(torch.randn(4, 8), dim=1)
    with pytest.raises(ConfigError, match="train.in_batch_positives.*hard negatives"):
        info_nce(q, p, None, in_batch_positives=False)
    with pytest.raises(ConfigError, match="train.in_batch_positives.*hard negatives"):
        info_nce(q, p, torch.empty(0, 8), in_batch_positives=False)
