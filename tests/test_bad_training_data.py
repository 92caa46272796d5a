"""Bad training data is one error naming the source and the field, raised before any model is built."""

import json
import subprocess
import sys

import pandas as pd
import pytest
from omegaconf import open_dict

from hybrid_sweep.data.corpus_loading import load_training_data
from hybrid_sweep.errors import ConfigError, DataError
from hybrid_sweep.sampling.configured import sampler_from_config
from tests.conftest import ROOT, compose
from tests.corpus_fixtures import documented_rows, write_jsonl, write_mmarco, write_swim_ir


def _load(tmp_path, path, *overrides):
    cfg = compose("data=jsonl", f"data.sources.0.path={path}", f"data.cache_dir={tmp_path / 'cache'}", "train.batch_size=4", *overrides,
                  config_name="train")
    corpora, _, langs = load_training_data(cfg)
    return sampler_from_config(cfg, corpora, langs, 0)


def _jsonl(tmp_path, rows, name="bad.jsonl"):
    return write_jsonl(tmp_path / name, rows)


@pytest.mark.parametrize("edit, message", [
    (lambda r: r.pop("positive"), r"missing column 'positive'"),
    (lambda r: r.update(lang=""), r"row 0: missing field 'lang'"),
    (lambda r: r.update(lang=None), r"row 0: missing field 'lang'"),
    (lambda r: r.update(lang="english"), r"unknown language code 'english'"),
    (lambda r: r.update(query=None, positive=""), r"row 0: both 'query' and 'positive' are empty"),
])
def test_bad_rows_name_the_file_and_field(tmp_path, edit, message):
    rows = documented_rows(10)
    edit(rows[0])
    path = _jsonl(tmp_path, rows)
    with pytest.raises(DataError, match=f"^{path}.*{message}"):
        _load(tmp_path, path)


@pytest.mark.parametrize("group, message", [
    (1.5, "field 'group' has type double; group ids must be strings or integers"),
    ([1, 2], "field 'group' has type list<item: int64>; group ids must be strings or integers"),
    (True, "field 'group' has type bool"),
])
def test_group_id_of_the_wrong_type(tmp_path, group, message):
    rows = [{**r, "group": group} for r in documented_rows(10)]
    with pytest.raises(DataError, match=f"^{tmp_path / 'bad.jsonl'}: {message}"):
        _load(tmp_path, _jsonl(tmp_path, rows))
    pd.DataFrame(rows).to_parquet(tmp_path / "bad.parquet")
    with pytest.raises(DataError, match=f"^{tmp_path / 'bad.parquet'}: field 'group' has type"):
        _load(tmp_path, tmp_path / "bad.parquet")


def test_integer_group_ids_are_fine_and_mixed_types_are_one_error(tmp_path):
    rows = [{**r, "group": int(r["group"][1:])} for r in documented_rows(10)]
    assert _load(tmp_path, _jsonl(tmp_path, rows, "ints.jsonl")).batch_at(0).items[0].group.isdigit()
    rows[5]["group"] = "g5"
    with pytest.raises(DataError, match=f"^{tmp_path / 'mixed.jsonl'}: cannot read .*group"):
        _load(tmp_path, _jsonl(tmp_path, rows, "mixed.jsonl"))


def test_no_rows_left_after_holdout(tmp_path):
    path = _jsonl(tmp_path, documented_rows(2))
    with pytest.raises(DataError, match=f"^{path}: no rows left for training after data.dev.holdout=0.999"):
        _load(tmp_path, path, "data.dev.holdout=0.999")


def test_negatives_asked_of_a_source_without_any(tmp_path):
    rows = documented_rows(12, negatives=0)
    path = _jsonl(tmp_path, rows)
    with pytest.raises(ConfigError, match=rf"^sampler.n_negatives: 1 hard negatives asked of source '{path}', which has none"):
        _load(tmp_path, path)
    assert _load(tmp_path, path, "sampler.n_negatives=0").batch_at(0).items[0].negatives == ()
    assert _load(tmp_path, path, "+data.sources.0.n_negatives=0").batch_at(0).items[0].negatives == ()
    with pytest.raises(ConfigError, match="^data.sources.0.n_negatives: must be >= 0, got -1"):
        _load(tmp_path, path, "+data.sources.0.n_negatives=-1")


def test_hub_source_with_a_missing_column(tmp_path):
    repos = write_swim_ir(tmp_path / "hub", cross_langs=("de",), mono_langs=("en",))
    cfg = compose("data=swim_ir", "data.sources.0.fields.query=question", f"data.cache_dir={tmp_path / 'cache'}",
                  config_name="train")
    with open_dict(cfg):
        cfg.data.sources[0].languages = {"de": {"path": str(repos["swim-ir-cross-lingual"]), "name": "de",
                                                "cache_dir": str(tmp_path / "hf_cache")}}
    with pytest.raises(DataError, match=r"\[de\]: missing column 'question' \(data.sources.fields.query; have: _id, lang"):
        load_training_data(cfg)


def test_mmarco_triple_with_an_unknown_passage_id(tmp_path):
    folder = write_mmarco(tmp_path / "hub")
    triples = folder / "data" / "triples.train.ids.small.tsv"
    triples.write_text(triples.read_text() + "7\t99999\t500\n")
    cfg = compose("data=mmarco", f"data.cache_dir={tmp_path / 'cache'}", "data.sources.0.max_rows_per_lang=null",
                  config_name="train")
    with open_dict(cfg):
        cfg.data.sources[0].path = str(folder)
    with pytest.raises(DataError, match=r"\[en\]: positive passage id 99999 of triple 72 not found"):
        load_training_data(cfg)


def test_cli_says_one_line_and_builds_no_model(tmp_path):
    rows = documented_rows(10)
    rows[3].pop("lang")
    rows[0].pop("lang")
    path = _jsonl(tmp_path, rows)
    out = tmp_path / "out"
    res = subprocess.run([sys.executable, "-m", "hybrid_sweep.train", "data=jsonl", f"data.sources.0.path={path}",
                          f"data.cache_dir={tmp_path / 'cache'}", f"output_dir={out}"],
                         capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert res.returncode == 2, res.stderr
    lines = [ln for ln in res.stderr.splitlines() if ln.startswith("error:")]
    assert lines == [f"error: {path}: missing column 'lang' (have: group, query, positive, negatives)"]
    assert not (out / "init_model").exists() and not (out / "model").exists()
    assert not list((tmp_path / "cache").glob("*/DONE"))  # nothing half-converted marked complete
    assert json.loads(path.read_text().splitlines()[1])["lang"] == "en"  # (the file itself is untouched)
