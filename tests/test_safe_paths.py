"""Config and data values that become parts of file names cannot place a file outside its output folder
(``io.inside``), and ids with whitespace never reach a TREC file (refused with the file and line)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from hybrid_sweep.data.beir_format import load_beir_folder
from hybrid_sweep.data.retrieval_task import DocTable, QueryTable, RetrievalTask, TaskPool
from hybrid_sweep.data.trec_format import load_trec_task
from hybrid_sweep.errors import ConfigError, DataError
from hybrid_sweep.evaluation.task_evaluator import evaluate_task_embeddings
from hybrid_sweep.evaluation.trec_io import pool_file, read_run, write_qrels, write_run
from hybrid_sweep.io import inside, safe_part
from tests.conftest import ROOT
from tests.retrieval_fixtures import write_beir

ESCAPES = ["../x", "../../../../EVIL_LANG", "a/b", "/abs/path", "", "..", ".hidden", "a\x00b", "a b", "x\\..\\y"]


def _files_outside(folder, root) -> list[str]:
    """Every file under ``root`` that is not under ``folder`` (the tests' tmp_path holds both)."""
    return sorted(str(p) for p in root.rglob("*") if p.is_file() and folder not in p.parents)


def _beir(folder, doc_id="d0", query_id="q0"):
    return write_beir(folder, [(doc_id, "t", "hello world"), ("d1", "t", "other text")],
                      [(query_id, "hello"), ("q1", "other"), ("q9", "never judged")],
                      {"test": [(query_id, doc_id, 1), ("q1", "d1", 1)]})


@pytest.mark.parametrize("part", ESCAPES)
def test_inside_refuses_every_escape_with_one_line(tmp_path, part):
    with pytest.raises(ConfigError, match=r"^eval\.lang: ") as err:
        inside(tmp_path, "runs", part, field="eval.lang", suffix=".trec")
    assert "\n" not in str(err.value)
    with pytest.raises(DataError, match=f"^{tmp_path}: "):
        inside(tmp_path, "qrels", "bench", part)


def test_inside_accepts_real_names(tmp_path):
    for name in ("en", "zho_Hans", "xquad_r", "NanoNFCorpusRetrieval", "synthetic-test", "mlqa-r", "v1.2", "a+b@c=d"):
        assert inside(tmp_path, "runs", name, suffix=".trec") == tmp_path / "runs" / f"{name}.trec"
        assert safe_part(name) == name


@pytest.mark.parametrize("which", ["benchmark", "setting", "query_lang", "doc_lang"])
@pytest.mark.parametrize("part", ["../x", "a/b", "/abs", "", ".."])
def test_pool_file_checks_each_part(tmp_path, which, part):
    parts = {"benchmark": "b", "setting": "mono", "query_lang": "en", "doc_lang": "en", which: part}
    for kind in ("runs", "qrels"):
        with pytest.raises(DataError):
            pool_file(tmp_path / "out", kind, *parts.values())


def _task(name="toy", lang="xx"):
    docs = DocTable([f"d{i}" for i in range(6)], [f"t{i}" for i in range(6)], lang=lang)
    queries = QueryTable(["q0", "q1"], ["a", "b"], lang=lang)
    return RetrievalTask(name, {"c": docs}, {"q": queries},
                         [TaskPool("mono", lang, lang, "q", ("c",), {"q0": {"d1": 1}, "q1": {"d2": 1}})])


@pytest.mark.parametrize("field", ["name", "lang"])
@pytest.mark.parametrize("bad", ["../../escaped", "/tmp/abs", "a/b", ""])
def test_task_evaluator_writes_nothing_outside(tmp_path, field, bad):
    """A task built by hand (no loader checked it) still cannot write outside ``output_dir``."""
    out = tmp_path / "deep" / "er" / "out"
    task = _task(**{field: bad})
    q, d = torch.eye(2, 6), torch.eye(6)
    with pytest.raises(DataError):
        evaluate_task_embeddings(task, {"q": q}, {"c": d}, output_dir=out)
    assert _files_outside(out, tmp_path) == []


def test_pooled_evaluator_writes_nothing_outside(tmp_path):
    from hybrid_sweep.data.synthetic import synthetic_benchmark
    from hybrid_sweep.evaluation.evaluator import evaluate_encoder
    from tests.conftest import compose

    cfg = compose()
    bench = synthetic_benchmark(dict(cfg.synthetic), "test", None).subset(2)
    bench.name = "../../escaped"

    class Fixed:  # the encoder interface evaluate_encoder needs
        device, name = torch.device("cpu"), "fixed"

        def encode(self, texts, kind, desc=None):
            return torch.nn.functional.normalize(torch.randn(len(texts), 8, generator=torch.Generator().manual_seed(0)), dim=1)

    out = tmp_path / "a" / "b" / "out"
    with pytest.raises(DataError, match="cannot be part of a file name"):
        evaluate_encoder(bench, Fixed(), output_dir=out)
    assert _files_outside(out, tmp_path) == []


@pytest.mark.parametrize("field, kwargs", [
    ("eval.lang", {"lang": "../../../../EVIL_LANG"}), ("eval.lang", {"lang": "a/b"}), ("eval.lang", {"lang": ""}),
    ("eval.benchmark", {"name": "../evil"}), ("eval.benchmark", {"name": "/abs"}),
    ("eval.split", {"split": "../../escape"}), ("eval.split", {"split": "/etc/passwd"}),
])
def test_beir_loader_refuses_unsafe_config_values(tmp_path, field, kwargs):
    folder = _beir(tmp_path / "beir")
    with pytest.raises(ConfigError, match=f"^{field}: "):
        load_beir_folder(folder, **{"split": "test", **kwargs})


def test_trec_loader_refuses_unsafe_config_values(tmp_path):
    (tmp_path / "c.tsv").write_text("d0\thello\n")
    (tmp_path / "t.tsv").write_text("q0\thello\n")
    (tmp_path / "q.txt").write_text("q0 0 d0 1\n")
    args = (tmp_path / "c.tsv", tmp_path / "t.tsv", tmp_path / "q.txt")
    with pytest.raises(ConfigError, match="^eval.lang: "):
        load_trec_task("trec", *args, lang="../x")
    with pytest.raises(ConfigError, match="^eval.benchmark: "):
        load_trec_task("a/b", *args, lang="en")


def test_cli_lang_traversal_is_one_line_and_writes_nothing(tmp_path):
    """The reported fault: eval.lang=../../../../EVIL_LANG wrote EVIL_LANG.trec four folders up."""
    folder = _beir(tmp_path / "beir")
    out = tmp_path / "a" / "b" / "c" / "d" / "out"
    res = subprocess.run([sys.executable, "-m", "hybrid_sweep.evaluate", "eval=beir", f"eval.path={folder}",
                          "eval.lang=../../../../EVIL_LANG", f"output_dir={out}", "encoder.progress=false"],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert res.returncode == 2
    assert res.stderr.strip().splitlines() == [res.stderr.strip()]
    assert res.stderr.startswith("error: eval.lang: '../../../../EVIL_LANG' ") and "file name" in res.stderr
    assert not list(tmp_path.rglob("EVIL*")) and not (tmp_path / "a").exists()


# --- ids with whitespace --------------------------------------------------------------------------------
def test_doc_id_with_whitespace_is_refused_with_file_and_line(tmp_path):
    folder = _beir(tmp_path / "beir", doc_id="doc 0")
    with pytest.raises(DataError, match=r"corpus\.jsonl:1: id 'doc 0' is empty or holds whitespace"):
        load_beir_folder(folder, "test")


def test_query_id_with_whitespace_is_refused_with_file_and_line(tmp_path):
    folder = _beir(tmp_path / "beir", query_id="q 0")
    with pytest.raises(DataError, match=r"queries\.jsonl:1: id 'q 0' is empty or holds whitespace"):
        load_beir_folder(folder, "test")


def test_trec_writers_refuse_whitespace_ids_and_tags_stay_one_column(tmp_path):
    with pytest.raises(DataError, match="'doc 0' holds whitespace"):
        write_qrels(tmp_path / "x.qrels", {"q0": {"doc 0": 1}})
    with pytest.raises(DataError, match="'q 0' holds whitespace"):
        write_run(tmp_path / "x.trec", np.array(["q 0"]), np.array(["d0"]), np.array([1]), np.array([0.5]), "t")
    assert not list(tmp_path.iterdir())
    write_run(tmp_path / "x.trec", np.array(["q0"]), np.array(["d0"]), np.array([1]), np.array([0.5]), "my model")
    assert (tmp_path / "x.trec").read_text() == "q0 Q0 d0 1 0.5 my_model\n"
    assert read_run(tmp_path / "x.trec") == {"q0": {"d0": 0.5}}
