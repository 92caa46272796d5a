"""The evaluation entry point's dispatch: MTEB tasks through ``eval=mteb`` and corpora through the
on-disk embedding store (``eval.embedding_store=true``), both end to end through the evaluate CLI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tests.retrieval_fixtures import write_beir

ROOT = Path(__file__).resolve().parents[1]


def _cli(*overrides):
    return subprocess.run([sys.executable, "-m", "hybrid_sweep.evaluate", *overrides, "encoder.progress=false"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_eval_mteb_runs_a_mock_task_into_tidy_rows(tmp_path):
    pytest.importorskip("mteb", reason="mteb not installed (pip install 'hybrid_sweep[mteb]')")
    from hybrid_sweep.encoders.tiny import build_tiny_model

    model = tmp_path / "model"  # a saved model folder, as a trained run leaves it
    build_tiny_model(["This is a test sentence", "a positive sentence"], model, vocab_size=200, layers=1).save(str(model))
    out = tmp_path / "ev"
    res = _cli("eval=mteb", "eval.tasks=[mteb.mocks.mock_tasks.retrieval:MockRetrievalTask]",
               "eval.metrics=[ndcg_at_10]", f"encoder.path={model}", f"output_dir={out}")
    assert res.returncode == 0, res.stderr[-2000:]
    m = pd.read_parquet(out / "metrics.parquet")
    assert set(m.metric) == {"ndcg_cut_10"} and set(m.benchmark) == {"MockRetrievalTask"}
    assert m.value.between(0, 1).all() and len(m) >= 1
    assert list((out / "mteb").rglob("MockRetrievalTask.json"))


def _beir(tmp_path):
    docs = [(f"d{i}", "", f"word{i} shared text {i % 3}") for i in range(40)]
    queries = [(f"q{i}", f"word{i} question") for i in range(12)]
    return write_beir(tmp_path / "toy", docs, queries, {"test": [(f"q{i}", f"d{i}", 1) for i in range(12)]})


def test_embedding_store_is_filled_once_and_gives_the_same_ranking(tmp_path):
    folder = _beir(tmp_path)
    plain = _cli("eval=beir", f"eval.path={folder}", f"output_dir={tmp_path / 'plain'}")
    assert plain.returncode == 0, plain.stderr[-2000:]
    outs = []
    for name in ("stored1", "stored2"):
        res = _cli("eval=beir", f"eval.path={folder}", "eval.embedding_store=true", f"output_dir={tmp_path / name}")
        assert res.returncode == 0, res.stderr[-2000:]
        outs.append(pd.read_parquet(tmp_path / name / "metrics.parquet"))
    manifests = list((tmp_path / "stored1" / "embeddings").rglob("manifest.json"))
    assert len(manifests) == 1  # one model x one corpus entry, complete
    ref = pd.read_parquet(tmp_path / "plain" / "metrics.parquet").set_index(["query_lang", "metric"]).value
    for got in outs:  # fp16 storage of unit vectors: rankings of this toy corpus do not change
        pd.testing.assert_series_equal(got.set_index(["query_lang", "metric"]).value, ref, atol=1e-6)
