"""Training corpora: LAReQA files, the documented JSONL / parquet schema, and hub loaders on fixtures."""

import json

import pandas as pd
import pytest
from omegaconf import OmegaConf

from hybrid_sweep.data.corpus_loading import load_training_data, split_holdout
from hybrid_sweep.data.hub_sources import load_hub_corpus
from hybrid_sweep.data.lareqa import load_lareqa
from hybrid_sweep.data.training import corpus_from_benchmark, corpus_from_rows, file_store, read_rows
from hybrid_sweep.errors import ConfigError, DataError
from tests.conftest import compose


@pytest.mark.real_data
def test_mlqa_r_as_training_data(data_root):
    corpus = corpus_from_benchmark(load_lareqa("mlqa_r", data_root / "lareqa" / "mlqa-r"), max_negatives=3)
    assert len(corpus.groups) == 65 + 263 + 820  # one group per question id
    assert {len(g.items) for g in corpus.groups} == {2, 3, 4}
    g = next(g for g in corpus.groups if "de" in g.items and "en" in g.items)
    assert g.items["de"].query != g.items["en"].query
    # negatives are other sentences of the answer's paragraph
    bench = load_lareqa("mlqa_r", data_root / "lareqa" / "mlqa-r", ["en"])
    q = bench.languages["en"].questions[0]
    ans = bench.languages["en"].candidates[q.answer]
    ex = corpus_from_benchmark(bench).groups[0].items["en"]
    assert ex.positive == ans.text and ans.text in ans.context
    assert all(n in ans.context and n != ans.text for n in ex.negatives)


def test_jsonl_and_parquet_schema(tmp_path):
    rows = [{"group": "g1", "lang": "en", "query": "q1", "positive": "p1", "negatives": ["n1"]},
            {"group": "g1", "lang": "de", "query": "fq1", "positive": "fp1"},
            {"group": "g2", "lang": "en", "query": "q2", "positive": "p2", "negatives": []}]
    (tmp_path / "t.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    pd.DataFrame(rows).to_parquet(tmp_path / "t.parquet")
    for name in ("t.jsonl", "t.parquet"):
        c = corpus_from_rows(read_rows(tmp_path / name), "mine", name)
        assert c.languages == ["de", "en"]
        assert c.groups_for("en", "de") == [0] and c.groups_for("en", "en") == [0, 1]
        assert c.groups[0].items["en"].negatives == ("n1",)
        store = file_store(tmp_path / name, "mine", tmp_path / "cache")  # the Arrow store: same structure
        assert store.languages == ["de", "en"] and store.n_rows == 3 and store.n_examples == 3
        assert store.groups_for("en", "de") == [0] and store.groups_for("en", "en") == [0, 1]
        assert store.groups[0].items["en"].negatives == ("n1",) and store.groups[1].items["en"].negatives == ()
        assert store.texts_at("positive", [2, 0]) == ["p2", "p1"]


@pytest.mark.parametrize("row, message", [
    ({"lang": "en", "query": "q", "positive": "p"}, "row 0: missing field 'group'"),
    ({"group": "g", "lang": "english", "query": "q", "positive": "p"}, "unknown language code 'english'"),
    ({"group": "g", "lang": "en", "query": None, "positive": None}, "both 'query' and 'positive' are empty"),
])
def test_bad_rows(tmp_path, row, message):
    with pytest.raises(DataError, match=message):
        corpus_from_rows([row], "bad", "bad.jsonl")


def test_bad_jsonl_line(tmp_path):
    (tmp_path / "t.jsonl").write_text('{"group": "g"}\n{oops\n')
    with pytest.raises(DataError, match=f"^{tmp_path / 't.jsonl'}:2: malformed JSON"):
        read_rows(tmp_path / "t.jsonl")


def test_hub_loader_missing_dataset_is_one_error(tmp_path):
    cfg = OmegaConf.create({"kind": "hub", "name": "x", "fields": {"group": "id", "query": "q", "positive": "p"},
                            "languages": {"de": {"path": "json", "data_files": str(tmp_path / "nope.jsonl")}}})
    with pytest.raises(DataError, match=r"json \[de\]: cannot load"):
        load_hub_corpus(cfg, tmp_path / "cache")


def test_holdout_split_is_stable_and_disjoint(synthetic_cfg):
    cfg = compose(config_name="train")
    corpora, dev, langs = load_training_data(cfg)
    assert dev is not None and corpora and langs == sorted(c["code"] for c in synthetic_cfg["languages"])
    base = corpora[0]
    a_train, a_dev = split_holdout(base, 0.1, 0)
    b_train, b_dev = split_holdout(base, 0.1, 0)
    assert a_dev.group_codes().tolist() == b_dev.group_codes().tolist()
    assert not set(a_dev.group_codes()) & set(a_train.group_codes())
    assert a_dev.n_rows + a_train.n_rows == base.n_rows
    assert 0.03 < len(a_dev.group_codes()) / len(base.group_codes()) < 0.2
    other = split_holdout(base, 0.1, 1)[1]  # another seed holds out other groups
    assert set(other.group_codes()) != set(a_dev.group_codes())


@pytest.mark.parametrize("override, key", [
    ("data.languages=[]", "data.languages"),
    ("data.languages=[qla,xx]", "data.languages"),
    ("+data.budgets.xx=3", "data.budgets"),
])
def test_bad_training_data_config(override, key):
    with pytest.raises(ConfigError, match=f"^{key}:"):
        load_training_data(compose(override, config_name="train"))


@pytest.mark.real_data
def test_bad_holdout_fraction(data_root):
    cfg = compose("data=mlqa_r", "data.dev.holdout=1.5", f"paths.data_root={data_root}", config_name="train")
    with pytest.raises(ConfigError, match="^data.dev.holdout: must be in"):
        load_training_data(cfg)


def test_pivot_makes_swim_ir_style_data():
    corpora, _, langs = load_training_data(compose("data=synthetic_swim", "+langs=syn3", config_name="train"))
    c = corpora[0]
    assert sorted(langs) == ["qca", "qga", "qla"]
    assert c.groups_for("qca", "qla") and c.groups_for("qga", "qla") and c.groups_for("qla", "qla")
    assert not c.groups_for("qca", "qca") and not c.groups_for("qla", "qca") and not c.groups_for("qca", "qga")
    with pytest.raises(ConfigError, match="^data.pivot: 'qka' is not a training language"):
        load_training_data(compose("data=synthetic_swim", "+langs=syn3", "data.pivot=qka", config_name="train"))


def test_tiny_vocabulary_covers_languages_outside_training():
    """A new tiny encoder's vocabulary is built from every language the sources hold (as a multilingual
    tokenizer's would be), unless encoder.tiny.vocab_from=training_languages."""
    from hybrid_sweep.data.corpus_loading import vocabulary_texts
    from hybrid_sweep.encoders.tiny import build_tokenizer

    cfg = compose("+langs=syn2", config_name="train")  # trains on qla, qca only
    corpora, _, langs = load_training_data(cfg)
    held_out = {w for g in corpora_all(cfg) for lang, ex in g.items.items() if lang not in langs
                for w in ex.query.lower().split()}
    words = {w for t in vocabulary_texts(cfg, corpora) for w in t.lower().split()}
    assert held_out and held_out <= words
    narrow = compose("+langs=syn2", "encoder.tiny.vocab_from=training_languages", config_name="train")
    narrow_words = {w for t in vocabulary_texts(narrow, corpora) for w in t.lower().split()}
    assert len(held_out - narrow_words) > 0.5 * len(held_out)
    vocab = build_tokenizer(vocabulary_texts(cfg, corpora), cfg.encoder.tiny.vocab_size, 64).get_vocab()
    assert sum(w.strip("?.") in vocab for w in held_out) > 0.95 * len(held_out)  # fits in vocab_size
    with pytest.raises(ConfigError, match="^encoder.tiny.vocab_from: unknown vocab_from 'some'"):
        vocabulary_texts(compose("encoder.tiny.vocab_from=some", config_name="train"), corpora)


def corpora_all(cfg):
    from hybrid_sweep.data.corpus_loading import load_source

    return [g for src in cfg.data.sources for g in load_source(src, cfg).groups]


def test_store_is_converted_once_by_concurrent_openers(tmp_path, monkeypatch):
    """Two openers at once (threads here; ranks in training): one converts under the lock, the other
    waits and maps the finished store; a changed file gets a new store."""
    import threading

    from hybrid_sweep.data import corpus_store

    rows = [{"group": f"g{i}", "lang": lang, "query": f"q{i}", "positive": f"p{i}"} for i in range(50) for lang in ("de", "en")]
    path = tmp_path / "t.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows))
    calls, real = [], corpus_store._write_store
    monkeypatch.setattr(corpus_store, "_write_store", lambda *a, **k: (calls.append(1), real(*a, **k))[1])
    out = [None, None]

    def open_it(i):
        out[i] = file_store(path, "mine", tmp_path / "cache")
    threads = [threading.Thread(target=open_it, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and out[0].n_rows == out[1].n_rows == 100
    assert out[0].texts_at("query", [0, 99]) == out[1].texts_at("query", [0, 99]) == ["q0", "q49"]
    path.write_text("\n".join(json.dumps(r) for r in rows[:10]))
    assert file_store(path, "mine", tmp_path / "cache").n_rows == 10 and len(calls) == 2
    assert len(list((tmp_path / "cache").glob("*/DONE"))) == 2


@pytest.mark.parametrize("overrides, refused", [
    (("data.languages=[qla,xx]",), "xx"),
    (("data=mlqa_r", "data.languages=[de,el]"), "el"),  # el is XQuAD-R's, not MLQA-R's
    (("data=mlqa_r", "data.languages=[de,en]"), None),
    (("data=jsonl", "data.sources.0.path={tmp}/t.jsonl", "data.languages=[xx]"), None),  # only reading can tell
    (("train.enabled=false", "data.languages=[xx]"), None),  # zero-shot: no training data is read
])
def test_a_training_language_no_source_can_hold_is_refused_before_loading(overrides, refused, tmp_path):
    from hybrid_sweep.data.corpus_loading import check_languages, declared_languages

    (tmp_path / "t.jsonl").write_text("")
    cfg = compose(*(o.replace("{tmp}", str(tmp_path)) for o in overrides), config_name="train")
    if refused is None:
        check_languages(cfg)
    else:
        with pytest.raises(ConfigError, match=rf"^data.languages: .* has no language '{refused}'; available: "):
            check_languages(cfg)
    if "data=jsonl" in overrides:
        assert declared_languages(cfg) is None
    elif "data=mlqa_r" in overrides:
        assert declared_languages(cfg) == ["ar", "de", "en", "es", "hi", "vi", "zh"]
