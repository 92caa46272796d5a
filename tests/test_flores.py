"""FLORES-200 (SIB-200 split) as translation retrieval: real files, ids, settings, and known answers."""

import numpy as np
import pytest
import torch

from hybrid_sweep.data.flores_benchmark import DEFAULT_LANGUAGES, load_flores
from hybrid_sweep.data.languages import language_table
from hybrid_sweep.errors import ConfigError, DataError
from hybrid_sweep.evaluation.task_evaluator import evaluate_task_embeddings

XQUAD_R_FLORES = ["arb_Arab", "deu_Latn", "ell_Grek", "eng_Latn", "spa_Latn", "hin_Deva", "rus_Cyrl", "tha_Thai",
                  "tur_Latn", "vie_Latn", "zho_Hans"]


@pytest.fixture(scope="module")
def sib200(data_root):
    folder = data_root / "sib200"
    if not folder.is_dir():
        pytest.skip("sib200 not found under the data root")
    return folder


def test_default_set_spans_scripts_and_classes_and_covers_xquad_r(sib200):
    assert set(XQUAD_R_FLORES) <= set(DEFAULT_LANGUAGES) and len(DEFAULT_LANGUAGES) == 20
    table = language_table()
    assert len({table[c]["script"] for c in DEFAULT_LANGUAGES}) >= 10
    assert {table[c]["joshi_class"] for c in DEFAULT_LANGUAGES} >= {"1", "2", "3", "4", "5"}
    assert {table[c]["xlmr_cc100"] for c in DEFAULT_LANGUAGES} == {"yes", "no"}
    task = load_flores(sib200)
    assert task.languages() == list(DEFAULT_LANGUAGES)


def test_pools_ids_and_relevance(sib200):
    langs = ["eng_Latn", "yor_Latn", "zho_Hans"]
    task = load_flores(sib200, "dev", langs)
    cross = [p for p in task.pools if p.setting == "cross"]
    multi = [p for p in task.pools if p.setting == "multi"]
    assert [(p.query_lang, p.doc_lang) for p in cross] == [(x, y) for x in langs for y in langs if x != y]
    assert [(p.query_lang, p.corpora) for p in multi] == [(x, tuple(y for y in langs if y != x)) for x in langs]
    first = task.query_sets["eng_Latn"].groups[0]
    assert len(task.query_sets["eng_Latn"]) == 99 and task.query_sets["eng_Latn"].ids[0] == f"eng_Latn:{first}"
    assert cross[0].qrels[f"eng_Latn:{first}"] == {f"yor_Latn:{first}": 1}
    assert multi[0].qrels[f"eng_Latn:{first}"] == {f"yor_Latn:{first}": 1, f"zho_Hans:{first}": 1}
    assert len(load_flores(sib200, "dev", "all", ("multi",)).pools) == 205


def test_languages_all_from_the_command_line_means_every_language(sib200, data_root):
    """``eval.languages=all`` (the README's spelling) passes the typed schema: all 205 for FLORES, and the
    same as null for every other benchmark."""
    from hybrid_sweep.config import load
    from hybrid_sweep.data.benchmark_loading import load_eval_benchmark, load_retrieval_tasks
    from tests.conftest import compose

    cfg = load(compose("eval=flores", "eval.languages=all", "eval.settings=[multi]", "output_dir=x",
                       f"paths.data_root={data_root}"), "evaluate")
    (task,) = load_retrieval_tasks(cfg.eval, cfg.paths)
    assert len(task.languages()) == 205 and len(task.pools) == 205
    every, default = (load(compose("eval=synthetic", *extra, "output_dir=x"), "evaluate")
                      for extra in (("eval.languages=all",), ()))
    assert load_eval_benchmark(every.eval, every.paths, every.synthetic).languages == \
        load_eval_benchmark(default.eval, default.paths, default.synthetic).languages


def test_known_answer_embeddings(sib200):
    """Embedding = one-hot of the sentence id: every translation ties at the top, so map = 1 everywhere and
    the multi rank distance of n relevant tied candidates is n - 1."""
    langs = ["eng_Latn", "deu_Latn", "amh_Ethi", "khm_Khmr"]
    task = load_flores(sib200, "dev", langs)
    groups = sorted(set(task.query_sets["eng_Latn"].groups))
    onehot = lambda t: torch.nn.functional.one_hot(torch.tensor([groups.index(g) for g in t.groups]), len(groups)).float()
    q = {k: onehot(t) for k, t in task.query_sets.items()}
    out = evaluate_task_embeddings(task, q, dict(q))
    m = out.metrics.set_index(["setting", "query_lang", "metric"])
    assert m.loc[("cross", "avg", "map"), "value"] == 1.0 and m.loc[("multi", "avg", "map"), "value"] == 1.0
    assert m.loc[("multi", "avg", "rank_distance"), "value"] == len(langs) - 2
    assert (out.metrics[out.metrics.metric == "map"].depth == "full").all()
    # a shuffled target language: its queries find nothing above chance
    rng = np.random.default_rng(0)
    q["khm_Khmr"] = q["khm_Khmr"][torch.from_numpy(rng.permutation(99))]
    out = evaluate_task_embeddings(task, q, dict(q), full_rank_max=10)  # top-k path
    m = out.metrics.set_index(["setting", "query_lang", "doc_lang", "metric"])
    assert m.loc[("cross", "khm_Khmr", "eng_Latn", "recall@1"), "value"] < 0.1
    assert m.loc[("cross", "deu_Latn", "eng_Latn", "recall@1"), "value"] == 1.0
    assert m.loc[("cross", "deu_Latn", "eng_Latn", "map"), "depth"] == "top99"


def test_errors(sib200, tmp_path):
    with pytest.raises(ConfigError, match="eval.languages: no FLORES folder 'xx_Latn'"):
        load_flores(sib200, "dev", ["eng_Latn", "xx_Latn"])
    with pytest.raises(DataError, match="no test split here"):
        load_flores(sib200, "test", ["eng_Latn", "deu_Latn"])
    with pytest.raises(ConfigError, match="eval.settings"):
        load_flores(sib200, "dev", ["eng_Latn", "deu_Latn"], ("mono",))
    for lang, body in (("aaa_Latn", "index_id\tcategory\ttext\n1\ttravel\ta\n"),
                       ("bbb_Latn", "index_id\tcategory\ttext\n1\ttravel\tb\n1\ttravel\tc\n")):
        (tmp_path / lang).mkdir()
        (tmp_path / lang / "dev.tsv").write_text(body)
    with pytest.raises(DataError, match=r"bbb_Latn/dev.tsv:3: duplicate id '1'"):
        load_flores(tmp_path, "dev", ["aaa_Latn", "bbb_Latn"])
    (tmp_path / "bbb_Latn" / "dev.tsv").write_text("id\ttext\n1\tb\n")
    with pytest.raises(DataError, match=r"bbb_Latn/dev.tsv:1: expected the header"):
        load_flores(tmp_path, "dev", ["aaa_Latn", "bbb_Latn"])
    (tmp_path / "bbb_Latn" / "dev.tsv").write_text("index_id\tcategory\ttext\n2\ttravel\tb\n")
    (tmp_path / "aaa_Latn" / "test.tsv").write_text("index_id\tcategory\ttext\n1\ttravel\ta\n")
    (tmp_path / "bbb_Latn" / "test.tsv").write_text("index_id\tcategory\ttext\n1\ttravel\tb\n")
    task = load_flores(tmp_path, "dev", ["aaa_Latn", "bbb_Latn"], ("cross",))
    assert task.pools[0].qrels == {"aaa_Latn:1": {}}  # no translation: skipped and counted
    assert load_flores(tmp_path, "test", ["aaa_Latn", "bbb_Latn"]).pools[0].qrels == {"aaa_Latn:1": {"bbb_Latn:1": 1}}


def test_language_table_covers_every_sib200_variety(sib200):
    table = language_table()
    assert set(table) == {p.name for p in sib200.iterdir() if p.is_dir()}
    for code, row in table.items():
        assert row["script"] == code.split("_")[1]
        assert row["xlmr_cc100"] in ("yes", "no")
        assert row["joshi_class"] in ("0", "1", "2", "3", "4", "5", "")
        assert (row["joshi_class"] == "") == (row["joshi_basis"] == "unknown")
        assert row["joshi_basis"].split(":")[0] in ("listed", "variety_of", "not_in_1_5", "unknown")
    isos = [r["iso639_1"] for r in table.values() if r["iso639_1"]]
    assert len(isos) == len(set(isos))
