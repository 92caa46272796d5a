"""The MTEB bridge, offline: mteb's own mock retrieval tasks and a small in-memory task with known answers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

mteb = pytest.importorskip("mteb", reason="mteb not installed (pip install 'hybrid_sweep[mteb]')")

from datasets import Dataset  # noqa: E402
from mteb.abstasks.retrieval import AbsTaskRetrieval  # noqa: E402
from mteb.abstasks.retrieval_dataset_loaders import RetrievalSplitData  # noqa: E402
from mteb.abstasks.task_metadata import TaskMetadata  # noqa: E402
from mteb.mocks.mock_tasks.retrieval import (  # noqa: E402
    MockMultilingualRetrievalTask,
    MockRetrievalTask,
    general_args,
)

from hybrid_sweep.errors import ConfigError  # noqa: E402
from hybrid_sweep.evaluation.mteb_bridge import MTEBEncoder, evaluate_mteb, score_rows  # noqa: E402

ROOT_CONF = Path(__file__).resolve().parents[1] / "conf" / "eval" / "mteb.yaml"


class LookupEncoder:
    """Our Encoder's interface with fixed embeddings per text; records what it was asked to encode."""

    def __init__(self, table: dict[str, list[float]] | None = None, dim: int = 4):
        self.table, self.dim = table or {}, dim
        self.model = torch.nn.Linear(dim, dim)  # weights for the fingerprint
        self.model.max_seq_length = 128
        self.name, self.normalize = "lookup", True
        self.prefixes = {"query": "query: ", "passage": "passage: "}
        self.calls: list[tuple[str, list[str]]] = []

    def encode(self, texts, kind, desc=None):
        self.calls.append((kind, list(texts)))
        rng = np.random.default_rng(len(texts))
        rows = [self.table.get(t) or rng.standard_normal(self.dim).tolist() for t in texts]
        return torch.nn.functional.normalize(torch.tensor(rows, dtype=torch.float32), dim=1)


QUERIES = {"q1": "first question", "q2": "second question", "q3": "third question"}
DOCS = {f"d{i}": f"document number {i}" for i in range(1, 6)}
E = np.eye(5)
TABLE = {  # docs one-hot; relevant doc of q1 ranks 1st, of q2 2nd, of q3 3rd
    **{text: E[i].tolist() for i, text in enumerate(DOCS.values())},
    "first question": E[0].tolist(),
    "second question": (0.9 * E[0] + 0.5 * E[1]).tolist(),
    "third question": (0.9 * E[0] + 0.8 * E[1] + 0.5 * E[2]).tolist(),
}


class KnownAnswerTask(AbsTaskRetrieval):
    metadata = TaskMetadata(type="Retrieval", name="KnownAnswerRetrieval", main_score="ndcg_at_10", **general_args)

    def load_data(self, num_proc=None, **kwargs):
        split = RetrievalSplitData(
            queries=Dataset.from_list([{"id": k, "text": v} for k, v in QUERIES.items()]),
            corpus=Dataset.from_list([{"id": k, "text": v, "title": ""} for k, v in DOCS.items()]),
            relevant_docs={"q1": {"d1": 1}, "q2": {"d2": 1}, "q3": {"d3": 1}},
            top_ranked=None,
        )
        self.dataset = {"default": {"test": split}}
        self.data_loaded = True


def test_known_rankings_give_known_scores_and_tidy_rows(tmp_path):
    enc = LookupEncoder(TABLE, dim=5)
    rows = evaluate_mteb({"tasks": [KnownAnswerTask()], "metrics": None}, enc, tmp_path)
    value = rows.set_index("metric")["value"]
    ranks = np.array([1, 2, 3])
    assert value["ndcg_cut_10"] == pytest.approx(np.mean(1 / np.log2(ranks + 1)), abs=1e-5)
    assert value["recip_rank_cut_10"] == pytest.approx(np.mean(1 / ranks), abs=1e-5)
    assert value["recall_100"] == pytest.approx(1.0)
    assert value["P_1"] == pytest.approx(1 / 3, abs=1e-5)
    assert value["main_score"] == value["ndcg_cut_10"]
    assert set(rows["benchmark"]) == {"KnownAnswerRetrieval"} and set(rows["setting"]) == {"test"}
    assert (rows["n_queries"] == 3).all() and (rows["n_skipped"] == 0).all() and (rows["depth"] == 1000).all()
    assert list(rows.columns) == ["benchmark", "setting", "query_lang", "doc_lang", "metric", "value",
                                  "n_queries", "n_skipped", "depth", "max_length"]
    assert (rows["max_length"] == 128).all()  # the encoder's max tokens, recorded
    # queries went in as queries, documents as passages, each exactly once
    kinds = {kind: sorted(t for k, texts in enc.calls if k == kind for t in texts) for kind in ("query", "passage")}
    assert kinds == {"query": sorted(QUERIES.values()), "passage": sorted(DOCS.values())}
    assert list((tmp_path / "mteb").rglob("KnownAnswerRetrieval.json"))  # MTEB's own result file


def test_real_encoder_prefixes_follow_mteb_prompt_types(tmp_path):
    from hybrid_sweep.encoders.encoder import Encoder
    from hybrid_sweep.encoders.tiny import build_tiny_model

    texts = ["This is a test sentence", "Title of d1 This is a positive sentence"]
    enc = Encoder(build_tiny_model(texts, tmp_path / "m", vocab_size=200, layers=1), "tiny",
                  query_prefix="Q> ", passage_prefix="P> ", show_progress=False)
    seen = []
    original = enc.features
    enc.features = lambda batch, kind: (seen.extend(enc.prefixes[kind] + t for t in batch), original(batch, kind))[1]
    model = MTEBEncoder(enc)
    assert model.mteb_model_meta.name == "hybrid_sweep/tiny" and len(model.mteb_model_meta.revision) == 24
    assert model.mteb_model_meta.embed_dim == 64
    mteb.evaluate(model, [MockRetrievalTask()], cache=None, show_progress_bar=False)
    assert "Q> This is a test sentence" in seen
    assert "P> Title of d1 This is a positive sentence" in seen  # MTEB joins title and text
    assert "P> This is a test sentence" not in seen and "Q> Title of d1 This is a positive sentence" not in seen


def test_config_path_on_mteb_mock_multilingual_task(tmp_path):
    cfg = OmegaConf.load(ROOT_CONF)
    cfg.tasks = ["mteb.mocks.mock_tasks.retrieval:MockMultilingualRetrievalTask"]
    cfg.splits = ["test"]
    enc = LookupEncoder()
    rows = evaluate_mteb(cfg, enc, tmp_path)
    assert set(rows["metric"]) == {"main_score", "ndcg_cut_10", "recall_100", "recip_rank_cut_10", "map_cut_100"}
    assert set(rows["setting"]) == {"test"}
    assert set(rows["query_lang"]) == {"eng", "fra", "avg"}
    per_lang = rows[rows["query_lang"] != "avg"]
    assert (per_lang["query_lang"] == per_lang["doc_lang"]).all()
    avg = rows[rows["query_lang"] == "avg"].set_index("metric")["value"]
    assert avg.to_dict() == pytest.approx(per_lang.groupby("metric")["value"].mean().to_dict())
    # the same scores MTEB reports itself
    direct = mteb.evaluate(MTEBEncoder(LookupEncoder()), [MockMultilingualRetrievalTask().filter_eval_splits(["test"])],
                           cache=None, show_progress_bar=False)
    want = {s["hf_subset"]: s["ndcg_at_10"] for s in direct.task_results[0].scores["test"]}
    got = per_lang[per_lang["metric"] == "ndcg_cut_10"].set_index("query_lang")["value"].to_dict()
    assert got == pytest.approx(want)


def test_language_filter_keeps_one_subset(tmp_path):
    rows = evaluate_mteb({"tasks": [MockMultilingualRetrievalTask()], "languages": ["fra"], "splits": ["test"],
                          "metrics": ["ndcg_at_10"]}, LookupEncoder(), tmp_path)
    assert rows["query_lang"].tolist() == ["fra"]


def test_bad_configs_name_the_key(tmp_path):
    with pytest.raises(ConfigError, match="^eval.tasks:.*at least one"):
        evaluate_mteb({"tasks": []}, LookupEncoder(), tmp_path)
    with pytest.raises(ConfigError, match="^eval.tasks:.*unknown MTEB task"):
        evaluate_mteb({"tasks": ["NoSuchTaskAnywhere"]}, LookupEncoder(), tmp_path)
    with pytest.raises(ConfigError, match="^eval.tasks:.*cannot import"):
        evaluate_mteb({"tasks": ["no.such.module:Task"]}, LookupEncoder(), tmp_path)
    with pytest.raises(ConfigError, match="^eval.metrics:"):
        evaluate_mteb({"tasks": [MockRetrievalTask()], "metrics": "ndcg_at_10"}, LookupEncoder(), tmp_path)
    with pytest.raises(ConfigError, match="^eval.symmetric_kind:"):
        evaluate_mteb({"tasks": [MockRetrievalTask()], "symmetric_kind": "doc"}, LookupEncoder(), tmp_path)


def test_score_rows_skips_non_numbers_and_renames():
    class Result:
        task_name = "T"
        scores = {"dev": [{"hf_subset": "de-en", "languages": ["deu-Latn", "eng-Latn"], "ndcg_at_10": 0.5,
                           "mrr_at_1000": 0.25, "accuracy": float("nan"), "evaluation_time": "x", "flag": True}]}

    class ModelResult:
        task_results = [Result()]

    rows = score_rows(ModelResult(), depth=100)
    assert rows[["query_lang", "doc_lang"]].drop_duplicates().values.tolist() == [["deu", "eng"]]
    assert dict(zip(rows["metric"], rows["value"])) == {"ndcg_cut_10": 0.5, "recip_rank_cut_1000": 0.25}
