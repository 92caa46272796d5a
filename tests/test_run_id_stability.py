"""Run ids are the addresses of results on disk: they may change only with ``CONFIG_SCHEMA_VERSION``
(a sweep and collect then refuse a root of the old generation in one line). Otherwise an edit that moves
them would leave every finished run behind and recompute it under a new id, beside the old one.

REFERENCE holds the ids that the released schema-2 code (commit a278443, unpacked with ``git archive`` and
its run ids printed) gave configs covering every section; they are that release's results folders, not
this code's output. A change that moves one either bumps CONFIG_SCHEMA_VERSION (and records the new
generation here) or, for a new field, declares the value that keeps the old behaviour:
``setting(..., absent=<value>)``."""

from dataclasses import make_dataclass

import pytest

from hybrid_sweep.config import CONFIG_SCHEMA_VERSION, load, semantic_config
from hybrid_sweep.config.marks import section, setting
from hybrid_sweep.config.stages import AppConfig, SamplerConfig
from hybrid_sweep.runs.store import config_hash, run_id
from tests.conftest import compose

REFERENCE = {"2": [
    ((), "ecafe4b9a459"),
    (("train.enabled=false",), "77d29db8e278"),
    (("+sweep=language_pairs", "sampler.n_pairs=1", "train.seed=0"), "e40a9a2a5a06"),
    (("+ratio=mono",), "24320286b7da"),
    (("sampler=cross", "train.seed=2"), "c8a2f5dfc592"),
    (("pretrain=mlm",), "fd9933ab1d74"),
    (("+eval@evals.xquad_r=xquad_r",), "6035e4085c02"),
    (("data=mlqa_r", "encoder=me5_small_q4", "~eval@evals.synthetic", "+eval@evals.xquad_r=xquad_r"), "c7623e13ff75"),
    (("+sweep=real_rq1", "~eval@evals.synthetic", "sampler.n_pairs=21", "train.seed=1"), "5443651fddba"),
    (("+sweep=real_rq3", "~eval@evals.synthetic", "data.languages=[en,de]", "train.seed=0"), "95bf287c02b2"),
    (("+sweep=low_resource_pretrain_flores", "~eval@evals.synthetic", "pretrain.n_low_resource=2", "train.seed=0"),
     "4661eb9d87d3"),
]}


def _compose(overrides):
    return compose(*overrides, "results_root=/tmp/unused", config_name="config")


def test_the_schema_version_has_reference_ids():
    assert CONFIG_SCHEMA_VERSION in REFERENCE, (
        f"config schema {CONFIG_SCHEMA_VERSION}: record its reference run ids in this file")


@pytest.mark.parametrize("overrides, expected", REFERENCE.get(CONFIG_SCHEMA_VERSION, []),
                         ids=[" ".join(o) or "defaults" for o, _ in REFERENCE.get(CONFIG_SCHEMA_VERSION, [])])
def test_run_ids_of_released_results_are_kept(overrides, expected):
    assert run_id(_compose(overrides)) == expected


def test_train_val_seed_was_added_without_moving_ids():
    """train.val_seed (session 4) declares absent=None: default runs keep their ids, a set value is a new run."""
    overrides, expected = REFERENCE["2"][0]
    assert run_id(_compose((*overrides, "train.val_seed=null"))) == expected
    assert run_id(_compose((*overrides, "train.val_seed=0"))) != expected


def _app_with_new_sampler_field(**marks):
    sampler = make_dataclass("SamplerLater", [("mix_temperature", float, setting(1.0, **marks))], bases=(SamplerConfig,))
    return make_dataclass("AppLater", [("sampler", sampler, section(sampler, active_when=("train.enabled",)))],
                          bases=(AppConfig,))


TRAINED = [REFERENCE["2"][i] for i in (0, 2, 3, 4)]  # the sampler is active (not the zero-shot run)


def _ids(app, *extra, runs=TRAINED):
    return [config_hash(semantic_config(load(_compose((*o, *extra)), app), app)) for o, _ in runs]


def test_a_field_added_with_its_absent_value_keeps_every_id():
    kept = _app_with_new_sampler_field(absent=1.0)
    assert _ids(kept) == [rid for _, rid in TRAINED]
    moved = _ids(kept, "+sampler.mix_temperature=2.0")  # any other value is a new condition
    assert all(a != b for a, b in zip(moved, _ids(kept)))
    zero_shot = [REFERENCE["2"][1]]  # no training: the sampler's fields are not in its id at all
    assert _ids(kept, "+sampler.mix_temperature=2.0", runs=zero_shot) == [zero_shot[0][1]]
    unmarked = _app_with_new_sampler_field()  # without `absent` every trained run would get a new id
    assert all(a != b for a, b in zip(_ids(unmarked), [rid for _, rid in TRAINED]))
