"""The LAReQA loader: published counts on the real files, the id contract, qrels, and bad files."""

import json

import pytest

from hybrid_sweep.data.lareqa import load_lareqa, parse_lareqa, read_lareqa_file
from hybrid_sweep.errors import ConfigError, DataError
from tests.conftest import make_lareqa_doc

XQUAD_CANDIDATES = {"ar": 1222, "de": 1276, "el": 1234, "en": 1180, "es": 1215, "hi": 1244, "ru": 1219,
                    "th": 852, "tr": 1167, "vi": 1209, "zh": 1196}
MLQA_QUESTIONS = {"ar": 517, "de": 512, "en": 1148, "es": 500, "hi": 507, "vi": 511, "zh": 504}
MLQA_CANDIDATES = {"ar": 2545, "de": 2362, "en": 6264, "es": 1787, "hi": 2426, "vi": 2828, "zh": 2322}


@pytest.mark.real_data
def test_xquad_r_counts(data_root):
    bench = load_lareqa("xquad_r", data_root / "lareqa" / "xquad-r")
    assert {k: len(v.candidates) for k, v in bench.languages.items()} == XQUAD_CANDIDATES
    assert all(len(v.questions) == 1190 for v in bench.languages.values())
    assert sum(len(v.candidates) for v in bench.languages.values()) == 13014
    multi = bench.pools("multi")
    assert {len(r) for p in multi for r in p.relevant} == {11}
    assert len(bench.pools("cross")) == 110


@pytest.mark.real_data
def test_mlqa_r_counts_and_cross_skips(data_root):
    bench = load_lareqa("mlqa_r", data_root / "lareqa" / "mlqa-r")
    assert {k: len(v.questions) for k, v in bench.languages.items()} == MLQA_QUESTIONS
    assert {k: len(v.candidates) for k, v in bench.languages.items()} == MLQA_CANDIDATES
    assert sum(MLQA_CANDIDATES.values()) == 20534
    assert {len(r) for p in bench.pools("multi") for r in p.relevant} == {2, 3, 4}
    cross = bench.pools("cross")
    assert len(cross) == 42
    for p in cross:  # only queries whose id exists in the pool language, the rest counted
        assert len(p.queries) + p.n_skipped == MLQA_QUESTIONS[p.query_lang]
        assert (p.n_skipped == 0) == (p.doc_lang == "en")  # every MLQA id has an English version


@pytest.mark.real_data
def test_subset_keeps_first_articles(data_root):
    bench = load_lareqa("xquad_r", data_root / "lareqa" / "xquad-r", ["en", "de"]).subset(2)
    for data in bench.languages.values():
        assert {c.article for c in data.candidates} == {0, 1}
        assert {q.article for q in data.questions} == {0, 1}


def _two_language_benchmark(tmp_path):
    en = make_lareqa_doc([["The cat sat.", "It was red."], ["Dogs bark.", "Birds sing loud."]],
                         [(0, 1, "q1", "What colour?"), (1, 0, "q2", "Who barks?"), (1, 1, "q3", "Who sings?")])
    de = make_lareqa_doc([["Die Katze sass.", "Sie war rot."], ["Hunde bellen.", "Voegel singen."]],
                         [(0, 1, "q1", "Welche Farbe?"), (1, 1, "q3", "Wer singt?")])
    for lang, doc in (("en", en), ("de", de)):
        (tmp_path / f"{lang}.json").write_text(json.dumps(doc))
    return load_lareqa("custom", tmp_path, ["en", "de"])


def test_ids_and_qrels_on_hand_made_files(tmp_path):
    bench = _two_language_benchmark(tmp_path)
    en = bench.languages["en"]
    assert [c.cid for c in en.candidates] == ["en:0:0:0", "en:0:0:1", "en:1:0:0", "en:1:0:1"]
    assert [q.qid for q in en.questions] == ["en:q1", "en:q2", "en:q3"]
    cids = [c.cid for c in bench.all_candidates()]
    qids = [q.qid for q in bench.all_questions()]

    def qrels(setting):
        return {(p.query_lang, p.doc_lang): ({qids[q]: [cids[i] for i in r] for q, r in zip(p.queries, p.relevant)},
                                             p.n_skipped) for p in bench.pools(setting)}

    mono = qrels("mono")
    assert mono[("en", "en")] == ({"en:q1": ["en:0:0:1"], "en:q2": ["en:1:0:0"], "en:q3": ["en:1:0:1"]}, 0)
    assert mono[("de", "de")] == ({"de:q1": ["de:0:0:1"], "de:q3": ["de:1:0:1"]}, 0)
    cross = qrels("cross")
    assert cross[("en", "de")] == ({"en:q1": ["de:0:0:1"], "en:q3": ["de:1:0:1"]}, 1)  # q2 has no German version
    assert cross[("de", "en")] == ({"de:q1": ["en:0:0:1"], "de:q3": ["en:1:0:1"]}, 0)
    multi = qrels("multi")
    assert multi[("en", "all")][0]["en:q1"] == ["en:0:0:1", "de:0:0:1"]
    assert multi[("en", "all")][0]["en:q2"] == ["en:1:0:0"]


def test_answer_outside_every_sentence_is_counted(tmp_path, caplog):
    doc = make_lareqa_doc([["One.", "Two."]], [(0, 0, "a", "q?"), (0, 1, "b", "q?")])
    doc["data"][0]["paragraphs"][0]["qas"][1]["answers"][0]["answer_start"] = 999
    data = parse_lareqa(doc, "en", "mem.json")
    assert len(data.questions) == 1 and data.n_unanswerable == 1
    assert "outside every sentence" in caplog.text


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d["data"][0]["paragraphs"][0].pop("sentence_breaks"), "missing field 'sentence_breaks'"),
    (lambda d: d["data"][0]["paragraphs"][0].pop("sentences"), "missing field 'sentences'"),
    (lambda d: d.pop("data"), "missing field 'data'"),
    (lambda d: d["data"][0]["paragraphs"][0]["sentence_breaks"].pop(), "'sentences' has 2 items, 'sentence_breaks' 1"),
    (lambda d: d["data"][0]["paragraphs"][0]["qas"][0].__setitem__("answers", []), "'answers' is empty"),
])
def test_bad_documents_name_file_and_field(tmp_path, mutate, message):
    doc = make_lareqa_doc([["One.", "Two."]], [(0, 0, "a", "q?")])
    mutate(doc)
    path = tmp_path / "en.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(DataError) as err:
        read_lareqa_file(path, "en")
    assert str(path) in str(err.value) and message in str(err.value)


def test_malformed_json_and_missing_file(tmp_path):
    path = tmp_path / "en.json"
    path.write_text('{"data": [')
    with pytest.raises(DataError, match="malformed JSON"):
        read_lareqa_file(path, "en")
    with pytest.raises(DataError, match="file not found"):
        read_lareqa_file(tmp_path / "de.json", "de")


def test_unknown_language_codes(tmp_path):
    doc = make_lareqa_doc([["One."]], [(0, 0, "a", "q?")])
    with pytest.raises(DataError, match="unknown language code 'english'"):
        parse_lareqa(doc, "english", "x.json")
    with pytest.raises(ConfigError, match="eval.languages: xquad_r has no language 'xx'"):
        load_lareqa("xquad_r", tmp_path, ["xx"])
