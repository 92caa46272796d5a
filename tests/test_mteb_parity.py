"""The retrieval presets defined "as MTEB's X" give MTEB's own nDCG@10: the same fixture task with
passages longer than 128 tokens, evaluated by the preset (its default encoding: the model's own max
length, MTEB's title joining, the encoder's prompts) and by ``mteb.evaluate`` through the bridge on a
task built from the same rows (nothing downloads). At the encoder preset's 128 tokens the numbers
differ, so the fixture does exercise the length."""

from __future__ import annotations

import pytest

mteb = pytest.importorskip("mteb", reason="mteb not installed (pip install 'hybrid_sweep[mteb]')")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from datasets import Dataset  # noqa: E402
from mteb.abstasks.retrieval import AbsTaskRetrieval  # noqa: E402
from mteb.abstasks.retrieval_dataset_loaders import RetrievalSplitData  # noqa: E402
from mteb.abstasks.task_metadata import TaskMetadata  # noqa: E402
from mteb.mocks.mock_tasks.retrieval import general_args  # noqa: E402

from hybrid_sweep.encoders import build_encoder  # noqa: E402
from hybrid_sweep.evaluation.mteb_bridge import MTEBEncoder  # noqa: E402
from hybrid_sweep.evaluation.pipeline import run_evaluation  # noqa: E402
from hybrid_sweep.evaluation.task_evaluator import native_max_length  # noqa: E402
from tests.conftest import compose  # noqa: E402
from tests.retrieval_fixtures import write_beir, write_mteb_repo  # noqa: E402

PRESETS = {"beir": "test", "nanobeir": "train", "xquad": "validation", "miracl": "dev", "mkqa": "train"}
PER_LANGUAGE = ("xquad", "miracl", "mkqa")
LANGS = {"de": "deu-Latn", "en": "eng-Latn"}
ENCODER = ("encoder=me5_small_q4", "encoder.layers=2", "encoder.device=cpu", "encoder.progress=false")
FILLER = ("This passage belongs to a long collection of encyclopedic notes written to test retrieval systems, "
          "and its opening words are the same in every note of the collection. ") * 4
TOPICS = [("Coffee", "Coffee beans are roasted and ground before hot water is poured over them to brew a drink.",
           "How is coffee made?"),
          ("", "A volcano erupts molten lava, ash and gas from deep inside the crust of the earth.",
           "What comes out of a volcano?"),
          ("Violin", "The violin is a wooden string instrument that is played with a bow.",
           "Which instrument is played with a bow?"),
          ("", "Glaciers are slow rivers of ice that carve valleys into mountains over thousands of years.",
           "How do glaciers shape mountains?"),
          ("Bread", "Bread is baked from flour, water, salt and yeast that makes the dough rise.", None),
          ("", "Bees collect nectar from flowers and turn it into honey inside their hive.", None),
          ("Satellite", "A satellite orbits the earth and sends signals back to stations on the ground.", None)]


def _rows(lang: str):
    """(corpus [(id, title, text)], queries [(id, text)], qrels [(qid, docid, 1)]) of one language; the
    text that tells passages apart comes after the shared filler, past token 128."""
    corpus = [(f"{lang}-d{i}", title, f"{FILLER}{tail}") for i, (title, tail, _) in enumerate(TOPICS)]
    queries = [(f"{lang}-q{i}", f"{lang}: {q}") for i, (_, _, q) in enumerate(TOPICS) if q]
    qrels = [(qid, f"{lang}-d{qid.split('-q')[1]}", 1) for qid, _ in queries]
    return corpus, queries, qrels


def _write_fixture(preset: str, folder, split: str):
    if preset == "beir":
        corpus, queries, qrels = _rows("en")
        return write_beir(folder, corpus, queries, {split: qrels})
    langs = list(LANGS) if preset in PER_LANGUAGE else ["en"]
    configs = {}
    for lang in langs:
        corpus, queries, qrels = _rows(lang)
        frames = {"corpus": pd.DataFrame(corpus, columns=["_id", "title", "text"]),
                  "queries": pd.DataFrame(queries, columns=["_id", "text"]),
                  "qrels": pd.DataFrame(qrels, columns=["query-id", "corpus-id", "score"])}
        for name, frame in frames.items():
            configs[f"{lang}-{name}" if preset in PER_LANGUAGE else name] = {split: frame}
    return write_mteb_repo(folder, configs)


def _mteb_task(preset: str, split: str):
    """The same rows as an MTEB retrieval task, built in memory (no hub access)."""
    multilingual = preset in PER_LANGUAGE
    subsets = list(LANGS) if multilingual else ["en"]

    def load_data(self, num_proc=None, **kwargs):
        self.dataset = {}
        for lang in subsets:
            corpus, queries, qrels = _rows(lang)
            self.dataset[lang if multilingual else "default"] = {split: RetrievalSplitData(
                queries=Dataset.from_list([{"id": i, "text": t} for i, t in queries]),
                corpus=Dataset.from_list([{"id": i, "title": ti, "text": t} for i, ti, t in corpus]),
                relevant_docs={q: {d: s} for q, d, s in qrels}, top_ranked=None)}
        self.data_loaded = True

    def task_specific_scores(self, scores, qrels, results, hf_split, hf_subset):
        """MTEB's per-query pytrec_eval scores, kept: its reported means are rounded to 5 decimals."""
        self.per_query[hf_subset] = scores
        return {}

    metadata = TaskMetadata(type="Retrieval", name=f"Fixture{preset.title()}Retrieval", main_score="ndcg_at_10",
                            **(general_args | {"eval_splits": [split]}))
    if multilingual:
        metadata.eval_langs = {lang: [LANGS[lang]] for lang in subsets}
    task = type(f"Fixture{preset.title()}", (AbsTaskRetrieval,),
                {"metadata": metadata, "load_data": load_data, "task_specific_scores": task_specific_scores})()
    task.per_query = {}
    return task


@pytest.fixture(scope="module")
def encoder():
    return build_encoder(compose(*ENCODER).encoder)


def _ours(preset, folder, encoder, *overrides) -> pd.DataFrame:
    langs = ["eval.languages=[de,en]"] if preset in PER_LANGUAGE else []
    cfg = compose(f"eval={preset}", f"eval.path={folder}", *langs, *ENCODER, *overrides)
    m = run_evaluation(cfg, None, encoder).metrics
    return m[(m.metric == "ndcg@10") & (m.query_lang != "avg")].set_index("query_lang")


@pytest.mark.parametrize("preset", list(PRESETS))
def test_preset_equals_mteb_evaluate_on_long_passages(preset, encoder, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    split = PRESETS[preset]
    folder = _write_fixture(preset, tmp_path / preset, split)
    assert compose(f"eval={preset}").eval.max_length == "model"
    limit = native_max_length(encoder.model)
    assert limit == 512 and encoder.model.max_seq_length == 128  # the encoder preset's length is shorter
    n_tokens = len(encoder.model.tokenizer("passage: " + _rows("en")[0][0][2])["input_ids"])
    assert 150 < n_tokens <= limit  # every passage is longer than 128 tokens and fits the model's own limit

    ours = _ours(preset, folder, encoder)
    assert set(ours["max_length"]) == {limit}  # the length used is recorded in the rows

    old = encoder.model.max_seq_length
    encoder.model.max_seq_length = limit  # what MTEB gets loading the model: its own limit
    task = _mteb_task(preset, split)
    try:
        result = mteb.evaluate(MTEBEncoder(encoder), [task], cache=None, show_progress_bar=False)
    finally:
        encoder.model.max_seq_length = old
    reported = {s["hf_subset"]: s["ndcg_at_10"] for s in result.task_results[0].scores[split]}  # 5 decimals
    theirs = {k: float(np.mean([q["ndcg_cut_10"] for q in v.values()])) for k, v in task.per_query.items()}
    assert set(theirs) == set(reported)
    theirs = {("en" if k == "default" else k): v for k, v in theirs.items()}
    assert set(theirs) == set(ours.index)
    for lang, value in theirs.items():
        assert ours.loc[lang, "value"] == pytest.approx(value, abs=1e-6), lang
        assert round(ours.loc[lang, "value"], 5) == reported["default" if lang not in reported else lang]

    short = _ours(preset, folder, encoder, "eval.max_length=null")  # the encoder preset's 128 tokens
    assert set(short["max_length"]) == {128}
    assert any(abs(short.loc[lang, "value"] - theirs[lang]) > 1e-3 for lang in theirs)


@pytest.mark.parametrize("setting, expected", [(None, 512), ("null", 128), ("64", 64)], ids=["default", "null", "64"])
def test_eval_mteb_encodes_at_the_models_own_limit_by_default(encoder, tmp_path, monkeypatch, setting, expected):
    """eval=mteb hands MTEB the encoder at the model's own limit (512 for mE5, as the leaderboard encodes),
    the encoder preset's 128 only when asked (eval.max_length=null), and records the length in the rows."""
    import hybrid_sweep.evaluation.mteb_bridge as bridge

    seen = []

    def fake_evaluate_mteb(eval_cfg, enc, out_dir):
        seen.append(enc.model.max_seq_length)
        return pd.DataFrame([("t", "test", "en", "en", "ndcg@10", 0.5, 1, 0, "mteb")],
                            columns=["benchmark", "setting", "query_lang", "doc_lang", "metric", "value",
                                     "n_queries", "n_skipped", "depth"])

    monkeypatch.setattr(bridge, "evaluate_mteb", fake_evaluate_mteb)
    overrides = [] if setting is None else [f"eval.max_length={setting}"]
    cfg = compose("eval=mteb", "eval.tasks=[SomeTask]", *ENCODER, *overrides)
    rows = run_evaluation(cfg, tmp_path / "out", encoder).metrics
    assert seen == [expected] and set(rows["max_length"]) == {expected}
    assert encoder.model.max_seq_length == 128  # restored after the evaluation
