"""The encoder's max tokens reach every metric row (``max_length``): how a task's length is chosen
(a number, the model's own limit, or the encoder's), and results tables from before the column existed
stay readable."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from hybrid_sweep import results_schema
from hybrid_sweep.data.retrieval_task import DocTable, QueryTable, mono_task
from hybrid_sweep.data.benchmark_loading import load_retrieval_tasks
from hybrid_sweep.errors import ConfigError, DataError
from hybrid_sweep.evaluation.task_evaluator import encoding_length, evaluate_task, native_max_length
from tests.conftest import compose
from tests.retrieval_fixtures import write_beir


class StubModel(torch.nn.Module):
    """A model with a position table (BERT style, or RoBERTa style with a padding index)."""

    def __init__(self, positions: int, padding_idx: int | None = None):
        super().__init__()
        self.inner = torch.nn.Module()
        self.inner.embeddings = torch.nn.Module()
        self.inner.embeddings.position_embeddings = torch.nn.Embedding(positions, 4, padding_idx=padding_idx)
        self.max_seq_length = 128


class StubEncoder:
    def __init__(self, model):
        self.model, self.device, self.name = model, torch.device("cpu"), "stub"
        self.seen_lengths = []

    def encode(self, texts, kind, desc=None):
        self.seen_lengths.append(self.model.max_seq_length)
        g = torch.Generator().manual_seed(len(texts))
        return torch.nn.functional.normalize(torch.randn(len(texts), 8, generator=g), dim=1)


def _task(max_length):
    docs = DocTable([f"d{i}" for i in range(5)], [f"text {i}" for i in range(5)], lang="en")
    queries = QueryTable(["q1", "q2"], ["one", "two"], lang="en")
    return mono_task("toy", docs, queries, {"q1": {"d1": 1}, "q2": {"d2": 2}}, max_length=max_length)


def test_native_max_length_reads_the_position_table():
    assert native_max_length(StubModel(512)) == 512  # BERT / mE5-small
    assert native_max_length(StubModel(514, padding_idx=1)) == 512  # XLM-R: positions start at padding_idx + 1
    assert native_max_length(torch.nn.Linear(2, 2)) is None


@pytest.mark.parametrize("setting, expected", [(None, 128), ("model", 512), (300, 300)])
def test_a_task_encodes_at_its_length_and_the_rows_say_so(setting, expected):
    enc = StubEncoder(StubModel(514, padding_idx=1))
    task = _task(setting)
    assert encoding_length(task, enc) == expected
    out = evaluate_task(task, enc)
    assert set(enc.seen_lengths) == {expected} and enc.model.max_seq_length == 128  # restored afterwards
    assert out.metrics["max_length"].dtype == "Int64" and set(out.metrics["max_length"]) == {expected}


def test_a_bad_length_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="^eval.max_length:"):
        encoding_length(_task("longest"), StubEncoder(StubModel(512)))
    folder = write_beir(tmp_path / "b", [("1", "", "a")], [("q1", "a")], {"test": [("q1", "1", 1)]})
    for bad in ("maybe", "0", "true", "100000"):
        with pytest.raises(ConfigError, match=r"^eval.max_length: must be tokens in \[1, 8192\], model or null"):
            load_retrieval_tasks(compose("eval=beir", f"eval.path={folder}", f"eval.max_length={bad}").eval, {})
    (task,) = load_retrieval_tasks(compose("eval=beir", f"eval.path={folder}", "eval.max_length=256").eval, {})
    assert task.max_length == 256


def _results(frame: pd.DataFrame) -> pd.DataFrame:
    for col in ("run_id", "sweep", "variant", *results_schema.axes()):
        frame[col] = "x"
    return frame


def test_results_tables_without_max_length_stay_readable(tmp_path):
    old = _results(pd.DataFrame({"benchmark": ["b"], "setting": ["mono"], "query_lang": ["en"], "doc_lang": ["en"],
                                 "metric": ["map"], "value": [0.5], "n_queries": [3], "n_skipped": [0],
                                 "depth": ["full"]}))
    new = old.assign(max_length=pd.array([512], dtype="Int64"))
    results_schema.write_table(tmp_path / "old.parquet", old, "results")  # rows of runs from before the column
    table, _ = results_schema.read_table(tmp_path / "old.parquet")
    assert table["max_length"].dtype == "Int64" and table["max_length"].isna().all()
    results_schema.write_table(tmp_path / "mixed.parquet", pd.concat([old, new], ignore_index=True), "results")
    table, _ = results_schema.read_table(tmp_path / "mixed.parquet")
    assert table["max_length"].tolist() == [pd.NA, 512]
    with pytest.raises(DataError, match="column .max_length. must be integer"):
        results_schema.write_table(tmp_path / "bad.parquet", old.assign(max_length=["long"]), "results")


def test_a_max_length_above_the_models_positions_is_one_line():
    """issue 20: `encoder.max_length=1000000` can only be a mistake; the model's own limit is named."""
    from hybrid_sweep.encoders import check_length
    from hybrid_sweep.errors import ConfigError

    check_length(512, StubModel(512))  # at the limit: fine
    check_length(None, StubModel(512))
    check_length(10_000, torch.nn.Linear(2, 2))  # no position table: nothing to check
    with pytest.raises(ConfigError, match=r"^encoder.max_length: 1024 is above the model's limit of 512 tokens"):
        check_length(1024, StubModel(514, padding_idx=1))
