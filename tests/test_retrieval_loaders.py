"""Loaders of the generic task: BEIR folders, TREC files, MTEB-layout repositories (local, via datasets)."""

import pandas as pd
import pytest

from hybrid_sweep.data.beir_format import load_beir_folder
from hybrid_sweep.data.hf_retrieval import load_mteb_task
from hybrid_sweep.data.trec_format import load_trec_task
from hybrid_sweep.errors import DataError
from tests.retrieval_fixtures import mteb_subset, write_beir, write_mteb_repo

CORPUS = [("MED-10", "Statins", "statins lower cholesterol"), ("MED-2", "", "aspirin and pain"),
          ("MED-3", "Diet", "fibre and the gut")]
QUERIES = [("PLAIN-1", "do statins work"), ("PLAIN-2", "aspirin"), ("PLAIN-3", "unjudged here")]


def test_beir_folder_graded_qrels_skips_and_titles(tmp_path):
    folder = write_beir(tmp_path / "nfc", CORPUS, QUERIES,
                        {"test": [("PLAIN-1", "MED-10", 2), ("PLAIN-1", "MED-3", 1), ("PLAIN-2", "MED-2", 0)],
                         "dev": [("PLAIN-3", "MED-3", 1)]})
    task = load_beir_folder(folder, "test")
    pool = task.pools[0]
    assert (task.name, pool.setting, pool.query_lang) == ("nfc", "mono", "en")
    assert pool.qrels == {"PLAIN-1": {"MED-10": 2, "MED-3": 1}, "PLAIN-2": {"MED-2": 0}}
    assert task.corpora["en"].passages() == ["Statins statins lower cholesterol", "aspirin and pain", "Diet fibre and the gut"]
    assert load_beir_folder(folder, "dev").pools[0].qrels == {"PLAIN-3": {"MED-3": 1}}
    with pytest.raises(DataError, match=r"qrels/train.tsv: file not found; splits here: dev, test"):
        load_beir_folder(folder, "train")


@pytest.mark.parametrize("mutate,message", [
    (lambda f: (f / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nPLAIN-1\tMED-9\t1\n"),
     r"qrels/test.tsv:2: qrels row names unknown document id 'MED-9'"),
    (lambda f: (f / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nPLAIN-1\tMED-2\t1\nPLAIN-7\tMED-2\t1\n"),
     r"qrels/test.tsv:3: qrels row names unknown query id 'PLAIN-7'"),
    (lambda f: (f / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nPLAIN-1 MED-2 1\n"),
     r"qrels/test.tsv:2: expected 3 tab-separated columns"),
    (lambda f: (f / "qrels" / "test.tsv").write_text("PLAIN-1\tMED-2\t1\n"), r"qrels/test.tsv:1: expected the header"),
    (lambda f: (f / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nPLAIN-1\tMED-2\t-1\n"),
     r"qrels/test.tsv:2: relevance '-1' must be an integer >= 0"),
    (lambda f: (f / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nPLAIN-1\tMED-2\t1\nPLAIN-1\tMED-2\t2\n"),
     r"qrels/test.tsv:3: duplicate qrels pair"),
    (lambda f: f.joinpath("corpus.jsonl").write_text(f.joinpath("corpus.jsonl").read_text() + '{"_id": "MED-2", "text": "again"}\n'),
     r"corpus.jsonl:4: duplicate id 'MED-2' \(first at line 2\)"),
    (lambda f: f.joinpath("queries.jsonl").write_text('{"_id": "PLAIN-1", "text": "x"}\n{"_id": "PLAIN-2", \n'),
     r"queries.jsonl:2: malformed JSON"),
    (lambda f: f.joinpath("corpus.jsonl").write_text('{"_id": "MED-2"}\n'), r"corpus.jsonl:1: missing field 'text'"),
])
def test_beir_errors_name_file_and_line(tmp_path, mutate, message):
    folder = write_beir(tmp_path / "b", CORPUS, QUERIES, {"test": [("PLAIN-1", "MED-10", 1)]})
    mutate(folder)
    with pytest.raises(DataError, match=message):
        load_beir_folder(folder, "test")


def test_trec_topics_tsv_and_sgml_with_qrels(tmp_path):
    (tmp_path / "docs.tsv").write_text("39#0\tAlbedo is reflectance\n39#1\tIt is a ratio\n7#0\tOther\n")
    (tmp_path / "topics.tsv").write_text("0\twhat is albedo\n1\twhat is other\n")
    (tmp_path / "qrels.txt").write_text("0 Q0 39#0 1\n0 Q0 7#0 0\n1\t0\t7#0\t1\n")
    task = load_trec_task("miracl_en", tmp_path / "docs.tsv", tmp_path / "topics.tsv", tmp_path / "qrels.txt", "en")
    assert task.pools[0].qrels == {"0": {"39#0": 1, "7#0": 0}, "1": {"7#0": 1}}
    (tmp_path / "topics.sgml").write_text(
        "<top>\n<num> Number: 0\n<title> what is\n albedo\n<desc> Description:\nlong\n</top>\n"
        "<top>\n<num> Number: 1\n<title> Topic: other\n</top>\n")
    task = load_trec_task("t", tmp_path / "docs.tsv", tmp_path / "topics.sgml", tmp_path / "qrels.txt")
    assert task.query_sets["und"].texts == ["what is albedo", "other"]
    (tmp_path / "bad.txt").write_text("0 Q0 39#0 1\n0 Q0 39#9 1\n")
    with pytest.raises(DataError, match=r"bad.txt:2: qrels row names unknown document id '39#9'"):
        load_trec_task("t", tmp_path / "docs.tsv", tmp_path / "topics.tsv", tmp_path / "bad.txt")


def test_mteb_layout_per_language_subsets(tmp_path):
    repo = write_mteb_repo(tmp_path / "MIRACLRetrieval", {**mteb_subset("ar"), **mteb_subset("sw", n_docs=5)})
    task = load_mteb_task("miracl", str(repo), "dev", ["ar", "sw"])
    assert [(p.query_lang, p.doc_lang, p.corpora) for p in task.pools] == [("ar", "ar", ("ar",)), ("sw", "sw", ("sw",))]
    assert len(task.corpora["sw"]) == 5 and task.corpora["ar"].passages()[0] == "title 0 ar document number 0"
    assert task.pools[0].qrels["ar-q0"] == {"ar-d0": 1, "ar-d5": 0}
    with pytest.raises(DataError, match=r"no config 'fi-corpus'"):
        load_mteb_task("miracl", str(repo), "dev", ["fi"])
    with pytest.raises(DataError, match=r"no split 'test' \(eval.split\)"):
        load_mteb_task("miracl", str(repo), "test", ["ar"])


def test_mteb_layout_monolingual_with_beir_style_splits_and_float_scores(tmp_path):
    """mteb/nfcorpus: configs corpus / queries (splits named after them, `_id`) and `default` qrels (float)."""
    sub = mteb_subset("x", split="test", score_dtype="float64")
    repo = write_mteb_repo(tmp_path / "nfcorpus", {
        "corpus": {"corpus": sub["x-corpus"]["test"]}, "queries": {"queries": sub["x-queries"]["test"]},
        "default": {"test": sub["x-qrels"]["test"], "train": sub["x-qrels"]["test"].iloc[:1]}})
    task = load_mteb_task("nfcorpus", str(repo), "test", None, "en")
    assert task.pools[0].query_lang == "en" and task.pools[0].qrels["x-q1"] == {"x-d1": 1}
    assert len(load_mteb_task("nfcorpus", str(repo), "train", None).pools[0].qrels) == 1


def test_mteb_layout_unknown_id_is_one_error(tmp_path):
    sub = mteb_subset("ar")
    sub["ar-qrels"]["dev"] = pd.DataFrame({"query-id": ["ar-q0", "ar-q1"], "corpus-id": ["ar-d0", "nope"], "score": [1, 1]})
    repo = write_mteb_repo(tmp_path / "r", sub)
    with pytest.raises(DataError, match=r"ar-qrels row:2: qrels row names unknown document id 'nope'"):
        load_mteb_task("r", str(repo), "dev", ["ar"])


@pytest.mark.parametrize("lang", ["zh_cn", "no"])  # MKQA's subset names (mteb/MKQARetrieval, split train)
def test_mteb_layout_reads_as_mtebs_own_loader(tmp_path, lang):
    """The repository layout we read is the one mteb 2.x's own RetrievalDatasetLoader reads for
    MKQARetrieval / MIRACLRetrieval / MLDR: same documents, titles, judged queries and qrels."""
    loaders = pytest.importorskip("mteb.abstasks.retrieval_dataset_loaders")
    sub = mteb_subset(lang, split="train")
    sub[f"{lang}-corpus"]["train"].loc[1, "title"] = ""  # MKQA's answer strings have empty titles
    queries = sub[f"{lang}-queries"]["train"]
    sub[f"{lang}-queries"]["train"] = pd.concat([queries, pd.DataFrame({"_id": [f"{lang}-unjudged"],
                                                                         "text": ["no answer"]})])
    repo = write_mteb_repo(tmp_path / "MKQARetrieval", sub)
    theirs = loaders.RetrievalDatasetLoader(hf_repo=str(repo), revision=None, split="train", config=lang).load()
    ours = load_mteb_task("mkqa", str(repo), "train", [lang])
    (pool,) = ours.pools
    docs, qs = ours.corpora[pool.corpora[0]], ours.query_sets[pool.queries]
    assert {i: (t, x) for i, t, x in zip(docs.ids, docs.titles, docs.texts)} == \
        {r["id"]: (r["title"], r["text"]) for r in theirs["corpus"]}
    judged = {i: x for i, x in zip(qs.ids, qs.texts) if i in pool.qrels}
    assert judged == {r["id"]: r["text"] for r in theirs["queries"]} and f"{lang}-unjudged" not in judged
    assert pool.qrels == theirs["relevant_docs"]
