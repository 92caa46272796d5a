"""Every data preset composes, and the real-layout presets (jsonl, parquet, swim_ir, mmarco, flores with
MLQA-R) load their fixture files through the users' load_dataset calls and train a few steps."""

import collections
import json

import pandas as pd
import pytest
from omegaconf import open_dict

from hybrid_sweep.data.corpus_loading import load_training_data
from hybrid_sweep.errors import ConfigError
from hybrid_sweep.sampling.configured import sampler_from_config
from hybrid_sweep.training import trainer
from tests.conftest import ROOT, compose
from tests.corpus_fixtures import MMARCO_LANGS, documented_rows, write_jsonl, write_mmarco, write_swim_ir

DATA_PRESETS = sorted(p.stem for p in (ROOT / "conf" / "data").glob("*.yaml") if p.stem != "base")
FAST = ("encoder.progress=false", "train.batch_size=8", "train.eval_every=0", "train.save_every=2",
        "train.val_batches=1", "encoder.tiny.hidden=32", "encoder.tiny.intermediate=64", "train.max_steps=2")


@pytest.mark.parametrize("preset", DATA_PRESETS)
def test_every_data_preset_composes(preset):
    cfg = compose(f"data={preset}", config_name="train")
    assert cfg.data.name == preset and cfg.data.sources


@pytest.mark.parametrize("preset", ["jsonl", "parquet"])
def test_file_preset_without_a_path_is_one_config_error(preset, tmp_path):
    with pytest.raises(ConfigError, match="^data.sources.0.path: required and not set"):
        load_training_data(compose(f"data={preset}", f"data.cache_dir={tmp_path}", config_name="train"))


def _train(tmp_path, *overrides, edit=None):
    cfg = compose(*FAST, f"data.cache_dir={tmp_path / 'cache'}", *overrides, config_name="train")
    if edit:
        with open_dict(cfg):
            edit(cfg)
    summary = trainer.train(cfg, tmp_path / "run")
    log = [json.loads(line) for line in (tmp_path / "run" / "train_log.jsonl").read_text().splitlines()]
    return cfg, summary, log


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_own_file_preset_trains(tmp_path, fmt):
    rows = documented_rows(40, ("de", "en", "es"))
    rows.append({**rows[0], "query": "another question for g0"})  # several rows of one group and language
    path = tmp_path / f"train.{fmt}"
    write_jsonl(path, rows) if fmt == "jsonl" else pd.DataFrame(rows).to_parquet(path)
    cfg, summary, log = _train(tmp_path, f"data={fmt}", f"data.sources.0.path={path}")
    assert summary["steps"] == 2 and summary["languages"] == ["de", "en", "es"] and len(log) == 2
    corpora, dev, _ = load_training_data(cfg)
    assert corpora[0].n_rows + dev.n_rows == len(rows)  # holdout by group, nothing lost
    assert not set(corpora[0].group_codes()) & set(dev.group_codes())
    assert len(list((tmp_path / "cache").glob("*/DONE"))) == 1  # converted once, reopened since


def _local_swim(cfg, repos):
    """The hub ids replaced by the local copies. `datasets` caches a local folder's configs by their
    relative file patterns, not by the files, so each test gives it its own cache folder."""
    for src, repo in zip(cfg.data.sources, ("swim-ir-cross-lingual", "swim-ir-monolingual")):
        for spec in src.languages.values():
            spec.path, spec.cache_dir = str(repos[repo]), str(repos[repo].parent / "hf_cache")


def test_swim_ir_preset_hybrid_batches_and_in_batch_negatives(tmp_path):
    repos = write_swim_ir(tmp_path / "hub", n=60)
    cfg, summary, log = _train(tmp_path, "data=swim_ir", "train.log_batches=true", "train.max_steps=6",
                               "train.eval_every=3", "data.dev.holdout=0.4", edit=lambda c: _local_swim(c, repos))
    assert summary["steps"] == 6 and [r["step"] for r in log if "val_loss" in r] == [2, 5]
    corpora, _, langs = load_training_data(cfg)
    assert langs == ["de", "en", "es", "hi"] and [c.name for c in corpora] == ["swim_ir_cross", "swim_ir_mono"]
    cross = corpora[0]
    assert cross.groups_for("de", "en") and not cross.groups_for("de", "de") and not cross.groups_for("en", "en")
    s = sampler_from_config(cfg, corpora, langs, 0)
    assert s.n_negatives == [0, 0]
    batches = [s.batch_at(i) for i in range(200)]
    kinds = collections.Counter((b.mode, b.corpus) for b in batches)
    assert set(kinds) == {("mono", "swim_ir_mono"), ("cross", "swim_ir_cross")}
    for b in batches:
        for it in b.items:
            assert it.negatives == ()
            if b.mode == "cross":  # X -> en: the row's query with its own English passage
                assert it.passage_lang == "en" and it.query.startswith(it.query_lang)
                assert it.positive.split()[2] == it.query.split()[2]
            else:
                assert it.query_lang == it.passage_lang and it.positive.startswith(it.passage_lang)
    with pytest.raises(ConfigError, match="^sampler.n_negatives: 1 hard negatives asked of source 'swim_ir_cross'"):
        sampler_from_config(cfg, [corpora[0].view(n_negatives=None)], langs, 0)


def _local_mmarco(cfg, folder):
    cfg.data.sources[0].path = str(folder)


def test_mmarco_preset_parallel_by_query_and_passage_id(tmp_path):
    folder = write_mmarco(tmp_path / "hub")
    cfg, summary, _ = _train(tmp_path, "data=mmarco", "data.dev.holdout=0.2", edit=lambda c: _local_mmarco(c, folder))
    assert summary["steps"] == 2
    corpora, _, langs = load_training_data(cfg)
    assert langs == sorted(MMARCO_LANGS) and corpora[0].n_rows + 0 > 0
    s = sampler_from_config(cfg, corpora, langs, 0)
    for i in range(100):
        b = s.batch_at(i)
        assert len({it.group for it in b.items}) == len(b.items)
        for it in b.items:
            qid = it.group
            assert it.query == f"{it.query_lang} query {qid} about q{qid}"  # the query of this id, in X
            pid = int(it.positive.split('"')[1])  # a positive passage of this query's triples, in Y
            assert it.positive.startswith(f"{it.passage_lang} passage")
            assert 500 + (int(qid) - 7) * 3 <= pid < 500 + (int(qid) - 7) * 3 + 3
            assert len(it.negatives) == 1 and it.negatives[0].startswith(f"{it.passage_lang} passage")
    store = corpora[0]
    assert store.n_rows < 3 * 24 * 3 and len(store.table) == 3 * 24 * 3  # one row per triple and language


@pytest.mark.real_data
def test_flores_with_mlqa_r_gives_hybrid_batches(tmp_path, data_root):
    cfg = compose("data=mlqa_r_flores", f"paths.data_root={data_root}", "train.batch_size=16", config_name="train")
    corpora, dev, langs = load_training_data(cfg)
    assert [c.name for c in corpora] == ["mlqa_r", "flores"] and langs == ["ar", "de", "en", "es", "hi", "vi", "zh"]
    flores = corpora[1]
    assert flores.cross_only and flores.n_examples == 7 * 701
    s = sampler_from_config(cfg, corpora, langs, 0)
    batches = [s.batch_at(i) for i in range(300)]
    kinds = collections.Counter((b.mode, b.corpus) for b in batches)
    assert kinds[("mono", "flores")] == 0 and kinds[("mono", "mlqa_r")] > 100
    assert kinds[("cross", "flores")] > 0 and kinds[("cross", "mlqa_r")] > 0
    for b in batches:
        if b.corpus == "flores":  # a sentence and its translation: same index_id, different languages
            assert all(it.query_lang != it.passage_lang and it.query != it.positive and it.negatives == ()
                       for it in b.items)
    summary = trainer.train(compose(*FAST, "data=mlqa_r_flores", f"paths.data_root={data_root}", config_name="train"),
                            tmp_path / "run")
    assert summary["steps"] == 2


@pytest.mark.real_data
def test_flores_alone_trains_cross_batches_and_validates(tmp_path, data_root):
    """A translation-pair set has no mono batches: training with sampler=hybrid is refused (one line),
    sampler=cross trains, and validation uses the modes the held-out pairs serve."""
    with pytest.raises(ConfigError, match="^sampler.ratio: mono batches need same-language data"):
        _train(tmp_path / "a", "data=flores", f"paths.data_root={data_root}", "data.languages=[de,en]")
    cfg, summary, log = _train(tmp_path / "b", "data=flores", f"paths.data_root={data_root}", "data.languages=[de,en]",
                               "sampler=cross", "train.eval_every=2")
    assert summary["steps"] == 2 and "val_loss" in log[-1]
    corpora, dev, langs = load_training_data(cfg)
    val = sampler_from_config(compose("data=flores", config_name="train"), [dev], langs, 0, validation=True)
    assert {val.batch_at(i).mode for i in range(20)} == {"cross"}
