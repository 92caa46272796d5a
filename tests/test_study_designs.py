"""The research-question designs (docs/study_designs.md): each sweep composes, its runs differ in exactly
the intended keys, and the design's constraints hold in the composed configs (RQ1 pair semantics, RQ4
low-resource-only axis and zero-shot split, RQ5 growing language sets and inverse-cloze queries)."""

import itertools

import pytest
import yaml
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

from hybrid_sweep.config.stages import PretrainConfig
from hybrid_sweep.data.benchmark import Benchmark
from hybrid_sweep.data.ict_queries import ICT_PREFIX, inverse_cloze_corpus
from hybrid_sweep.data.languages import flores_code, resource_class
from hybrid_sweep.data.lareqa import parse_lareqa
from hybrid_sweep.data.corpus_loading import load_training_data
from hybrid_sweep.runs.store import stage_cache_dir
from hybrid_sweep.sampling.configured import sampler_from_config
from hybrid_sweep.sampling.pairs import active_pairs, mono_languages
from tests.conftest import ROOT, compose, make_lareqa_doc

REAL_DATA_SWEEPS = ("real_rq1", "real_rq3", "low_resource_pretrain_flores", "synthetic_languages_ict")


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


# --- RQ4: low-resource languages in pre-training ---------------------------------------------------------

def _resource(cfg) -> dict:
    return {lang["code"]: lang["resource"] for lang in cfg.synthetic.languages}


def test_low_resource_pretrain_sandbox_design():
    runs = composed_runs("low_resource_pretrain")
    assert len(runs) == 3 * 3
    differs_only_in(runs, {"pretrain.n_low_resource", "train.seed"})
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
    keys = {stage_cache_dir("r", "pretrain", c).name for _, c in runs}
    assert len(keys) == 3  # one pre-training checkpoint per axis value, shared by the seeds


def test_low_resource_pretrain_real_design():
    runs = composed_runs("low_resource_pretrain_flores")
    assert len(runs) == 4 * 3
    differs_only_in(runs, {"pretrain.n_low_resource", "train.seed"})
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

@pytest.mark.parametrize("name,extra", [("synthetic_languages", ()), ("synthetic_languages_ict", ())])
def test_rq5_sweeps_grow_nested_language_sets(name, extra):
    runs = composed_runs(name, *extra)
    assert len(runs) == 5 * 3
    differs_only_in(runs, {"data.languages", "train.seed"})
    sets = sorted({tuple(c.data.languages) for _, c in runs}, key=len)
    assert [len(s) for s in sets] == sorted({len(s) for s in sets}) and len(sets) == 5
    for small, big in zip(sets, sets[1:]):
        assert set(small) < set(big)


def test_rq5_real_design_uses_inverse_cloze_and_xquad_r():
    cfg = compose("+sweep=synthetic_languages_ict", *sweep_grid("synthetic_languages_ict")[0],
                  config_name="config")
    assert [s.kind for s in cfg.data.sources] == ["inverse_cloze"] and cfg.data.sources[0].benchmark == "mlqa_r"
    assert list(cfg.evals) == ["xquad_r"]
    swim = compose("data=swim_ir", config_name="config")  # the real path the question names stays available
    assert swim.data.name == "swim_ir"


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
