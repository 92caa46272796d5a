"""The typed stage configs: declared fields own defaults and validation, and the run id, the stage-cache
key, collect's condition keys and the results' axis columns all follow from the field marks."""

import json
from dataclasses import make_dataclass
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml
from omegaconf import OmegaConf

from hybrid_sweep import results_schema
from hybrid_sweep.collect import collect
from hybrid_sweep.config import CONFIG_SCHEMA_VERSION, AppConfig, axis_specs, axis_values, is_condition_override, load, semantic_config
from hybrid_sweep.config.marks import section, setting
from hybrid_sweep.config.eval_kinds import FloresEvalConfig, MtebEvalConfig, PooledEvalConfig, RetrievalEvalConfig
from hybrid_sweep.config.stages import (DataConfig, EncoderConfig, PathsConfig, SamplerConfig, SyntheticConfig,
                                        TrainConfig)
from hybrid_sweep.errors import ConfigError, DataError
from hybrid_sweep.runs.store import config_hash, run_id
from tests.conftest import ROOT
from tests.conftest import compose as _compose


def compose(*overrides, config_name="config"):
    return _compose(*overrides, config_name=config_name)


# --- every preset of every group composes and passes the schema ---------------------------------------

def _group_options():
    """(override, primary config) for every YAML preset under conf/ (base files are not options)."""
    conf = ROOT / "conf"
    appended = {"ratio", "langs", "sweep"}  # groups not in config.yaml's defaults list: added with +
    out = []
    for path in sorted(conf.rglob("*.yaml")):
        rel = path.relative_to(conf)
        if len(rel.parts) == 1 or path.stem.endswith("base"):  # base, retrieval_base
            continue
        group = "/".join(rel.parts[:-1])
        if group == "eval":
            out.append((f"+eval@evals.extra={path.stem}", "config"))
        elif group in appended:
            out.append((f"+{group}={path.stem}", "config"))
        else:
            out.append((f"{group}={path.stem}", "config"))
    return out


PRESETS = _group_options()
_FILE = ROOT / "README.md"  # any existing file: paths are checked to exist
REQUIRED = {"data=jsonl": [f"data.sources.0.path={_FILE}"], "data=parquet": [f"data.sources.0.path={_FILE}"],
            "+eval@evals.extra=beir": [f"evals.extra.path={ROOT / 'tests'}"],
            "+eval@evals.extra=trec": [f"evals.extra.trec.{k}={_FILE}" for k in ("corpus", "topics", "qrels")],
            "+eval@evals.extra=mteb": ["evals.extra.tasks=[NanoNFCorpusRetrieval]"]}  # values users must give


def test_a_required_value_left_unset_is_named():
    with pytest.raises(ConfigError, match=r"^data.sources.0.path: required and not set"):
        load(compose("data=jsonl"))


def test_every_group_folder_is_covered():
    groups = {p.parent.relative_to(ROOT / "conf").as_posix() for p in (ROOT / "conf").rglob("*.yaml")
              if p.parent != ROOT / "conf"}
    covered = {o.split("=")[0].lstrip("+").split("@")[0] for o, _ in PRESETS}
    assert groups == covered


@pytest.mark.parametrize("override, primary", PRESETS, ids=[o for o, _ in PRESETS])
def test_every_preset_composes_and_validates(override, primary):
    if override.startswith("hydra/launcher=") and "slurm" in override:
        pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    from hybrid_sweep.app import validate

    cfg = compose(override, *REQUIRED.get(override, []), config_name=primary)
    typed = validate(cfg)  # the schema, and the training languages against what the sources can hold
    assert OmegaConf.get_type(typed) is AppConfig
    run_id(typed)  # every preset hashes


@pytest.mark.parametrize("primary", ["config", "train", "evaluate"])
def test_primary_configs_validate(primary):
    load(compose(config_name=primary), primary)


def _base_values(path: Path) -> dict:
    data = yaml.safe_load(path.read_text())
    data.pop("defaults", None)
    return {k: v for k, v in data.items() if v != "???"}


@pytest.mark.parametrize("cls, file", [(EncoderConfig, "encoder/base.yaml"), (SamplerConfig, "sampler/base.yaml"),
                                       (TrainConfig, "train/base.yaml"), (DataConfig, "data/base.yaml"),
                                       (PooledEvalConfig, "eval/base.yaml"), (RetrievalEvalConfig, "eval/retrieval_base.yaml"),
                                       (FloresEvalConfig, "eval/flores.yaml"), (MtebEvalConfig, "eval/mteb.yaml"),
                                       (SyntheticConfig, "synthetic/default.yaml"),
                                       (PathsConfig, "paths/default.yaml")])
def test_base_presets_repeat_the_declared_defaults(cls, file):
    """The dataclasses own the defaults; the base YAML files (what users read) must not drift from them."""
    declared = OmegaConf.to_container(OmegaConf.structured(cls))
    for key, value in _base_values(ROOT / "conf" / file).items():
        assert key in declared, f"{file}: {key} is not declared in {cls.__name__}"
        assert declared[key] in (value, "???"), f"{file}: {key}={value!r}, {cls.__name__} says {declared[key]!r}"


# --- validation: one place, one line naming the key -----------------------------------------------------

@pytest.mark.parametrize("override, message", [
    ("+sampler.temprature=1", r"^sampler.temprature: unknown key \(declared: ratio, n_pairs"),
    ("train.batch_size=abc", r"^train.batch_size: Value 'abc' of type 'str' could not be converted to Integer"),
    ("train.batch_size=1", r"^train.batch_size: must be >= 2"),
    ("sampler.ratio.mono=0.9", r"^sampler.ratio: mono/cross/mixed must be >= 0 and sum to 1"),
    ("sampler.n_pairs=0", r"^sampler.n_pairs: must be a positive integer, got 0"),
    ("+sampler.ratio.multi=0.5", r"^sampler.ratio.multi: unknown key \(declared: mono, cross, mixed\)"),
    ("encoder.pooling=max", r"^encoder.pooling: unknown pooling 'max'; one of mean, cls"),
    ("evals.synthetic.subset.articles=0", r"^evals.synthetic.subset.articles: must be a positive integer"),
    ("resources.start=thread", r"^resources.start: unknown start 'thread'; one of fork, spawn"),
    ("data.languages=[]", r"^data.languages: empty training-language set"),
    ("evals.synthetic.languages=qla", r"^evals.synthetic.languages: a list of language codes, all, or null; got 'qla'"),
])
def test_bad_values_are_one_line_naming_the_key(override, message):
    with pytest.raises(ConfigError, match=message):
        load(compose(override))


def test_switched_off_stages_are_not_validated_or_hashed():
    """A zero-shot run checks and hashes no training settings (one evaluation shared by every sweep)."""
    zero = load(compose("train.enabled=false", "sampler.n_pairs=0"))
    assert "sampler" not in semantic_config(zero) and "train" not in semantic_config(zero)
    assert run_id(zero) == run_id(compose("train.enabled=false", "sampler=cross", "train.seed=4"))
    assert axis_values(zero)["sampler"] == "zero-shot" and axis_values(zero)["max_steps"] == 0


def test_no_section_is_open_and_kind_specific_keys_are_typed():
    """Every key of an evaluation entry or a training source is declared by its kind's dataclass."""
    with pytest.raises(ConfigError, match=r"^evals.synthetic.kind_specific: unknown key \(declared: kind, name"):
        load(compose("+evals.synthetic.kind_specific=3"))
    plain, pivot = load(compose()), load(compose("+data.pivot=qla"))
    assert run_id(pivot) != run_id(plain) and is_condition_override("+data.pivot=qla")
    assert OmegaConf.get_type(plain.evals.synthetic) is PooledEvalConfig
    assert type(plain.data.sources[0]).__name__ == "DictConfig" and plain.data.sources[0].split == "train"
    assert run_id(load(compose())) == run_id(plain)  # a typed source hashes the same every time


# --- the batch mix ---------------------------------------------------------------------------------------

def test_two_spellings_of_one_mix_are_one_run():
    assert run_id(compose("sampler=mono")) == run_id(compose("+ratio=mono"))
    assert run_id(compose("sampler=cross", "+ratio=hybrid")) == run_id(compose("sampler=hybrid"))
    assert run_id(compose("sampler=mono")) != run_id(compose("sampler=cross"))
    mixed = compose("sampler=mixed")
    assert run_id(mixed) == run_id(compose("+ratio=mixed"))
    assert dict(mixed.sampler.ratio) == {"mono": 0.0, "cross": 0.0, "mixed": 1.0}
    assert axis_values(mixed)["ratio_mixed"] == 1.0 and axis_values(mixed)["sampler"] == "mixed"


def test_mix_label_comes_from_the_ratio():
    """Every conf/ratio preset is labelled by its own name (mix-ratio rows were all `hybrid` before)."""
    for preset in sorted(p.stem for p in (ROOT / "conf" / "ratio").glob("*.yaml")):
        assert axis_values(compose(f"+ratio={preset}"))["sampler"] == preset
    odd = axis_values(compose("sampler.ratio.mono=0.6", "sampler.ratio.cross=0.4"))
    assert odd["sampler"] == "mono=0.6,cross=0.4,mixed=0" and odd["ratio_mono"] == 0.6


# --- marks drive everything --------------------------------------------------------------------------------

def _with_sampler_field(**mark):
    """AppConfig whose sampler declares one more field, and nothing else edited."""
    sampler = make_dataclass("SamplerPlus", [("mix_temperature", float, setting(1.0, **mark))], bases=(SamplerConfig,))
    return make_dataclass("AppPlus", [("sampler", sampler, section(sampler, active_when=("train.enabled",)))],
                          bases=(AppConfig,))


def test_a_new_field_reaches_the_run_id_and_the_axis_columns():
    app = _with_sampler_field(axis="mix_temperature", scale="log")
    base, changed = compose(), compose("+sampler.mix_temperature=2.0")
    ids = {config_hash(semantic_config(load(c, app), app)) for c in (base, changed)}
    assert len(ids) == 2
    assert semantic_config(load(changed, app), app)["sampler"]["mix_temperature"] == 2.0
    spec = next(s for s in axis_specs(app) if s.name == "mix_temperature")
    assert spec.numeric and spec.scale == "log"
    assert axis_values(load(changed, app), schema=app)["mix_temperature"] == 2.0
    assert is_condition_override("sampler.mix_temperature=2.0", app)
    assert "mix_temperature" not in [s.name for s in axis_specs()]  # the shipped schema is untouched


def test_a_field_marked_off_the_run_id_changes_neither_id_nor_conditions():
    app = _with_sampler_field(run_id=False)
    ids = {config_hash(semantic_config(load(c, app), app)) for c in (compose(), compose("+sampler.mix_temperature=2.0"))}
    assert len(ids) == 1
    assert not is_condition_override("sampler.mix_temperature=2.0", app)


def test_condition_keys_follow_the_marks():
    assert not is_condition_override("train.seed=3")  # repetition
    for key in ("results_root=x", "logger=wandb", "+sweep=seeds", "resources.threads=2", "encoder.device=cpu",
                "hydra/launcher=local_parallel", "evals.synthetic.block_size=8", "plan=true"):
        assert not is_condition_override(key), key
    for key in ("sampler=mono", "+ratio=thirds", "sampler.n_pairs=4", "+langs=syn3", "encoder.tiny.hidden=32"):
        assert is_condition_override(key), key


# --- results schema and collect ------------------------------------------------------------------------------

METRICS = pd.DataFrame({"benchmark": ["synthetic-test"] * 2, "setting": ["mono", "multi"], "query_lang": ["avg"] * 2,
                        "doc_lang": ["avg", "all"], "metric": ["map"] * 2, "value": [0.5, 0.25],
                        "n_queries": [10, 10], "n_skipped": [0, 0], "depth": ["full", "full"],
                        "max_length": pd.array([128, 128], dtype="Int64")})


def fake_run(root: Path, *overrides, schema_version=True) -> Path:
    """A finished run folder as the app writes it (config.yaml, run.json, evals.json, each evaluation's
    eval/<name>/<eval key>/metrics.parquet, artefacts.json, DONE)."""
    from hybrid_sweep.runs.store import RunDir, requested_evals

    cfg = load(compose(*overrides, f"results_root={root}"))
    rd = RunDir(root, run_id(cfg))
    folder = rd.path
    folder.mkdir(parents=True)
    rd.request(requested_evals(cfg))
    for name, entry in rd.evals().items():
        rd.eval_dir(name, entry["key"]).mkdir(parents=True)
        METRICS.to_parquet(rd.eval_dir(name, entry["key"]) / "metrics.parquet")
    data = OmegaConf.to_container(cfg, resolve=True)
    if not schema_version:  # what version 1 wrote: no schema_version, a sampler name
        data.pop("schema_version")
        data["sampler"]["name"] = "hybrid"
    (folder / "config.yaml").write_text(yaml.safe_dump(data))
    (folder / "run.json").write_text(json.dumps({"run_id": folder.name, "overrides": " ".join(overrides)}))
    rd.mark_done()
    return folder


def test_collect_writes_the_schema_metadata(tmp_path):
    fake_run(tmp_path, "train.seed=0")
    fake_run(tmp_path, "+ratio=thirds", "train.seed=0")
    runs, results = collect(tmp_path, quiet=True)
    meta = json.loads(pq.read_schema(tmp_path / "results.parquet").metadata[b"hybrid_sweep"])
    assert meta["schema_version"] == results_schema.SCHEMA_VERSION
    assert meta["axes"] == [s.name for s in axis_specs()] and "ratio_mono" in meta["numeric_axes"]
    assert set(meta["log_axes"]) <= set(meta["numeric_axes"])
    assert list(results.columns) == results_schema.columns("results")
    assert sorted(results.sampler.unique()) == ["hybrid", "thirds"]
    assert sorted(runs.variant) == ["", "+ratio=thirds"]
    table, read_meta = results_schema.read_table(tmp_path / "runs.parquet")
    assert read_meta["table"] == "runs" and len(table) == 2


def test_collect_skips_unchanged_inputs_and_redoes_changed_ones(tmp_path):
    fake_run(tmp_path, "train.seed=0")
    collect(tmp_path, quiet=True)
    stamp = (tmp_path / "results.parquet").stat().st_mtime_ns
    runs, results = collect(tmp_path, quiet=True)
    assert (tmp_path / "results.parquet").stat().st_mtime_ns == stamp and len(runs) == 1 and len(results) == 2
    fake_run(tmp_path, "train.seed=1")
    runs, results = collect(tmp_path, quiet=True)
    assert (tmp_path / "results.parquet").stat().st_mtime_ns != stamp and len(runs) == 2 and len(results) == 4


def test_collect_refuses_runs_of_two_run_id_generations(tmp_path, capsys):
    fake_run(tmp_path, "train.seed=0")
    fake_run(tmp_path, "train.seed=1", schema_version=False)
    with pytest.raises(DataError, match=r"1 of 2 runs \(e.g. [0-9a-f]{12}\) were written by config schema 1, whose "
                                        "run ids differ"):
        collect(tmp_path, quiet=True)
    assert not (tmp_path / "results.parquet").exists()


def test_schema_rejects_bad_values(tmp_path):
    bad = METRICS.assign(setting=["mono", "diagonal"])
    for col in ("run_id", "sweep", "variant", *results_schema.axes()):
        bad[col] = None
    with pytest.raises(DataError, match="column 'setting': value 'diagonal' not one of mono, cross, multi"):
        results_schema.write_table(tmp_path / "results.parquet", bad, "results")
    with pytest.raises(DataError, match="missing column 'run_id'"):
        results_schema.write_table(tmp_path / "results.parquet", METRICS, "results")
    METRICS.to_parquet(tmp_path / "old.parquet")
    with pytest.raises(DataError, match="results schema 1 \\(no metadata\\)"):
        results_schema.read_table(tmp_path / "old.parquet")


def test_a_sweep_refuses_a_root_of_another_generation(tmp_path):
    from hybrid_sweep.runs.store import STORE_FILE, check_store_version

    check_store_version(tmp_path / "fresh")  # a new root is stamped with the current schema
    assert json.loads((tmp_path / "fresh" / "runs" / STORE_FILE).read_text())["schema_version"] == CONFIG_SCHEMA_VERSION
    check_store_version(tmp_path / "fresh")  # and accepted again
    (tmp_path / "old" / "runs" / "0123456789ab").mkdir(parents=True)  # runs from before the stamp
    with pytest.raises(ConfigError, match=r"^results_root: .*old holds runs of config schema 1 whose run ids differ"):
        check_store_version(tmp_path / "old")
    assert not (tmp_path / "old" / "runs" / STORE_FILE).exists()


@pytest.mark.parametrize("sweep", ["real_rq1", "real_rq2", "real_rq3", "low_resource_pretrain_flores",
                                   "synthetic_languages_ict"])
def test_real_text_presets_train_on_length_sorted_sub_batches(sweep):
    """The real-encoder presets take the faster path by default (issue 21): sub-batches of at most 1,024
    padded tokens (2.01x examples/s at batch 128, 1.34x at 24 on an idle 2-core CPU, docs/benchmarks.md);
    the run id is the same as without it (max_tokens does not change the weights beyond fp tolerance)."""
    cfg = load(compose(f"+sweep={sweep}"))
    assert cfg.encoder.kind == "me5_small_q4" and cfg.train.max_tokens == 1024
    assert not cfg.train.keep_checkpoints  # model/ only once trained: 0.4 of 1.6 GB a run
    assert run_id(cfg) == run_id(load(compose(f"+sweep={sweep}", "train.max_tokens=null")))
