"""Run ids are the addresses of results on disk: they may change only with ``CONFIG_SCHEMA_VERSION``
(a sweep and collect then refuse a root of the old generation in one line). Otherwise an edit that moves
them would leave every finished run behind and recompute it under a new id, beside the old one.

REFERENCE holds, per generation, the ids its released code gave configs covering every section: schema 2's
from commit a278443 (unpacked with ``git archive`` and its run ids printed), schema 3's (the run id became
the checkpoint key: evaluation entries left it) recorded when schema 3 was released, before any later
change; they are results folders on disk, not this code's output. A change that moves one either bumps
CONFIG_SCHEMA_VERSION (records the new generation here, and gives older roots a migration or a one-line
refusal) or, for a new field, declares the value that keeps the old behaviour: ``setting(..., absent=<value>)``.
EVAL_REFERENCE does the same for evaluation keys (``runs/<id>/eval/<name>/<eval key>/``)."""

from dataclasses import make_dataclass

import pytest

from hybrid_sweep.config import CONFIG_SCHEMA_VERSION, load, semantic_config
from hybrid_sweep.config.marks import section, setting
from hybrid_sweep.config.stages import AppConfig, SamplerConfig
from hybrid_sweep.runs.store import config_hash, eval_key, run_id
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
], "3": [  # the same configs; adding a benchmark no longer moves the id (defaults == +eval@evals.xquad_r)
    ((), "5f33775f16c0"),
    (("train.enabled=false",), "9a2265389a53"),
    (("+sweep=language_pairs", "sampler.n_pairs=1", "train.seed=0"), "e7e628bf4abd"),
    (("+ratio=mono",), "9dd9de10cd35"),
    (("sampler=cross", "train.seed=2"), "b4cf6bb76f5f"),
    (("pretrain=mlm",), "ba9a43e12c35"),
    (("+eval@evals.xquad_r=xquad_r",), "5f33775f16c0"),
    (("data=mlqa_r", "encoder=me5_small_q4", "~eval@evals.synthetic", "+eval@evals.xquad_r=xquad_r"), "ec585104668d"),
    (("+sweep=real_rq1", "~eval@evals.synthetic", "sampler.n_pairs=21", "train.seed=1"), "5b986ed516e6"),
    (("+sweep=real_rq3", "~eval@evals.synthetic", "data.languages=[en,de]", "data.language_draw=fixed",
      "train.seed=0"), "88cc1c797e69"),  # real_rq3 now draws per seed; the released (fixed-order) runs keep ids
    (("+sweep=low_resource_pretrain_flores", "~eval@evals.synthetic", "pretrain.n_low_resource=2", "train.seed=0"),
     "137fcc4a4881"),
]}
EVAL_REFERENCE = {"3": [  # (overrides, entry name, eval key)
    ((), "synthetic", "c714e4649345"),
    (("+eval@evals.xquad_r=xquad_r",), "xquad_r", "d51b90be7aa7"),
    (("+eval@evals.flores=flores",), "flores", "5f30ae7b52ce"),
    (("+eval@evals.toy=beir", "evals.toy.dataset=org/toy"), "toy", "ba9f71ca9e11"),
    (("+eval@evals.m=miracl",), "m", "c561b1619045"),
    (("evals.synthetic.full_rank_max=49999",), "synthetic", "35cdd8853f17"),
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


@pytest.mark.parametrize("overrides, name, expected", EVAL_REFERENCE.get(CONFIG_SCHEMA_VERSION, []),
                         ids=[f"{n}:{' '.join(o)}" for o, n, _ in EVAL_REFERENCE.get(CONFIG_SCHEMA_VERSION, [])])
def test_eval_keys_of_released_results_are_kept(overrides, name, expected):
    assert eval_key(_compose(overrides), name) == expected


def test_train_val_seed_was_added_without_moving_ids():
    """train.val_seed (session 4) declares absent=None: default runs keep their ids, a set value is a new run."""
    overrides, expected = REFERENCE[CONFIG_SCHEMA_VERSION][0]
    assert run_id(_compose((*overrides, "train.val_seed=null"))) == expected
    assert run_id(_compose((*overrides, "train.val_seed=0"))) != expected


def _app_with_new_sampler_field(**marks):
    sampler = make_dataclass("SamplerLater", [("mix_temperature", float, setting(1.0, **marks))], bases=(SamplerConfig,))
    return make_dataclass("AppLater", [("sampler", sampler, section(sampler, active_when=("train.enabled",)))],
                          bases=(AppConfig,))


TRAINED = [REFERENCE[CONFIG_SCHEMA_VERSION][i] for i in (0, 2, 3, 4)]  # the sampler is active (not the zero-shot run)


def _ids(app, *extra, runs=TRAINED):
    return [config_hash(semantic_config(load(_compose((*o, *extra)), app), app)) for o, _ in runs]


def test_a_field_added_with_its_absent_value_keeps_every_id():
    kept = _app_with_new_sampler_field(absent=1.0)
    assert _ids(kept) == [rid for _, rid in TRAINED]
    moved = _ids(kept, "+sampler.mix_temperature=2.0")  # any other value is a new condition
    assert all(a != b for a, b in zip(moved, _ids(kept)))
    zero_shot = [REFERENCE[CONFIG_SCHEMA_VERSION][1]]  # no training: the sampler's fields are not in its id at all
    assert _ids(kept, "+sampler.mix_temperature=2.0", runs=zero_shot) == [zero_shot[0][1]]
    unmarked = _app_with_new_sampler_field()  # without `absent` every trained run would get a new id
    assert all(a != b for a, b in zip(_ids(unmarked), [rid for _, rid in TRAINED]))
