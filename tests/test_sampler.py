"""The hybrid batch sampler on a tiny synthetic parallel corpus."""

import collections

import pytest

import pyarrow as pa

from hybrid_sweep.data.corpus_loading import apply_budgets
from hybrid_sweep.data.corpus_store import store_from_batches
from hybrid_sweep.data.training import Example, TrainCorpus, TrainGroup, corpus_to_store
from hybrid_sweep.errors import ConfigError
from hybrid_sweep.sampling import HybridBatchSampler, active_pairs, ordered_pairs, unordered_pairs

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
    s = sampler(ratio={"mono": 0.2, "cross": 0.5, "mixed": 0.3})
    counts = collections.Counter(s.batch_at(i).mode for i in range(3000))
    for mode, p in (("mono", 0.2), ("cross", 0.5), ("mixed", 0.3)):
        assert abs(counts[mode] / 3000 - p) < 0.03


def test_batch_composition_per_mode():
    s = sampler(ratio={"mono": 1 / 3, "cross": 1 / 3, "mixed": 1 / 3}, n_negatives=2)
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
    assert seen == {"mono", "cross", "mixed"}


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
    c = apply_budgets(corpus_to_store(corpus(n=60)), {"zh": 10})
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
    """Rows with fewer hard negatives than asked are topped up with positives of groups outside the batch."""
    c = corpus(negatives=1)
    c.groups[:] = [TrainGroup(g.group, {lang: Example(ex.query, ex.positive, ex.negatives if i % 2 else ())
                                        for lang, ex in g.items.items()}) for i, g in enumerate(c.groups)]
    s = sampler(corpora=[c], n_negatives=3)
    for i in range(20):
        b = s.batch_at(i)
        groups = {it.group for it in b.items}
        for it in b.items:
            assert len(it.negatives) == 3 and len(set(it.negatives)) == 3
            own = [n for n in it.negatives if n.startswith("n")]
            assert own in ([], [f"n{it.group[1:]}-{it.passage_lang}-0"])  # its own hard negative comes first
            owners = {n.split("-")[0][1:] for n in it.negatives if n.startswith("p")}
            assert all(n.endswith(it.passage_lang) for n in it.negatives if n.startswith("p"))
            assert not owners & {g[1:] for g in groups}  # never a positive of this batch's groups


def test_negatives_from_a_source_without_any_is_a_config_error():
    with pytest.raises(ConfigError, match="^sampler.n_negatives: 1 hard negatives asked of source 'toy', which has none"):
        sampler(corpora=[corpus(negatives=0)], n_negatives=1)
    b = sampler(corpora=[corpus(negatives=0)], n_negatives=0).batch_at(0)  # in-batch negatives only
    assert all(it.negatives == () for it in b.items)
    store = corpus_to_store(corpus(negatives=0)).view(n_negatives=0)  # a source's own setting wins
    assert sampler(corpora=[store], n_negatives=1).batch_at(0).items[0].negatives == ()


def _rows_store(rows, name="multi_rows", **kw):
    table = pa.table({k: [r.get(k) for r in rows] for k in ("group", "lang", "query", "positive")}
                     | {"negatives": pa.array([r.get("negatives") for r in rows], pa.list_(pa.string()))})
    return store_from_batches(name, table.to_batches(), name, **kw)


def test_several_rows_per_group_one_per_batch():
    """mMARCO-like: many rows (triples) per query id and language; a batch uses one row per group, every row
    is reachable, and a cross example pairs the group's query with one of the group's positives."""
    rows = [{"group": f"q{g}", "lang": lang, "query": f"q{g}-{lang}", "positive": f"p{g}.{k}-{lang}",
             "negatives": [f"n{g}.{k}-{lang}"]} for g in range(12) for k in range(3) for lang in ("de", "en")]
    s = HybridBatchSampler([_rows_store(rows)], ["de", "en"], batch_size=10, ratio={"mono": 0.5, "cross": 0.5})
    seen = set()
    for i in range(300):
        b = s.batch_at(i)
        assert len({it.group for it in b.items}) == 10
        for it in b.items:
            g = it.group[1:]
            assert it.query == f"q{g}-{it.query_lang}" and it.positive.startswith(f"p{g}.")
            assert it.positive.endswith(it.passage_lang) and it.negatives[0].endswith(it.passage_lang)
            if it.query_lang == it.passage_lang:  # mono: the positive's own triple gives the negative
                assert it.negatives[0] == "n" + it.positive[1:]
            seen.add(it.positive)
    assert len(seen) == 12 * 3 * 2


def test_hybrid_batches_from_a_cross_only_and_a_mono_source():
    """FLORES-like translation pairs (cross only) next to a monolingual-capable corpus: mono batches come
    from the second, cross batches from both in proportion to their examples."""
    pairs = corpus(n=90, langs=["de", "en", "es"], name="pairs", negatives=0)
    pairs_store = corpus_to_store(pairs, cross_only=True).view(n_negatives=0)
    mono = corpus(n=30, langs=["de", "en", "es"], name="qa", negatives=1)
    s = HybridBatchSampler([pairs_store, mono], ["de", "en", "es"], 8, {"mono": 0.5, "cross": 0.5}, n_negatives=1)
    batches = [s.batch_at(i) for i in range(600)]
    by = collections.Counter((b.mode, b.corpus) for b in batches)
    assert by[("mono", "pairs")] == 0 and by[("mono", "qa")] > 200
    cross = by[("cross", "pairs")] + by[("cross", "qa")]
    assert abs(by[("cross", "pairs")] / cross - 0.75) < 0.08  # 270 vs 90 examples
    assert all(it.negatives == () for b in batches if b.corpus == "pairs" for it in b.items)
    assert all(len(it.negatives) == 1 for b in batches if b.corpus == "qa" for it in b.items)
    with pytest.raises(ConfigError, match="^sampler.ratio: mono batches need same-language data"):
        HybridBatchSampler([pairs_store], ["de", "en", "es"], 8, {"mono": 0.5, "cross": 0.5})


def test_store_and_in_memory_corpus_draw_the_same_batches():
    c = corpus()
    a = sampler(corpora=[c], seed=5, n_negatives=2)
    b = sampler(corpora=[corpus_to_store(c)], seed=5, n_negatives=2)
    assert all(a.batch_at(i) == b.batch_at(i) for i in range(30))


def test_unordered_pairs_train_both_directions_and_stay_nested():
    full = unordered_pairs(LANGS, 3)
    assert len(full) == 6 and all(x < y for x, y in full)
    for n in range(1, 7):
        pairs = active_pairs(LANGS, n, 3, kind="unordered")
        assert pairs == [d for x, y in full[:n] for d in ((x, y), (y, x))]
    s = sampler(n_pairs=1, pair_seed=3, pair_kind="unordered", ratio={"cross": 1.0})
    used = {(it.query_lang, it.passage_lang) for i in range(100) for it in s.batch_at(i).items}
    assert used == set(s.pairs) and len(used) == 2
    with pytest.raises(ConfigError, match=r"^sampler.n_pairs: must be in 1..6 \(unordered"):
        sampler(n_pairs=7, pair_kind="unordered")
    with pytest.raises(ConfigError, match="^sampler.pair_kind: unknown value 'both'"):
        sampler(pair_kind="both")


def test_pair_draw_per_seed_varies_with_the_training_seed():
    fixed = {tuple(sampler(n_pairs=3, pair_seed=1, seed=s).pairs) for s in range(6)}
    drawn = {tuple(sampler(n_pairs=3, pair_seed=1, seed=s, pair_draw="per_seed").pairs) for s in range(6)}
    assert len(fixed) == 1 and len(drawn) > 1
    assert sampler(n_pairs=3, pair_seed=1, seed=2, pair_draw="per_seed").pairs == \
        sampler(n_pairs=3, pair_seed=1, seed=2, pair_draw="per_seed").pairs  # reproducible per seed
    for s in range(6):  # nested within a seed
        big = sampler(n_pairs=6, pair_seed=1, seed=s, pair_draw="per_seed").pairs
        assert sampler(n_pairs=2, pair_seed=1, seed=s, pair_draw="per_seed").pairs == big[:2]


def test_mono_languages_all_or_only_those_of_the_pairs():
    s = sampler(n_pairs=1, pair_seed=7, mono_langs="pairs", ratio={"mono": 0.5, "mixed": 0.5})
    in_pairs = set(s.pairs[0])
    used = {it.query_lang for i in range(200) for it in s.batch_at(i).items}
    assert used == in_pairs and s.mono_languages == sorted(in_pairs)
    everyone = sampler(n_pairs=1, pair_seed=7, ratio={"mono": 0.5, "mixed": 0.5})
    assert {it.query_lang for i in range(200) for it in everyone.batch_at(i).items} == set(LANGS)
    with pytest.raises(ConfigError, match="^sampler.mono_languages: unknown value 'some'"):
        sampler(mono_langs="some")


def test_pair_design_keys_from_the_config():
    """sampler.pair_kind / pair_draw / mono_languages reach the sampler; the resolved pairs are what
    results carry (``sampler.pairs``); validation always uses every pair."""
    from hybrid_sweep.data.corpus_loading import load_training_data
    from hybrid_sweep.sampling.configured import sampler_from_config
    from tests.conftest import compose

    base = compose(config_name="train").sampler
    assert (base.pair_kind, base.pair_draw, base.mono_languages) == ("ordered", "fixed", "all")  # documented defaults
    cfg = compose("+langs=syn3", "sampler.n_pairs=1", "sampler.pair_kind=unordered", "sampler.pair_draw=per_seed",
                  "sampler.mono_languages=pairs", config_name="train")
    corpora, _, langs = load_training_data(cfg)
    s = sampler_from_config(cfg, corpora, langs, seed=3)
    (x, y), back = s.pairs
    assert back == (y, x) and s.mono_languages == sorted({x, y})
    assert s.pairs == active_pairs(langs, 1, 0, "unordered", "per_seed", 3)
    assert len(sampler_from_config(cfg, corpora, langs, seed=3, validation=True).pairs) == 6
    with pytest.raises(ConfigError, match="^sampler.pair_draw: unknown pair_draw 'sometimes'; one of fixed, per_seed"):
        sampler_from_config(compose("sampler.pair_draw=sometimes", config_name="train"), corpora, langs, 0)
