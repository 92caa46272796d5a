"""The research-question designs (docs/study_designs.md): each sweep composes, its runs differ in exactly
the intended keys, and the design's constraints hold in the composed configs (RQ1 pair semantics, RQ4
low-resource-only axis and zero-shot split, RQ5 growing language sets and inverse-cloze queries)."""

import itertools

import pytest
import yaml
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

from hybrid_sweep.config import load
from hybrid_sweep.config.stages import PretrainConfig
from hybrid_sweep.data.benchmark import Benchmark
from hybrid_sweep.data.ict_queries import ICT_PREFIX, inverse_cloze_corpus
from hybrid_sweep.data.languages import flores_code, resource_class
from hybrid_sweep.data.lareqa import parse_lareqa
from hybrid_sweep.data.corpus_loading import draw_languages, load_training_data
from hybrid_sweep.runs.store import stage_cache_dir
from hybrid_sweep.sampling.configured import sampler_from_config
from hybrid_sweep.errors import ConfigError
from hybrid_sweep.sampling.pairs import active_pairs, mono_languages
from tests.conftest import ROOT, compose, make_lareqa_doc

REAL_DATA_SWEEPS = ("real_rq1", "real_rq2", "real_rq3", "low_resource_pretrain_flores",
                    "synthetic_languages_ict")


def sweep_grid(name: str) -> list[list[str]]:
    """Every run's overrides of conf/sweep/<name>.yaml, as the basic sweeper expands them."""
    params = yaml.safe_load((ROOT / "conf" / "sweep" / f"{name}.yaml").read_text())["hydra"]["sweeper"]["params"]
    parser = OverridesParser.create()
    axes = []
    for key, value in params.items():
        override = parser.parse_override(f"{key}={value}")
        axes.append([f"{key}={v}" for v in override.sweep_string_iterator()])
    return [list(run) for run in itertools.product(*axes)]


def flat(cfg) -> dict:
    out = {}

    def walk(node, prefix):
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, f"{prefix}{k}.")
        else:
            out[prefix[:-1]] = node
    walk(OmegaConf.to_container(cfg, resolve=True), "")
    return out


def composed_runs(name: str, *extra: str) -> list[tuple[list[str], object]]:
    return [(run, compose(f"+sweep={name}", *extra, *run, config_name="config")) for run in sweep_grid(name)]


def differing_keys(runs) -> set[str]:
    flats = [flat(cfg) for _, cfg in runs]
    keys = set().union(*flats)
    return {k for k in keys if len({repr(f.get(k)) for f in flats}) > 1}


def differs_only_in(runs, intended: set[str]) -> None:
    changed = differing_keys(runs)
    assert {k.split(".")[0] for k in changed} and all(any(k == i or k.startswith(i + ".") for i in intended)
                                                       for k in changed), changed
    for key in intended:  # every intended key does change
        assert any(k == key or k.startswith(key + ".") for k in changed), key


@pytest.mark.parametrize("name", REAL_DATA_SWEEPS)
def test_real_data_sweeps_leave_the_sandbox_benchmark_out(name):
    """One command per question: the preset drops the synthetic benchmark itself; the older spelling with
    ``~eval@evals.synthetic`` on the command line composes the same config (the same run ids)."""
    run = sweep_grid(name)[0]
    cfg = compose(f"+sweep={name}", *run, config_name="config")
    assert "synthetic" not in cfg.evals and len(cfg.evals) >= 1
    assert flat(compose(f"+sweep={name}", "~eval@evals.synthetic", *run, config_name="config")) == flat(cfg)


# --- RQ1: language pairs ---------------------------------------------------------------------------------

def test_language_pairs_sweep_varies_only_the_pair_count_and_seed():
    runs = composed_runs("language_pairs")
    assert len(runs) == 5 * 3
    differs_only_in(runs, {"sampler.n_pairs", "train.seed"})
    s = runs[0][1].sampler
    assert (s.pair_kind, s.pair_draw, s.mono_languages) == ("unordered", "per_seed", "all")


def test_language_pairs_resolve_nested_per_seed_unordered_with_all_mono_languages():
    langs = [lang["code"] for lang in compose(config_name="config").synthetic.languages]
    resolved = {}
    for run, cfg in composed_runs("language_pairs"):
        s = cfg.sampler
        pairs = active_pairs(langs, s.n_pairs, s.pair_seed, s.pair_kind, s.pair_draw, cfg.train.seed)
        resolved[(s.n_pairs, cfg.train.seed)] = pairs
        assert len(pairs) == 2 * s.n_pairs and all((y, x) in pairs for x, y in pairs)  # both directions
        assert mono_languages(langs, pairs, s.mono_languages) == sorted(langs)  # the mono half never moves
    for seed in range(3):
        counts = sorted(n for n, sd in resolved if sd == seed)
        for small, big in zip(counts, counts[1:]):  # nested within a seed
            assert set(resolved[(small, seed)]) < set(resolved[(big, seed)])
    assert len({tuple(resolved[(2, seed)]) for seed in range(3)}) > 1  # which pairs is drawn per seed
    assert len(set(resolved[(15, 0)])) == 30  # 15 unordered pairs = all 30 directions of 6 languages


# --- RQ2 on real data: the paper's three batch mixes -----------------------------------------------------

def test_real_rq2_varies_only_the_batch_mix_and_seed():
    """mono, hybrid and cross runs differ in sampler.ratio (and its label) and the seed only: the same
    encoder, data, steps and evaluation, so the declared pairs compare the batch mix alone."""
    runs = composed_runs("real_rq2")
    assert len(runs) == 3 * 3
    differs_only_in(runs, {"sampler.ratio", "train.seed"})
    ratios = {tuple(sorted(cfg.sampler.ratio.items())) for _, cfg in runs}
    assert ratios == {(("cross", 0.0), ("mixed", 0.0), ("mono", 1.0)), (("cross", 0.5), ("mixed", 0.0), ("mono", 0.5)),
                      (("cross", 1.0), ("mixed", 0.0), ("mono", 0.0))}


# --- RQ3: number of training languages --------------------------------------------------------------------

@pytest.mark.parametrize("name,counts", [("train_languages", [2, 3, 4, 5, 6]), ("real_rq3", [2, 4, 7])])
def test_rq3_draws_the_language_set_per_seed(name, counts):
    """The count is averaged over identities: nested within a seed, other languages across seeds."""
    from hybrid_sweep.config.derive import axis_values

    runs = composed_runs(name)
    assert len(runs) == len(counts) * 3
    differs_only_in(runs, {"data.n_languages", "train.seed"})
    assert all(c.data.language_draw == "per_seed" and len(c.data.languages) == max(counts) for _, c in runs)
    drawn = {(c.data.n_languages, c.train.seed): _drawn(c) for _, c in runs}
    for (n, seed), langs in drawn.items():
        assert len(langs) == n and set(langs) <= set(runs[0][1].data.languages)
    for seed in range(3):
        for small, big in zip(counts, counts[1:]):
            assert set(drawn[(small, seed)]) < set(drawn[(big, seed)])
    assert len({tuple(drawn[(counts[0], seed)]) for seed in range(3)}) > 1  # which languages: drawn per seed
    run, cfg = runs[0]  # the axis columns: the count from the config, the identities from train_summary.json
    axes = axis_values(cfg, {"languages": _drawn(cfg)})
    assert axes["n_train_langs"] == cfg.data.n_languages
    assert axes["train_langs"] == ",".join(sorted(_drawn(cfg)))
    assert axis_values(cfg)["n_train_langs"] == cfg.data.n_languages  # known before training (planning)


def test_drawn_languages_reach_the_training_corpus():
    cfg = compose("+sweep=train_languages", "data.n_languages=3", "train.seed=1", config_name="config")
    corpora, _, langs = load_training_data(cfg)
    assert langs == _drawn(cfg) and len(langs) == 3
    assert sorted({x for c in corpora for x in c.languages}) == sorted(langs)  # only the drawn languages train


def test_seen_unseen_split_uses_the_drawn_languages(tmp_path):
    """A drawn set is what the run trained on: the seen / unseen breakdown reads it, not the pool."""
    import json

    from hybrid_sweep.runs.worker import _train_languages
    cfg = compose("+sweep=train_languages", "data.n_languages=2", "train.seed=1", config_name="config")
    (tmp_path / "train_summary.json").write_text(json.dumps({"languages": _drawn(cfg)}))
    assert _train_languages(cfg, tmp_path) == _drawn(cfg) != list(cfg.data.languages)


def test_language_draw_defaults_keep_the_old_behaviour_and_reject_bad_counts():
    pool = ["a", "b", "c", "d"]
    assert draw_languages(pool, None) == pool and draw_languages(pool, 2) == ["a", "b"]
    assert draw_languages(pool, 2, "per_seed", 0, 5) == draw_languages(pool, 2, "per_seed", 0, 5)
    with pytest.raises(ConfigError, match="n_languages"):
        draw_languages(pool, 5)
    bad = compose("+sweep=train_languages", "data.n_languages=7", "train.seed=0", config_name="config")
    with pytest.raises(ConfigError, match=r"^data.n_languages: 7 languages asked of a pool of 6"):
        load(bad)  # checked when the config loads, before any run starts
    with pytest.raises(ConfigError, match="data.n_languages"):
        load_training_data(bad)


# --- RQ4: low-resource languages in pre-training ---------------------------------------------------------

def _resource(cfg) -> dict:
    return {lang["code"]: lang["resource"] for lang in cfg.synthetic.languages}


def test_low_resource_pretrain_sandbox_design():
    runs = composed_runs("low_resource_pretrain")
    assert len(runs) == 3 * 3
    differs_only_in(runs, {"pretrain.n_low_resource", "train.seed", "pretrain.seed"})  # pretrain.seed = train.seed
    cfg = runs[0][1]
    level = _resource(cfg)
    assert cfg.pretrain.low_resource and all(level[x] == "low" for x in cfg.pretrain.low_resource)
    assert all(level[x] != "low" for x in cfg.pretrain.base_languages)
    assert sorted(level[x] for x in level if x not in cfg.pretrain.base_languages) == ["low", "low"]  # all of them
    assert list(cfg.data.languages) == list(cfg.pretrain.base_languages)  # fine-tuning: the other languages only
    assert cfg.pretrain.text_source == "synthetic"  # a corpus apart from the fine-tuning passages
    assert all(ev.languages is None for ev in cfg.evals.values())  # evaluation covers the low-resource ones
    added = [PretrainConfig.languages(c.pretrain)[len(c.pretrain.base_languages):] for _, c in runs]
    assert sorted(map(len, added)) == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert all(c.pretrain.seed == c.train.seed for _, c in runs)  # the MLM stage is replicated per seed
    keys = {stage_cache_dir("r", "pretrain", c).name for _, c in runs}
    assert len(keys) == 9  # one pre-training checkpoint per axis value x seed: never shared across seeds


def test_low_resource_pretrain_real_design():
    runs = composed_runs("low_resource_pretrain_flores")
    assert len(runs) == 4 * 3
    differs_only_in(runs, {"pretrain.n_low_resource", "train.seed", "pretrain.seed"})  # pretrain.seed = train.seed
    cfg = runs[0][1]
    p = cfg.pretrain
    assert all(resource_class(x) in {"0", "1", "2"} for x in p.low_resource)  # Joshi classes 0-2 only
    assert all(resource_class(x) in {"4", "5"} for x in p.base_languages)
    assert list(cfg.data.languages) == list(p.base_languages) and not set(p.low_resource) & set(cfg.data.languages)
    assert p.text_source == "flores" and p.text_split == "train" and cfg.evals.flores.split == "dev"
    assert list(cfg.evals) == ["flores"]
    evaluated = {flores_code(x) for x in cfg.evals.flores.languages}
    assert {flores_code(x) for x in [*p.base_languages, *p.low_resource]} == evaluated
    assert p.lr == pytest.approx(5e-5) and cfg.encoder.kind == "me5_small_q4"
    assert max(c.pretrain.n_low_resource for _, c in runs) == len(p.low_resource)
    assert all(c.pretrain.seed == c.train.seed for _, c in runs)
    assert len({stage_cache_dir("r", "pretrain", c).name for _, c in runs}) == 4 * 3  # replicated MLM stage


def test_low_resource_sweeps_run_zero_shot_split_through_the_loader(data_root):
    """The composed real design loads: MLQA-R in the base languages only; FLORES text in every language."""
    from hybrid_sweep.training.pretrain import _texts
    cfg = compose("+sweep=low_resource_pretrain_flores", "pretrain.n_low_resource=4",
                  f"paths.data_root={data_root}", "pretrain.max_texts_per_language=5", config_name="config")
    corpora, _, langs = load_training_data(cfg)
    assert sorted(langs) == sorted(cfg.pretrain.base_languages)
    assert not {x for c in corpora for x in c.languages} & set(cfg.pretrain.low_resource)
    texts = _texts(cfg, corpora, PretrainConfig.languages(cfg.pretrain))
    assert set(texts) == {*cfg.pretrain.base_languages, *cfg.pretrain.low_resource}
    assert all(len(v) == 5 for v in texts.values())
    passages = {t for c in corpora for t in c.texts()}
    assert not passages & {t for v in texts.values() for t in v}


# --- RQ5: training data in a growing number of languages -------------------------------------------------

def _drawn(cfg) -> list[str]:
    """The training languages a composed run resolves to (data.languages, or n drawn from that pool)."""
    d = cfg.data
    return draw_languages(list(d.languages), d.n_languages, d.language_draw, d.language_seed, cfg.train.seed)


@pytest.mark.parametrize("name,axis", [("synthetic_languages", "data.languages"),
                                       ("synthetic_languages_ict", "data.n_languages")])
def test_rq5_sweeps_grow_nested_language_sets(name, axis):
    runs = composed_runs(name)
    assert len(runs) == 5 * 3
    differs_only_in(runs, {axis, "train.seed"})
    sets = sorted({tuple(_drawn(c)) for _, c in runs}, key=len)
    assert [len(s) for s in sets] == sorted({len(s) for s in sets}) and len(sets) == 5
    for small, big in zip(sets, sets[1:]):
        assert set(small) < set(big)


def test_rq5_real_design_uses_inverse_cloze_and_xquad_r():
    cfg = compose("+sweep=synthetic_languages_ict", *sweep_grid("synthetic_languages_ict")[0],
                  config_name="config")
    assert [s.kind for s in cfg.data.sources] == ["inverse_cloze"] and cfg.data.sources[0].benchmark == "mlqa_r"
    assert sorted(cfg.evals) == ["flores", "xquad_r"]  # FLORES by Joshi class primary, XQuAD-R secondary
    classes = [resource_class(x) for x in cfg.evals.flores.languages]
    assert set(classes) == {"0", "1", "2", "3", "4", "5"} and min(map(classes.count, set(classes))) >= 4
    trained = {flores_code(x) for x in cfg.data.languages}
    assert trained <= set(cfg.evals.flores.languages)  # seen and unseen languages both evaluated
    assert set(cfg.data.budgets) == set(cfg.data.languages) and len(set(cfg.data.budgets.values())) == 1
    swim = compose("data=swim_ir", config_name="config")  # the real path the question names stays available
    assert swim.data.name == "swim_ir"


def test_rq5_real_design_holds_the_volume_per_language_fixed(data_root):
    """Every training language brings the same number of inverse-cloze groups (data.budgets), English too."""
    import numpy as np

    cfg = compose("+sweep=synthetic_languages_ict", "data.n_languages=3", "train.seed=0",
                  f"paths.data_root={data_root}", config_name="config")
    corpora, _, langs = load_training_data(cfg)
    assert langs == ["en", "hi", "es"]  # English first, then the pool's order
    store = corpora[0]
    act = store.active_mask()
    groups = {x: len(np.unique(store.group[act & store.lang_mask([x])])) for x in langs}
    assert set(groups.values()) == {cfg.data.budgets.en}, groups


def _bench(docs: dict) -> Benchmark:
    return Benchmark("fixture", {lang: parse_lareqa(doc, lang, f"{lang}.json") for lang, doc in docs.items()})


def test_inverse_cloze_generator_on_a_fixture():
    en = make_lareqa_doc([["The cat sat.", "It was red.", "Then it left."], ["Only one sentence."],
                          ["No question here.", "Still none."]],
                         [(0, 1, "q2", "what colour?"), (0, 2, "q1", "what then?"), (1, 0, "q3", "one?")])
    de = make_lareqa_doc([["Die Katze sass.", "Sie war rot.", "Dann ging sie."]],
                         [(0, 1, "q2", "welche Farbe?"), (0, 2, "q1", "was dann?")])
    corpus = inverse_cloze_corpus(_bench({"en": en, "de": de}))
    assert [g.group for g in corpus.groups] == [ICT_PREFIX + "q1"]  # anchor: the smallest id; no 1-sentence para
    ex_en, ex_de = corpus.groups[0].items["en"], corpus.groups[0].items["de"]
    assert ex_en.query == "Then it left." and ex_en.positive == "The cat sat. It was red."  # query = answer sentence
    assert ex_de.query == "Dann ging sie." and ex_de.positive == "Die Katze sass. Sie war rot."  # parallel group
    assert ex_en.query not in ex_en.positive and ex_en.negatives == ()
    assert not any("?" in t for t in corpus.texts())  # question texts are never used


def test_inverse_cloze_on_mlqa_r(data_root):
    cfg = compose("data=inverse_cloze", f"paths.data_root={data_root}", config_name="config")
    corpora, dev, langs = load_training_data(cfg)
    assert sorted(langs) == ["ar", "de", "en", "es", "hi", "vi", "zh"] and dev is not None
    store = corpora[0]
    groups = {}
    for g in store.groups:
        for lang, ex in g.items.items():
            assert ex.query and ex.positive and ex.query not in ex.positive
        groups[g.group] = len(g.items)
    assert len(groups) > 1000 and sum(n > 1 for n in groups.values()) > 500  # many groups parallel across languages
    sampler = sampler_from_config(cfg, corpora, langs, seed=0)  # the preset asks no hard negatives of it
    batches = [sampler.batch_at(step) for step in range(20)]
    assert {b.mode for b in batches} == {"mono", "cross"} and all(len(b.items) == cfg.train.batch_size for b in batches)
    assert all(i.query not in i.positive and not i.negatives for b in batches for i in b.items)


STUDY_PRESETS = {  # preset: (primary axis, contrast, what the primary endpoint must name)
    "language_pairs": ("n_pairs", "trend", {}), "real_rq1": ("n_pairs", "trend", {"benchmark": "xquad_r"}),
    "mix_ratio": ("sampler", "pairs", {"pairs": [["hybrid", "mono"], ["hybrid", "cross"]]}),
    "real_rq2": ("sampler", "pairs", {"pairs": [["hybrid", "mono"], ["hybrid", "cross"]], "benchmark": "xquad_r"}),
    "train_languages": ("n_train_langs", "trend", {}), "real_rq3": ("n_train_langs", "trend", {"benchmark": "xquad_r"}),
    "low_resource_pretrain": ("pretrain_low_resource", "vs_reference", {"languages": ["qcb", "qka"]}),
    "low_resource_pretrain_flores": ("pretrain_low_resource", "vs_reference",
                                     {"benchmark": "flores", "languages": ["yor_Latn", "hat_Latn", "ibo_Latn", "kin_Latn"]}),
    "synthetic_languages": ("n_train_langs", "trend", {"language_groups": {"high": ["qla", "qca"], "mid": ["qlb", "qga"],
                                                                           "low": ["qcb", "qka"]}}),
    "synthetic_languages_ict": ("n_train_langs", "trend", {"benchmark": "flores", "group_by": "joshi"}),
}


@pytest.mark.parametrize("name", sorted(STUDY_PRESETS))
def test_every_study_declares_its_primary_hypothesis_and_seeds(name):
    """The composed preset carries a valid declaration: the primary names an axis the sweep varies, and the
    seeds fixed before the first look are the seeds the sweep runs."""
    from hybrid_sweep.config.study import study_from_dict

    run, cfg = composed_runs(name)[0]
    study = study_from_dict(OmegaConf.to_container(cfg.study, resolve=True))
    axis, contrast, endpoint = STUDY_PRESETS[name]
    assert (study.primary.axis, study.primary.contrast) == (axis, contrast)
    for key, value in endpoint.items():
        assert getattr(study.primary, key) == value, key
    seeds = {r for runs in sweep_grid(name) for r in runs if r.startswith("train.seed=")}
    assert study.seeds_fixed == len(seeds) and study.looks is None
    if name.startswith("low_resource"):  # RQ4: the added low-resource languages are exactly the primary's
        added = [*cfg.pretrain.low_resource][: int(study.primary.levels[0])]
        assert [flores_code(x) or x for x in study.primary.languages] == [flores_code(x) or x for x in added]
