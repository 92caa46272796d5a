"""Setups of the bad-input catalogue (tests/bad_input_catalogue.py): each writes a bad file into a row's
folder in the exact layout its loader reads (training JSONL, BEIR folder, LAReQA data root, model folder,
a finished results root)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.corpus_fixtures import documented_rows, write_jsonl
from tests.retrieval_fixtures import write_beir

ROOT = Path(__file__).resolve().parents[1]
# Every row runs with these (no network; nothing may download).
OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "WANDB_MODE": "offline"}


def _jsonl(tmp: Path, rows=None) -> Path:
    return write_jsonl(tmp / "train.jsonl", documented_rows(10) if rows is None else rows)


def _spoil(path: Path, line: int, old: bytes, new: bytes) -> None:
    lines = path.read_bytes().splitlines(keepends=True)
    assert old in lines[line - 1], (path, line, old)
    lines[line - 1] = lines[line - 1].replace(old, new, 1)
    path.write_bytes(b"".join(lines))


def train_jsonl(tmp: Path) -> None:
    _jsonl(tmp)


def train_jsonl_not_utf8(tmp: Path) -> None:
    _spoil(_jsonl(tmp), 6, b"question", b"quest\xff\xfeion")


def train_jsonl_malformed(tmp: Path) -> None:
    _spoil(_jsonl(tmp), 3, b"]}", b"]")


def train_jsonl_without_group(tmp: Path) -> None:
    rows = documented_rows(10)
    rows[0].pop("group")
    _jsonl(tmp, rows)


def train_jsonl_empty_lang(tmp: Path) -> None:
    rows = documented_rows(10)
    rows[0]["lang"] = ""
    _jsonl(tmp, rows)


def train_jsonl_english(tmp: Path) -> None:
    rows = documented_rows(10)
    rows[0]["lang"] = "english"
    _jsonl(tmp, rows)


def train_jsonl_empty(tmp: Path) -> None:
    (tmp / "train.jsonl").write_text("")


def beir(tmp: Path, ids=("d0", "d1", "d2", "d3")) -> Path:
    docs = [(d, "", f"text number {i} about topic{i}") for i, d in enumerate(ids)]
    return write_beir(tmp / "beir", docs, [("q0", "topic0"), ("q1", "topic1")],
                      {"test": [("q0", ids[0], 1), ("q1", ids[1], 1)]})


def beir_not_utf8(tmp: Path) -> None:
    _spoil(beir(tmp) / "corpus.jsonl", 2, b"number", b"n\xfcmber")


def beir_empty_corpus(tmp: Path) -> None:
    (beir(tmp) / "corpus.jsonl").write_text("")


def beir_malformed(tmp: Path) -> None:
    _spoil(beir(tmp) / "corpus.jsonl", 3, b'"metadata": {}}', b'"metadata": {}')


def beir_id_with_space(tmp: Path) -> None:
    beir(tmp, ids=("d0", "doc 1", "d2", "d3"))


def beir_queries_not_utf8(tmp: Path) -> None:
    _spoil(beir(tmp) / "queries.jsonl", 2, b"topic1", b"\xfftopic1")


def beir_empty_qrels(tmp: Path) -> None:
    (beir(tmp) / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n")


def _lareqa(tmp: Path, doc) -> None:
    folder = tmp / "data" / "lareqa" / "xquad-r"
    folder.mkdir(parents=True)
    (folder / "en.json").write_text(doc if isinstance(doc, str) else json.dumps(doc))


def _lareqa_doc():
    from tests.conftest import make_lareqa_doc

    return make_lareqa_doc([["One.", "Two."]], [(0, 0, "a", "q?")])


def lareqa_malformed(tmp: Path) -> None:
    _lareqa(tmp, '{"data": [')


def lareqa_without_breaks(tmp: Path) -> None:
    doc = _lareqa_doc()
    del doc["data"][0]["paragraphs"][0]["sentence_breaks"]
    _lareqa(tmp, doc)


def lareqa_lengths(tmp: Path) -> None:
    doc = _lareqa_doc()
    doc["data"][0]["paragraphs"][0]["sentence_breaks"].pop()
    _lareqa(tmp, doc)


def lareqa_no_answers(tmp: Path) -> None:
    doc = _lareqa_doc()
    doc["data"][0]["paragraphs"][0]["qas"][0]["answers"] = []
    _lareqa(tmp, doc)


def empty_model_folder(tmp: Path) -> None:
    (tmp / "model").mkdir()


def model_folder_with_pickle(tmp: Path) -> None:
    """A transformers folder whose weights are a pickle that would create a file when loaded."""
    import torch
    from transformers import BertConfig, BertModel

    cfg = BertConfig(vocab_size=40, hidden_size=8, num_hidden_layers=1, num_attention_heads=1, intermediate_size=16)
    BertModel(cfg).save_pretrained(tmp / "model")
    (tmp / "model" / "model.safetensors").unlink()
    torch.save({"embeddings.word_embeddings.weight": _Touch(tmp / "PWNED")}, tmp / "model" / "pytorch_model.bin")


class _Touch:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (str(self.path), "w"))


def a_file(tmp: Path) -> None:
    (tmp / "afile").write_text("not a folder\n")


def earlier_results(tmp: Path) -> None:
    (tmp / "out").mkdir()
    (tmp / "out" / "metrics.parquet").write_bytes(b"earlier results")


def model_folder_with_code(tmp: Path) -> None:
    folder = tmp / "model"
    folder.mkdir()
    (folder / "modules.json").write_text('[{"idx": 0, "name": "0", "path": "", "type": "custom_module.Encoder"}]')
    (folder / "custom_module.py").write_text(f"open({str(tmp / 'PWNED')!r}, 'w')\n")


FINISHED = "_finished_root"  # built once per driver run (a real one-run sweep), copied into rows that need it
QUICK = ("train.max_steps=2", "train.batch_size=8", "train.eval_every=0", "encoder.progress=false",
         "evals.synthetic.subset.articles=2")


def finished_root(tmp: Path) -> Path:
    """A copy of a finished one-run results root (built by the real sweep once, next to the rows)."""
    cache = tmp.parent / FINISHED
    if not (cache / "results.parquet").exists():
        shutil.rmtree(cache, ignore_errors=True)
        res = subprocess.run([sys.executable, "-m", "hybrid_sweep", *QUICK, f"results_root={cache}"], cwd=ROOT,
                             capture_output=True, text=True, env={**os.environ, **OFFLINE})
        assert res.returncode == 0 and (cache / "results.parquet").exists(), (res.stdout + res.stderr)[-3000:]
    shutil.copytree(cache, tmp / "root", ignore=shutil.ignore_patterns("hydra"))
    return tmp / "root"


def truncated_metrics(tmp: Path) -> None:
    target = next(finished_root(tmp).glob("runs/*/eval/synthetic/*/metrics.parquet"))
    target.write_bytes(target.read_bytes()[:1000])
    (tmp / "target").write_text(str(target))


def root_with_a_runs_folder(tmp: Path) -> None:
    (tmp / "root" / "runs").mkdir(parents=True)


def folder(tmp: Path) -> None:
    (tmp / "root").mkdir()


def corrupt_run_config(tmp: Path) -> None:
    config = next(finished_root(tmp).glob("runs/*/config.yaml"))
    config.write_text("train: [unclosed\n")
