"""Length-aware micro-batches (``train.max_tokens``): the plan, the token batches, and parity with the single
padded forward: embeddings, loss and gradients (fp32 on CPU, dropout off; tolerances per test: the only
difference is where padding sits, so sums differ in the last bits)."""

import pytest
import torch

from hybrid_sweep.training import trainer
from hybrid_sweep.training.grad_cache import grad_cache_step, plain_step
from hybrid_sweep.training.loss import info_nce
from hybrid_sweep.training.microbatch import embed_planned, padding_share, plan, plan_for, take, tokenize
from tests.conftest import compose

TINY = ("encoder.progress=false", "train.batch_size=8", "train.eval_every=0", "train.max_steps=1",
        "encoder.tiny.hidden=32", "encoder.tiny.intermediate=64", "train.dropout=0")
WORDS = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda".split()


def _texts(n, seed):
    g = torch.Generator().manual_seed(seed)
    return [" ".join(WORDS[i] for i in torch.randint(len(WORDS), (int(k),), generator=g).tolist())
            for k in torch.randint(1, 30, (n,), generator=g)]


def test_plan_covers_every_row_once_longest_first_within_the_budget():
    lengths = [5, 17, 3, 17, 9, 30, 1, 12, 12, 8]
    groups = plan(lengths, len(lengths), max_tokens=36)
    assert sorted(i for g in groups for i in g) == list(range(10))
    flat = [i for g in groups for i in g]
    assert [lengths[i] for i in flat] == sorted(lengths, reverse=True) and flat[1:3] == [1, 3]  # ties by position
    assert all(len(g) * max(lengths[i] for i in g) <= 36 for g in groups)
    assert plan([50, 2], 2, max_tokens=10) == [[0], [1]]  # a text over the budget is a group of its own
    assert all(len(g) <= 2 for g in plan(lengths, 10, max_tokens=1000, max_rows=2))
    assert padding_share(lengths, groups) < padding_share(lengths, plan(lengths, 10))


def test_without_a_budget_the_plan_is_todays_one_forward_or_contiguous_chunks():
    assert plan(None, 5) == [[0, 1, 2, 3, 4]]
    assert plan(None, 5, max_rows=2) == [[0, 1], [2, 3], [4]]
    with pytest.raises(Exception, match="train.max_tokens"):
        plan(None, 5, max_tokens=8)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    recipe = trainer.Recipe(compose(*TINY, config_name="train"), tmp_path_factory.mktemp("tiny")).setup()
    return recipe


def _me5():
    from hybrid_sweep.encoders import build_encoder
    cfg = compose("encoder=me5_small_q4", "encoder.layers=2", "encoder.max_length=64", "encoder.device=cpu",
                  "encoder.progress=false", config_name="train")
    return build_encoder(cfg.encoder)


def test_take_equals_tokenising_those_rows_alone(tiny):
    texts = _texts(12, 0)
    batch = tokenize(tiny.encoder, texts, "passage")
    rows = [7, 2, 9]
    alone = tokenize(tiny.encoder, [texts[i] for i in rows], "passage")
    part = batch.take(rows)
    assert part.lengths == alone.lengths and part.width == alone.width < batch.width
    for k, v in alone.features.items():
        assert torch.equal(part.features[k], v) if torch.is_tensor(v) else part.features[k] == v


@pytest.mark.parametrize("which", ["tiny", "me5_small_q4"])
def test_length_sorted_sub_batches_embed_like_one_padded_forward(tiny, which):
    """fp32 CPU, eval mode: every embedding within 1e-5 of the single padded forward's."""
    encoder = tiny.encoder if which == "tiny" else _me5()
    encoder.model.eval()
    texts = _texts(24, 1)
    batch = tokenize(encoder, texts, "passage")
    groups = plan_for(batch, max_tokens=4 * max(batch.lengths))
    assert len(groups) >= 3 and padding_share(batch.lengths, groups) < padding_share(batch.lengths, plan_for(batch)) / 2

    def embed(x, kind):
        return torch.nn.functional.normalize(encoder.model(x.features)["sentence_embedding"], dim=-1)
    with torch.no_grad():
        one = embed(batch, "passage")
        split = embed_planned(embed, batch, "passage", groups)
        reference = encoder.forward(texts, "passage")  # today's path: tokenised and padded together
    torch.testing.assert_close(one, reference, rtol=0, atol=0)
    torch.testing.assert_close(split, one, rtol=0, atol=1e-5)
    assert take(batch, groups[-1]).width < batch.width  # the short texts really ran narrower


def _grads(model):
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("chunk", [None, 5])
def test_loss_and_gradients_equal_the_single_padded_forward(tiny, chunk):
    """Plain step (activations of every sub-batch kept for one backward) and GradCache (length-sorted
    chunks): the loss within rel 1e-6 and every parameter gradient within 1e-6 + 1e-4 relative of the
    plain step on one padded forward."""
    model = tiny.model
    model.train()
    q, p, n = (tokenize(tiny.encoder, _texts(8 * k, s), kind) for k, s, kind in ((1, 2, "query"), (1, 3, "passage"),
                                                                                 (2, 4, "passage")))

    def loss_fn(a, b, c):
        return info_nce(a, b, c, 0.05, symmetric=True)
    model.zero_grad(set_to_none=True)
    ref = plain_step(tiny.embed, q, p, n, loss_fn)
    ref_grads = _grads(model)
    model.zero_grad(set_to_none=True)
    if chunk is None:
        loss = plain_step(tiny.embed, q, p, n, loss_fn, max_tokens=60)
    else:
        loss = grad_cache_step(tiny.embed, q, p, n, loss_fn, chunk, torch.device("cpu"), max_tokens=60)
    grads = _grads(model)
    model.zero_grad(set_to_none=True)
    assert loss.item() == pytest.approx(ref.item(), rel=1e-6)
    assert grads.keys() == ref_grads.keys() and len(grads) > 10
    for name in grads:
        torch.testing.assert_close(grads[name], ref_grads[name], rtol=1e-4, atol=1e-6, msg=name)
