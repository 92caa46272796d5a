"""Every retrieval preset composes, loads a fixture written in its dataset's real layout, and runs end to
end through the CLI; a sweep adds them with +eval@evals.<name>=<preset>."""

import subprocess
import sys

import pandas as pd
import pytest

from hybrid_sweep.data.benchmark_loading import load_retrieval_tasks
from hybrid_sweep.errors import ConfigError
from tests.retrieval_fixtures import mteb_subset, write_beir, write_mteb_repo
from tests.conftest import ROOT, compose

PER_LANGUAGE = {  # preset -> (languages, split, how the corpus configs are split)
    "miracl": (["ar", "bn", "de", "en", "es", "fa", "fi", "fr", "hi", "id", "ja", "ko", "ru", "sw", "te", "th",
                "yo", "zh"], "dev", None),
    "mkqa": (["ar", "da", "de", "en", "es", "fi", "fr", "he", "hu", "it", "ja", "ko", "km", "ms", "nl", "no", "pl",
              "pt", "ru", "sv", "th", "tr", "vi", "zh_cn", "zh_hk", "zh_tw"], "train", None),
    "mldr": (["ar", "de", "en", "es", "fr", "hi", "it", "ja", "ko", "pt", "ru", "th", "zh"], "test", None),
    "xquad": (["ar", "de", "el", "en", "es", "hi", "ro", "ru", "th", "tr", "vi", "zh"], "validation", None),
}


@pytest.mark.parametrize("preset", list(PER_LANGUAGE))
def test_per_language_presets_load_their_fixture(preset, tmp_path):
    langs, split, _ = PER_LANGUAGE[preset]
    configs = {}
    for lang in langs:
        sub = mteb_subset(lang, split=split, id_col="id" if preset == "mldr" else "_id", title=preset != "mldr")
        if preset == "mldr":  # the same corpus is copied under every split
            sub[f"{lang}-corpus"] = {s: sub[f"{lang}-corpus"][split] for s in ("dev", "test", "train")}
        configs.update(sub)
    repo = write_mteb_repo(tmp_path / preset, configs)
    cfg = compose(f"eval={preset}", f"eval.path={repo}")
    assert cfg.eval.languages == langs and cfg.eval.split == split and cfg.eval.kind == "retrieval"
    (task,) = load_retrieval_tasks(cfg.eval, cfg.paths)
    assert task.name == preset and [p.query_lang for p in task.pools] == langs
    assert all(p.setting == "mono" for p in task.pools)
    assert task.max_length == (512 if preset == "mldr" else "model")  # "as MTEB's X": the model's own limit


def test_beir_and_nanobeir_presets(tmp_path):
    folder = write_beir(tmp_path / "scifact", [("1", "T", "a b"), ("2", "", "c d")], [("q1", "a")],
                        {"test": [("q1", "1", 1)], "train": [("q1", "2", 1)]})
    cfg = compose("eval=beir", f"eval.path={folder}")
    (task,) = load_retrieval_tasks(cfg.eval, cfg.paths)
    assert task.name == "scifact" and task.pools[0].qrels == {"q1": {"1": 1}}
    nano = compose("eval=nanobeir")
    assert len(nano.eval.dataset) == 13 and nano.eval.split == "train"
    sub = mteb_subset("x", split="train")
    repo = write_mteb_repo(tmp_path / "NanoSciFactRetrieval", {
        "corpus": {"train": sub["x-corpus"]["train"]}, "queries": {"train": sub["x-queries"]["train"]},
        "qrels": {"train": sub["x-qrels"]["train"]}})
    cfg = compose("eval=nanobeir", f"eval.path={repo}")
    (task,) = load_retrieval_tasks(cfg.eval, cfg.paths)
    assert task.name == "NanoSciFactRetrieval" and len(task.pools[0].qrels) == 4
    with pytest.raises(ConfigError, match="eval.path: set eval.path"):
        load_retrieval_tasks(compose("eval=beir").eval, cfg.paths)


def test_flores_and_trec_presets_compose(tmp_path):
    cfg = compose("eval=flores")
    assert (cfg.eval.kind, cfg.eval.split, list(cfg.eval.settings)) == ("flores", "dev", ["cross", "multi"])
    with pytest.raises(ConfigError, match="eval.trec.corpus"):
        load_retrieval_tasks(compose("eval=trec").eval, cfg.paths)


def test_a_sweep_adds_any_preset():
    cfg = compose("+eval@evals.miracl=miracl", "+eval@evals.flores=flores", "+eval@evals.scifact=beir",
                  config_name="config")
    assert set(cfg.evals) == {"synthetic", "miracl", "flores", "scifact"}
    assert cfg.evals.miracl.kind == "retrieval" and cfg.evals.synthetic.kind == "pooled"


def _cli(*overrides, env=None):
    return subprocess.run([sys.executable, "-m", "hybrid_sweep.evaluate", *overrides], cwd=ROOT,
                          capture_output=True, text=True, timeout=300, env=env)


def test_cli_evaluates_a_beir_folder_end_to_end(tmp_path):
    docs = [(f"d{i}", "", f"word{i} shared text {i % 3}") for i in range(30)]
    queries = [(f"q{i}", f"word{i} question") for i in range(10)]
    folder = write_beir(tmp_path / "toy", docs, queries,
                        {"test": [(f"q{i}", f"d{i}", 1 + i % 2) for i in range(10)] + [("q0", "d5", 0)]})
    out = tmp_path / "ev"
    res = _cli("eval=beir", f"eval.path={folder}", "eval.split=test", f"output_dir={out}", "encoder.progress=false",
               "eval.full_rank_max=10")
    assert res.returncode == 0, res.stderr
    m = pd.read_parquet(out / "metrics.parquet")
    assert set(m.benchmark) == {"toy"} and set(m.query_lang) == {"en", "avg"} and set(m.depth) == {"top30"}
    assert m.set_index(["query_lang", "metric"]).loc[("en", "ndcg@10"), "n_queries"] == 10
    run = pd.read_csv(out / "runs" / "toy" / "mono" / "en-en.trec", sep=" ", header=None)
    assert run.groupby(0).size().eq(30).all()
    groups = pd.read_parquet(out / "language_groups.parquet")
    assert set(groups.grouping) == {"resource_class", "seen", "xlmr_pretraining"}
    assert set(groups[groups.grouping == "resource_class"].group) == {"5"}


def test_offline_hub_dataset_is_one_line_naming_it(tmp_path):
    import os

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    res = _cli("eval=beir", "eval.dataset=mteb/scifact", f"output_dir={tmp_path / 'ev'}", env=env)
    assert res.returncode == 2
    lines = [line for line in res.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "mteb/scifact" in lines[0] and "eval.path=" in lines[0]
    assert not (tmp_path / "ev" / "metrics.parquet").exists()


@pytest.mark.parametrize("override,message", [
    ("eval.settings=[cross]", "eval.settings: retrieval tasks have one setting, mono"),
    ("eval.full_rank_max=0", "eval.full_rank_max: must be a positive integer"),
    ("eval.format=csv", "eval.format: unknown format 'csv'"),
    ("eval.write_runs=[diag]", "eval.write_runs: unknown setting 'diag'"),
    ("eval.kind=other", "eval.kind: unknown kind 'other'"),
])
def test_bad_retrieval_config_is_a_config_error(tmp_path, override, message):
    cfg = compose("eval=beir", f"eval.path={tmp_path}", override)
    with pytest.raises(ConfigError, match=message):
        load_retrieval_tasks(cfg.eval, cfg.paths)
