"""Every declared field of every section, evaluation kind and training-source kind is checked by
``config.load`` before anything runs: a bad value (from the field's own check, or of the wrong type) is
one ``ConfigError`` naming the full dotted key. The walk covers every field that carries a check, so a
new checked field (or a new kind) is tested without editing this file."""

import copy
import dataclasses
import typing
from pathlib import Path

import pytest
from omegaconf import DictConfig, ListConfig, OmegaConf

from hybrid_sweep.config import load
from hybrid_sweep.config.eval_kinds import EVAL_KINDS, EvalConfig, LAREQA_NAMES
from hybrid_sweep.config.eval_kinds import KINDS as EVAL_SCHEMAS
from hybrid_sweep.config.marks import mark, section_type
from hybrid_sweep.config.sources import KINDS as SOURCE_SCHEMAS
from hybrid_sweep.config.sources import SOURCE_KINDS, DevConfig, HoldoutConfig, SourceConfig
from hybrid_sweep.config.stages import AppConfig
from hybrid_sweep.errors import ConfigError
from tests.conftest import ROOT, compose

FILE, FOLDER = str(ROOT / "README.md"), str(ROOT / "tests")  # paths that exist
SOURCES = [  # one training source of every kind, valid as far as the config can tell
    {"kind": "synthetic", "split": "train"},
    {"kind": "lareqa", "benchmark": "mlqa_r"},
    {"kind": "file", "path": FILE},
    {"kind": "hub", "name": "h", "fields": {"group": "_id"}, "languages": {"de": {"path": "x"}}},
    {"kind": "mmarco", "path": "p", "triples": "t", "collection": "c", "queries": "q", "languages": {"en": "english"}},
    {"kind": "flores", "languages": {"de": "deu_Latn", "en": "eng_Latn"}},
    {"kind": "inverse_cloze", "benchmark": "mlqa_r"},
]


@pytest.fixture(scope="module")
def base() -> dict:
    """A config with every section switched on and an entry of every evaluation and source kind."""
    cfg = compose("pretrain=mlm", "+eval@evals.ret=beir", f"evals.ret.path={FOLDER}", "+eval@evals.flo=flores",
                  "+eval@evals.mt=mteb", "evals.mt.tasks=[NanoNFCorpusRetrieval]", "+eval@evals.xr=xquad_r",
                  config_name="config")
    data = OmegaConf.to_container(cfg, resolve=True)
    data["evals"]["ret"]["trec"] = {k: FILE for k in ("corpus", "topics", "qrels")}
    data["data"].update(sources=copy.deepcopy(SOURCES), dev={"holdout": 0.1, "seed": 0, "source": 0},
                        budgets={"qla": 10}, pivot="qla", languages=["qla", "qlb"])
    data["train"].update(dropout=0.1, patience=2, schedule_steps=10)
    data["sampler"]["n_pairs"] = 2
    data["resources"]["threads"] = 1
    data["encoder"]["layers"] = 2
    data["pretrain"]["max_texts_per_language"] = 5
    for name in ("xr", "synthetic"):
        data["evals"][name]["subset"] = {"articles": 2}
    data["evals"]["ret"]["max_length"] = 64
    data["evals"]["mt"]["splits"] = ["test"]
    return data


def _walk(node, key=""):
    """(dotted key, owning dataclass, field, value) for every declared field below a typed node (sections,
    named entries, list elements of typed kinds)."""
    cls = OmegaConf.get_type(node)
    for f in dataclasses.fields(cls):
        at = f"{key}.{f.name}" if key else f.name
        value = node[f.name]
        yield at, cls, f, value
        children = []
        if isinstance(value, DictConfig) and mark(f, "items") is not None:
            children = [(f"{at}.{k}", v) for k, v in value.items()]
        elif isinstance(value, ListConfig) and mark(f, "kinds") is not None:
            children = [(f"{at}.{i}", v) for i, v in enumerate(value)]
        elif isinstance(value, DictConfig) and dataclasses.is_dataclass(OmegaConf.get_type(value)):
            children = [(at, value)]
        for child_key, child in children:
            yield from _walk(child, child_key)


def _set(data: dict, key: str, value) -> dict:
    out = copy.deepcopy(data)
    *parents, last = key.split(".")
    node = out
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    node[int(last) if isinstance(node, list) else last] = value
    return out


def _schema_classes() -> set:
    """Every dataclass reachable from AppConfig: sections, evaluation kinds, source kinds, the dev split."""
    seen, todo = set(), [AppConfig, *EVAL_SCHEMAS.values(), *SOURCE_SCHEMAS.values(), HoldoutConfig]
    while todo:
        cls = todo.pop()
        if cls in seen:
            continue
        seen.add(cls)
        todo += [section_type(f) for f in dataclasses.fields(cls) if section_type(f) is not None]
    return seen


def _checked_fields() -> set:
    return {(cls, f.name) for cls in _schema_classes() for f in dataclasses.fields(cls) if mark(f, "check") is not None}


def _bad_value(f, current):
    bad = mark(f, "check").bad
    if isinstance(current, dict) and isinstance(bad, list):  # a mapping keyed by names
        return {b: next(iter(current.values())) for b in bad}
    return bad


def _refused(data: dict, key: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load(data)
    err = info.value
    assert "\n" not in str(err)
    assert err.key == key, f"{key}: the error names {err.key!r} ({err})"
    return err


def test_the_base_config_is_valid_and_has_every_kind(base):
    typed = load(base)
    kinds = {OmegaConf.get_type(e) for e in typed.evals.values()}
    assert kinds == set(EVAL_SCHEMAS.values()) and set(EVAL_SCHEMAS) == set(EVAL_KINDS)
    assert {OmegaConf.get_type(s) for s in typed.data.sources} == set(SOURCE_SCHEMAS.values())
    assert set(SOURCE_SCHEMAS) == set(SOURCE_KINDS) and OmegaConf.get_type(typed.data.dev) is HoldoutConfig


def test_every_checked_field_refuses_its_bad_value(base):
    typed = load(base)
    visited = set()
    for key, owner, f, value in _walk(typed):
        if mark(f, "check") is None:
            continue
        visited.add((owner, f.name))
        current = OmegaConf.to_container(value) if isinstance(value, DictConfig | ListConfig) else value
        _refused(_set(base, key, _bad_value(f, current)), key)
    missing = _checked_fields() - visited
    assert not missing, f"checked fields the walk never reached (add the kind to base): {sorted(missing, key=str)}"


def _scalar(tp):
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    tp = args[0] if typing.get_origin(tp) is typing.Union and len(args) == 1 else tp
    return tp if tp in (int, float, bool) else None


def test_every_typed_scalar_refuses_a_value_of_another_type(base):
    typed, n = load(base), 0
    for key, _, f, _ in _walk(typed):
        tp = _scalar(f.type)
        if tp is None:
            continue
        n += 1
        err = _refused(_set(base, key, "maybe" if tp is bool else "abc"), key)
        assert "not a valid bool" in str(err) or "could not be converted" in str(err)
    assert n > 60


BAD_COMBINATIONS = [  # checks across fields (the stages' `check`): key, value, error key, message
    ("train.max_steps", 0, "train.max_steps", "must be >= 1 when training is enabled"),
    ("sampler.ratio.mono", 0.9, "sampler.ratio", "sum to 1"),
    ("encoder.tiny", None, "encoder.tiny", "kind=tiny needs"),
    ("pretrain.n_low_resource", 9, "pretrain.n_low_resource", "must be in 0..2"),
    ("data.sources", [], "data.sources", "no training sources"),
    ("data.languages", [], "data.languages", "empty training-language set"),
    ("data.dev.source", 7, "data.dev.source", "index of the source"),
    ("data.budgets.qla", -1, "data.budgets.qla", "must be >= 0"),
    ("data.sources.3.fields.group", None, "data.sources.3.fields.group", "names no group column"),
    ("data.sources.3.languages", {}, "data.sources.3.languages", "lists no languages"),
    ("data.sources.5.languages", {"de": "deu_Latn"}, "data.sources.5.languages", "at least two languages"),
    ("data.sources.0.kind", "tsv", "data.sources.0.kind", "unknown kind 'tsv'; one of synthetic"),
    ("data.sources.0.splitt", "dev", "data.sources.0.splitt", "unknown key (declared: kind, name, n_negatives, split)"),
    ("data.dev.kind", "synthetic", "data.dev.holdout", "unknown key (declared: kind, name, n_negatives, split)"),
    ("evals.ret.settings", ["cross"], "evals.ret.settings", "retrieval tasks have one setting, mono"),
    ("evals.ret.path", None, "evals.ret.path", "set evals.ret.path=<local folder>"),
    ("evals.ret.format", "trec", None, None),  # valid: the three files are set
    ("evals.ret.subset", {"articles": 3}, "evals.ret.subset.articles", "only for kind=pooled"),
    ("evals.ret.candidate_text", "sentence_context", "evals.ret.candidate_text", "only for kind=pooled"),
    ("evals.ret.dataset", 3, "evals.ret.dataset", "a hub dataset name or a list"),
    ("evals.ret.revison", "abc", "evals.ret.revison", "unknown key (declared: kind, name, benchmark"),
    ("evals.flo.settings", ["mono"], "evals.flo.settings", "unknown setting 'mono'; one of cross, multi"),
    ("evals.mt.tasks", [], "evals.mt.tasks", "name at least one MTEB task"),
    ("evals.mt.settings", ["mono"], "evals.mt.settings", "unknown key (declared: kind, name, benchmark, languages, tas"),
    ("evals.xr.benchmark", "xquad", "evals.xr.benchmark", f"one of synthetic, {', '.join(LAREQA_NAMES)}"),
    ("evals.synthetic.split", "validation", "evals.synthetic.split", "unknown split 'validation'"),
    ("evals.synthetic.languages", "qla", "evals.synthetic.languages", "a list of language codes, all, or null"),
    ("evals.synthetic.languages", [], "evals.synthetic.languages", "empty list"),
    ("evals.synthetic.kind", "bier", "evals.synthetic.kind", "unknown kind 'bier'; one of pooled, retrieval"),
    ("evals.synthetic.embedding_store", True, "evals.synthetic.embedding_store", "unknown key"),
    ("evals", {"../up": {"name": "x", "benchmark": "synthetic"}}, "evals.../up", "not a plain name"),
]


@pytest.mark.parametrize("key, value, error_key, message", BAD_COMBINATIONS,
                         ids=[f"{c[0]}={c[1]!r}" for c in BAD_COMBINATIONS])
def test_checks_across_fields_name_the_key(base, key, value, error_key, message):
    data = _set(base, key, value)
    if error_key is None:
        load(data)
        return
    assert message in str(_refused(data, error_key))


def test_a_zero_shot_run_checks_no_training_setting(base):
    data = _set(_set(base, "train.enabled", False), "train.temperature", -1.0)
    load(data)  # the switched-off section is neither checked nor hashed (test_config_schema)
    _refused(_set(data, "encoder.batch_size", 0), "encoder.batch_size")


def test_eval_loaders_check_entries_that_did_not_come_through_load(base):
    """The loaders type a raw entry the same way (the evaluate CLI and direct calls), naming eval.*."""
    from hybrid_sweep.data.benchmark_loading import validate_eval_config

    entry = dict(base["evals"]["ret"], format="bier")
    with pytest.raises(ConfigError, match=r"^eval.format: unknown format 'bier'; one of auto, beir, mteb, trec$"):
        validate_eval_config(entry)
    assert OmegaConf.get_type(validate_eval_config(base["evals"]["mt"])) is EVAL_SCHEMAS["mteb"]


def test_kind_lists_are_defined_once():
    from hybrid_sweep.config.eval_kinds import FLORES_SETTINGS, SETTINGS
    from hybrid_sweep.data import benchmark, benchmark_loading, corpus_loading, flores_benchmark
    from hybrid_sweep.data.lareqa import LAREQA_BENCHMARKS

    assert benchmark_loading.EVAL_KINDS is EVAL_KINDS and "mteb" in EVAL_KINDS
    assert benchmark.SETTINGS is SETTINGS and flores_benchmark.FLORES_SETTINGS is FLORES_SETTINGS
    assert corpus_loading.SOURCE_KINDS is SOURCE_KINDS
    assert set(LAREQA_NAMES) == set(LAREQA_BENCHMARKS)
    assert EvalConfig.schema_for({"kind": "mteb"}) is EVAL_SCHEMAS["mteb"]
    assert DevConfig.schema_for({"holdout": 0.1}) is HoldoutConfig
    assert SourceConfig.schema_for({"kind": "file"}) is SOURCE_SCHEMAS["file"]


def test_a_stored_config_loads_where_its_files_are_missing(base):
    """collect reads runs' configs on any machine: paths=False skips the local existence checks only."""
    gone = _set(base, "data.sources.2.path", "/nonexistent/train.jsonl")
    _refused(gone, "data.sources.2.path")
    assert load(gone, paths=False).data.sources[2].path == "/nonexistent/train.jsonl"
    with pytest.raises(ConfigError, match="^train.temperature"):
        load(_set(gone, "train.temperature", 0.0), paths=False)


def test_a_typed_source_hashes_the_same_every_time(base):
    from hybrid_sweep.runs.store import run_id

    ids = {run_id(load(copy.deepcopy(base))) for _ in range(2)}
    assert len(ids) == 1
    assert run_id(load(_set(base, "data.sources.2.parallel", False))) not in ids
    assert Path(FILE).exists() and Path(FOLDER).is_dir()
