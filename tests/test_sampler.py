"""The hybrid batch sampler on a tiny synthetic parallel corpus."""

import collections

import pytest

from hybrid_sweep.data.training import Example, TrainCorpus, TrainGroup
from hybrid_sweep.errors import ConfigError
from hybrid_sweep.sampling import HybridBatchSampler, ordered_pairs

LANGS = ["de", "en", "es", "zh"]


def corpus(n=60, langs=LANGS, parallel=True, name="toy", negatives=2):
    groups = [TrainGroup(f"g{i}", {lang: Example(f"q{i}-{lang}", f"p{i}-{lang}",
                                                   tuple(f"n{i}-{lang}-{k}" for k in range(negatives)))
                                   for lang in langs}) for i in range(n)]
    return TrainCorpus(name, groups, parallel)


def sampler(corpora=None, ratio=None, **kw):
    kw.setdefault("batch_size", 8)
    return HybridBatchSampler(corpora or [corpus()], kw.pop("languages", LANGS), ratio=ratio or {"mono": 0.5, "cross": 0.5}, **kw)


def test_mode_frequencies_converge_to_ratio():
    s = sampler(ratio={"mono": 0.2, "cross": 0.5, "multi": 0.3})
    counts = collections.Counter(s.batch_at(i).mode for i in range(3000))
    for mode, p in (("mono", 0.2), ("cross", 0.5), ("multi", 0.3)):
        assert abs(counts[mode] / 3000 - p) < 0.03


def test_batch_composition_per_mode():
    s = sampler(ratio={"mono": 1 / 3, "cross": 1 / 3, "multi": 1 / 3}, n_negatives=2)
    seen = set()
    for i in range(300):
        b = s.batch_at(i)
        seen.add(b.mode)
        pairs = [(it.query_lang, it.passage_lang) for it in b.items]
        if b.mode == "mono":
            assert len(set(pairs)) == 1 and pairs[0][0] == pairs[0][1]
        elif b.mode == "cross":
            assert all(q != p for q, p in pairs)
        else:
            assert all(q == p for q, p in pairs)
        for it in b.items:  # texts really come from the languages named
            assert it.query.endswith(it.query_lang) and it.positive.endswith(it.passage_lang)
            assert len(it.negatives) == 2 and all(f"-{it.passage_lang}-" in n for n in it.negatives)
        assert len({it.group for it in b.items}) == len(b.items)  # no parallel false negatives
    assert seen == {"mono", "cross", "multi"}


def test_nested_pairs_and_only_active_pairs_used():
    full = ordered_pairs(LANGS, pair_seed=7)
    assert len(full) == 12 and len(set(full)) == 12
    for n in range(1, 12):
        assert sampler(n_pairs=n, pair_seed=7).pairs == full[:n]
    s = sampler(n_pairs=3, pair_seed=7, ratio={"cross": 1.0})
    used = {(it.query_lang, it.passage_lang) for i in range(200) for it in s.batch_at(i).items}
    assert used == set(full[:3])
    assert ordered_pairs(LANGS, 7) != ordered_pairs(LANGS, 8)  # the order is seeded, not the training seed
    assert sampler(n_pairs=5, pair_seed=7, seed=1).pairs == sampler(n_pairs=5, pair_seed=7, seed=2).pairs


def test_deterministic_and_resumable():
    a, b = sampler(seed=3), sampler(seed=3)
    straight = [next(a) for _ in range(20)]
    first = [next(b) for _ in range(10)]
    state = b.state_dict()
    c = sampler(seed=3)
    c.load_state_dict(state)
    resumed = first + [next(c) for _ in range(10)]
    assert [x.log_record() for x in straight] == [x.log_record() for x in resumed]
    assert straight[0].log_record() != sampler(seed=4).batch_at(0).log_record()


def test_english_only_corpus_only_makes_mono_batches():
    en = corpus(n=40, langs=["en"], parallel=False, name="en_only")
    s = sampler(corpora=[corpus(), en], weights=[0.0, 1.0], ratio={"mono": 0.2, "cross": 0.8})
    batches = [s.batch_at(i) for i in range(50)]
    assert all(b.mode == "mono" and b.corpus == "en_only" for b in batches)
    assert any(b.requested == "cross" for b in batches)  # recorded, then made monolingual


def test_corpus_choice_proportional_to_size():
    s = sampler(corpora=[corpus(n=90, name="big"), corpus(n=30, name="small")])
    counts = collections.Counter(s.batch_at(i).corpus for i in range(2000))
    assert abs(counts["big"] / 2000 - 0.75) < 0.04


def test_budgets_simulate_low_resource_languages():
    c = corpus(n=60).restrict(LANGS, {"zh": 10})
    assert len(c.groups_for("zh", "zh")) == 10 and len(c.groups_for("de", "de")) == 60
    s = sampler(corpora=[c], ratio={"mono": 1.0})
    zh_groups = {it.group for i in range(400) for it in s.batch_at(i).items if it.query_lang == "zh"}
    assert zh_groups <= {f"g{i}" for i in range(10)}


def test_ddp_shards_partition_the_global_batch():
    b = sampler(batch_size=8).batch_at(5)
    shards = [b.shard(r, 2) for r in range(2)]
    assert all(s.mode == b.mode for s in shards)
    assert [it for s in shards for it in s.items] == b.items


@pytest.mark.parametrize("kw, key", [
    ({"ratio": {"mono": 0.7, "cross": 0.7}}, "sampler.ratio"),
    ({"ratio": {"mono": 1.5, "cross": -0.5}}, "sampler.ratio"),
    ({"ratio": {"mono": 0.5, "crosss": 0.5}}, "sampler.ratio"),
    ({"n_pairs": 13}, "sampler.n_pairs"),
    ({"n_pairs": 0}, "sampler.n_pairs"),
    ({"batch_size": 61}, "train.batch_size"),
    ({"weights": [1.0, 2.0]}, "sampler.weights"),
])
def test_bad_settings_name_their_key(kw, key):
    with pytest.raises(ConfigError, match=f"^{key}:"):
        sampler(**kw)


def test_negatives_top_up_with_other_groups():
    s = sampler(corpora=[corpus(negatives=0)], n_negatives=3)
    for i in range(20):
        b = s.batch_at(i)
        groups = {it.group for it in b.items}
        for it in b.items:
            assert len(it.negatives) == 3
            owners = {n.split("-")[0][1:] for n in it.negatives}
            assert not owners & {g[1:] for g in groups}  # never a positive of this batch's groups
