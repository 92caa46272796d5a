"""Continued MLM pre-training: a cached stage shared across fine-tuning runs, with its language axis."""

import json
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from hybrid_sweep.errors import ConfigError
from hybrid_sweep.runs.store import stage_cache_dir
from hybrid_sweep.training.pretrain import _texts, pretrain_languages
from tests.conftest import ROOT
from tests.conftest import compose as _compose


def compose(*overrides):
    return _compose(*overrides, config_name="config")

QUICK = ["pretrain=mlm", "pretrain.max_steps=4", "pretrain.batch_size=8", "train.max_steps=2", "train.batch_size=8",
         "train.eval_every=0", "encoder.progress=false", "evals.synthetic.subset.articles=2"]


def pretrain_key(cfg) -> str:
    return stage_cache_dir("root", "pretrain", cfg).name


def test_languages_and_key():
    base = compose("pretrain=mlm")
    assert pretrain_languages(base.pretrain) == ["qla", "qca", "qga"]
    two = compose("pretrain=mlm", "pretrain.n_low_resource=2")
    assert pretrain_languages(two.pretrain) == ["qla", "qca", "qga", "qcb", "qka"]
    assert pretrain_key(base) != pretrain_key(two)
    assert pretrain_key(base) == pretrain_key(compose("pretrain=mlm", "train.seed=7", "sampler=cross"))
    assert stage_cache_dir("root", "pretrain", base).parent.as_posix() == "root/cache/pretrain"  # owned by the run store
    # the key holds the resolved language list, not how it was spelled
    same = compose("pretrain=mlm", "pretrain.base_languages=[qla,qca]", "pretrain.low_resource=[qga]",
                   "pretrain.n_low_resource=1")
    assert pretrain_key(same) == pretrain_key(base)
    assert pretrain_key(base) != pretrain_key(compose("pretrain=mlm", "encoder.tiny.hidden=32"))
    assert pretrain_key(base) == pretrain_key(compose("pretrain=mlm", "encoder.progress=false", "encoder.batch_size=8"))
    with pytest.raises(ConfigError, match="pretrain.n_low_resource: must be in 0..3"):
        pretrain_languages(compose("pretrain=mlm", "pretrain.n_low_resource=4").pretrain)


def test_checkpoint_is_computed_once_and_shared(tmp_path):
    cmd = [sys.executable, "-m", "hybrid_sweep", "-m", "train.seed=0,1", *QUICK, f"results_root={tmp_path}"]
    res = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, (res.stdout + res.stderr)[-3000:]
    caches = list((tmp_path / "cache" / "pretrain").iterdir())
    assert len(caches) == 1 and (caches[0] / "DONE").exists()
    assert len(list(tmp_path.glob("runs/*/DONE"))) == 2
    assert (res.stdout + res.stderr).count("continued pre-training into") == 1
    info = json.loads((caches[0] / "pretrain.json").read_text())
    assert info["languages"] == ["qla", "qca", "qga"] and info["steps"] == 4
    before = load_file(caches[0] / "init_model" / "model.safetensors")
    after = load_file(caches[0] / "model" / "model.safetensors")
    key = next(k for k in after if k.endswith("word_embeddings.weight"))
    init_key = next(k for k in before if k.endswith("word_embeddings.weight"))
    assert not torch.equal(before[init_key], after[key])  # MLM changed the weights


def test_hub_text_source_on_a_fixture(tmp_path):
    (tmp_path / "qla.jsonl").write_text("\n".join(json.dumps({"text": f"wiki text {i}"}) for i in range(5)))
    cfg = compose("pretrain=mlm", "pretrain.text_source=hub", "pretrain.base_languages=[qla]",
                  f"+pretrain.hub.qla={{path: json, data_files: '{tmp_path / 'qla.jsonl'}', max_texts: 3}}")
    assert _texts(cfg, [], ["qla"]) == {"qla": ["wiki text 0", "wiki text 1", "wiki text 2"]}
