"""Bad data files are one line naming ``file:line`` (bytes that are not UTF-8, a malformed JSON line), an
empty corpus or split is refused, ``eval=mteb`` offline names the task and what to set, and a BEIR
folder's unjudged queries are neither loaded nor encoded (the metrics stay the same)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from hybrid_sweep.data.beir_format import load_beir_folder
from hybrid_sweep.data.retrieval_task import RetrievalTask, TaskPool
from hybrid_sweep.data.trec_format import load_trec_task
from hybrid_sweep.data.training import read_rows
from hybrid_sweep.errors import DataError
from hybrid_sweep.evaluation.task_evaluator import evaluate_task, evaluate_task_embeddings
from tests.conftest import ROOT
from tests.corpus_fixtures import documented_rows, write_jsonl
from tests.retrieval_fixtures import write_beir


def _beir(folder, n_docs=4):
    docs = [(f"d{i}", "", f"text number {i} about topic{i}") for i in range(n_docs)]
    return write_beir(folder, docs, [("q0", "topic0"), ("q1", "topic1")], {"test": [("q0", "d0", 1), ("q1", "d1", 1)]})


def _spoil(path, line: int, old: bytes, new: bytes):
    lines = path.read_bytes().splitlines(keepends=True)
    assert old in lines[line - 1]
    lines[line - 1] = lines[line - 1].replace(old, new)
    path.write_bytes(b"".join(lines))


@pytest.mark.parametrize("name, line, old", [("corpus.jsonl", 3, b"number"), ("queries.jsonl", 2, b"topic1"),
                                              ("qrels/test.tsv", 2, b"q0")])
def test_beir_bytes_that_are_not_utf8_name_file_and_line(tmp_path, name, line, old):
    folder = _beir(tmp_path / "beir")
    _spoil(folder / name, line, old, b"\xff" + old)
    with pytest.raises(DataError, match=rf"^{folder / name}:{line}: not UTF-8 text \(byte 0xff at column \d+\)"):
        load_beir_folder(folder, "test")


def test_beir_malformed_json_line_names_file_and_line(tmp_path):
    folder = _beir(tmp_path / "beir")
    _spoil(folder / "corpus.jsonl", 3, b'"metadata": {}}', b'"metadata": {}')
    with pytest.raises(DataError, match=rf"^{folder / 'corpus.jsonl'}:3: malformed JSON"):
        load_beir_folder(folder, "test")


def test_empty_corpus_and_empty_split_are_refused(tmp_path):
    folder = _beir(tmp_path / "beir")
    (folder / "corpus.jsonl").write_text("\n")
    with pytest.raises(DataError, match=r"corpus\.jsonl: no documents"):
        load_beir_folder(folder, "test")
    folder = _beir(tmp_path / "beir2")
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n")
    with pytest.raises(DataError, match=r"test\.tsv: no judgements"):
        load_beir_folder(folder, "test")


def test_trec_files_name_file_and_line(tmp_path):
    (tmp_path / "c.tsv").write_bytes(b"d0\thello\nd1\tw\xe9rld\n")  # latin-1, not UTF-8
    (tmp_path / "t.tsv").write_text("q0\thello\n")
    (tmp_path / "q.txt").write_text("q0 0 d0 1\n")
    with pytest.raises(DataError, match=rf"^{tmp_path / 'c.tsv'}:2: not UTF-8 text \(byte 0xe9"):
        load_trec_task("trec", tmp_path / "c.tsv", tmp_path / "t.tsv", tmp_path / "q.txt")
    (tmp_path / "c.tsv").write_text("")
    with pytest.raises(DataError, match="c.tsv: no documents"):
        load_trec_task("trec", tmp_path / "c.tsv", tmp_path / "t.tsv", tmp_path / "q.txt")
    (tmp_path / "c.tsv").write_text("d0\thello\n")
    (tmp_path / "t.tsv").write_bytes(b"q0\th\xffello\n")
    with pytest.raises(DataError, match=rf"^{tmp_path / 't.tsv'}:1: not UTF-8"):
        load_trec_task("trec", tmp_path / "c.tsv", tmp_path / "t.tsv", tmp_path / "q.txt")


@pytest.mark.parametrize("spoil", ["empty", "utf8"])
def test_cli_bad_beir_corpus_is_one_line_and_writes_nothing(tmp_path, spoil):
    """Today: an empty corpus.jsonl exited 0 with an empty metrics.parquet; a latin-1 byte gave 28 lines."""
    folder = _beir(tmp_path / "beir")
    if spoil == "empty":
        (folder / "corpus.jsonl").write_text("")
    else:
        _spoil(folder / "corpus.jsonl", 2, b"number", b"n\xfcmber")
    out = tmp_path / "out"
    res = subprocess.run([sys.executable, "-m", "hybrid_sweep.evaluate", "eval=beir", f"eval.path={folder}",
                          f"output_dir={out}", "encoder.progress=false"], cwd=ROOT, capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 2, res.stderr
    assert res.stderr.strip().splitlines() == [res.stderr.strip()]
    expected = "corpus.jsonl: no documents" if spoil == "empty" else "corpus.jsonl:2: not UTF-8 text (byte 0xfc"
    assert res.stderr.startswith(f"error: {folder}/") and expected in res.stderr
    assert not out.exists()


# --- training files ---------------------------------------------------------------------------------------
def _training_file(tmp_path, line: int, spoil: str):
    path = write_jsonl(tmp_path / "train.jsonl", documented_rows(10))
    if spoil == "utf8":
        _spoil(path, line, b"question", b"quest\xff\xfeion")
    else:
        _spoil(path, line, b"]}", b"]")
    return path


@pytest.mark.parametrize("line", [1, 6, 20])
@pytest.mark.parametrize("spoil, message", [("utf8", r"not UTF-8 text \(byte 0xff at column \d+\)"),
                                            ("json", "malformed JSON")])
def test_training_jsonl_names_file_and_line(tmp_path, line, spoil, message):
    """Through the Arrow conversion a sweep uses (today: a 57-line traceback naming no file) and ``read_rows``."""
    from tests.test_bad_training_data import _load

    path = _training_file(tmp_path, line, spoil)
    with pytest.raises(DataError, match=rf"^{path}:{line}: {message}"):
        _load(tmp_path, path)
    with pytest.raises(DataError, match=rf"^{path}:{line}: {message}"):
        read_rows(path)
    assert not [p for p in (tmp_path / "cache").rglob("*") if p.is_file() and not p.name.endswith(".lock")]


# --- eval=mteb offline ------------------------------------------------------------------------------------
def test_mteb_offline_is_one_line_naming_the_task_and_what_to_set(tmp_path, monkeypatch):
    mteb = pytest.importorskip("mteb")
    from omegaconf import OmegaConf

    from hybrid_sweep.evaluation.mteb_bridge import evaluate_mteb
    from tests.test_mteb_bridge import LookupEncoder

    task = mteb.get_task("NanoNFCorpusRetrieval")

    def offline(*args, **kwargs):  # what datasets raises with HF_HUB_OFFLINE=1 and nothing cached
        raise ConnectionError(f"Couldn't reach '{task.metadata.dataset['path']}' on the Hub (OfflineModeIsEnabled)")

    monkeypatch.setattr(task, "load_data", offline)
    monkeypatch.setattr(mteb, "get_tasks", lambda tasks: [task])
    cfg = OmegaConf.create({"tasks": ["NanoNFCorpusRetrieval"]})
    with pytest.raises(DataError) as err:
        evaluate_mteb(cfg, LookupEncoder(), tmp_path / "out")
    assert not (tmp_path / "out").exists()  # nothing half-written
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith("MTEB task NanoNFCorpusRetrieval (mteb/NanoNFCorpusRetrieval): cannot load its data")
    assert "HF_HOME" in message and "eval.path" in message


# --- encode only what is scored ---------------------------------------------------------------------------
class CountingEncoder:
    """Fixed embeddings per text (a hash of the text); records every text it was handed."""

    device, name = torch.device("cpu"), "counting"

    def __init__(self):
        self.texts = {"query": [], "passage": []}
        self.model = type("M", (), {"max_seq_length": 128})()

    def encode(self, texts, kind, desc=None):
        self.texts[kind].extend(texts)
        rows = [torch.Generator().manual_seed(sum(map(ord, t.split(":")[-1].strip())) % 1000) for t in texts]
        return torch.nn.functional.normalize(torch.stack([torch.randn(16, generator=g) for g in rows]), dim=1)


def _scifact_shaped(folder, n_queries=40, judged=12, n_docs=30):
    """queries.jsonl with every split's queries; qrels/test judges ``judged`` of them, train the rest."""
    docs = [(f"d{i}", "", f"passage {i} words w{i % 7}") for i in range(n_docs)]
    queries = [(f"q{i}", f"words w{i % 7} {i}") for i in range(n_queries)]
    test = [(f"q{i}", f"d{(3 * i + k) % n_docs}", 1) for i in range(judged) for k in range(2)]
    train = [(f"q{i}", f"d{i % n_docs}", 1) for i in range(judged, n_queries)]
    return write_beir(folder, docs, queries, {"test": test, "train": train})


def test_only_the_judged_queries_are_loaded_and_encoded(tmp_path):
    folder = _scifact_shaped(tmp_path / "scifact")
    task = load_beir_folder(folder, "test")
    assert len(task.query_sets["en"]) == 12  # 40 in the file
    enc = CountingEncoder()
    out = evaluate_task(task, enc, output_dir=tmp_path / "out")
    assert len(enc.texts["query"]) == 12 and len(enc.texts["passage"]) == 30
    # the same metrics as evaluating every query of the file (the unjudged ones were never scored)
    full_q = [json.loads(line) for line in (folder / "queries.jsonl").read_text().splitlines()]
    from hybrid_sweep.data.retrieval_task import QueryTable

    every = QueryTable([q["_id"] for q in full_q], [q["text"] for q in full_q], "en")
    full = RetrievalTask(task.name, task.corpora, {"en": every},
                         [TaskPool("mono", "en", "en", "en", ("en",), task.pools[0].qrels)])
    enc_full = CountingEncoder()
    q = {"en": enc_full.encode(every.texts, "query")}
    d = {"en": enc_full.encode(task.corpora["en"].passages(), "passage")}
    ref = evaluate_task_embeddings(full, q, d)
    assert len(enc_full.texts["query"]) == 40
    cols = ["setting", "query_lang", "metric", "value", "n_queries", "n_skipped"]
    assert out.metrics[cols].equals(ref.metrics[cols])
