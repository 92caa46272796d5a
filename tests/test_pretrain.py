"""Continued MLM pre-training: a cached stage shared across fine-tuning runs, with its language axis."""

import json
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from omegaconf import OmegaConf
from transformers import BertConfig, BertForMaskedLM, BertModel

from hybrid_sweep.data.synthetic import synthetic_benchmark
from hybrid_sweep.encoders import build_encoder
from hybrid_sweep.encoders.tiny import build_tokenizer
from hybrid_sweep.errors import ConfigError, DataError
from hybrid_sweep.runs.store import stage_cache_dir
from hybrid_sweep.training.pretrain import _texts, continued_mlm, masked_lm, pretrain_languages
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
    assert pretrain_languages(base.pretrain) == ["qla", "qlb", "qca", "qga"]
    two = compose("pretrain=mlm", "pretrain.n_low_resource=2")
    assert pretrain_languages(two.pretrain) == ["qla", "qlb", "qca", "qga", "qcb", "qka"]
    assert pretrain_key(base) != pretrain_key(two)
    assert pretrain_key(base) == pretrain_key(compose("pretrain=mlm", "train.seed=7", "sampler=cross"))
    assert stage_cache_dir("root", "pretrain", base).parent.as_posix() == "root/cache/pretrain"  # owned by the run store
    # the key holds the resolved language list, not how it was spelled
    same = compose("pretrain=mlm", "pretrain.base_languages=[qla,qlb]", "pretrain.low_resource=[qca,qga]",
                   "pretrain.n_low_resource=2")
    assert pretrain_key(same) == pretrain_key(base)
    assert pretrain_key(base) != pretrain_key(compose("pretrain=mlm", "encoder.tiny.hidden=32"))
    assert pretrain_key(base) == pretrain_key(compose("pretrain=mlm", "encoder.progress=false", "encoder.batch_size=8"))
    with pytest.raises(ConfigError, match="pretrain.n_low_resource: must be in 0..2"):
        pretrain_languages(compose("pretrain=mlm", "pretrain.n_low_resource=3").pretrain)


def test_checkpoint_is_computed_once_and_shared(tmp_path):
    cmd = [sys.executable, "-m", "hybrid_sweep", "-m", "train.seed=0,1", *QUICK, f"results_root={tmp_path}"]
    res = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, (res.stdout + res.stderr)[-3000:]
    caches = list((tmp_path / "cache" / "pretrain").iterdir())
    assert len(caches) == 1 and (caches[0] / "DONE").exists()
    assert len(list(tmp_path.glob("runs/*/DONE"))) == 2
    assert (res.stdout + res.stderr).count("continued pre-training into") == 1
    info = json.loads((caches[0] / "pretrain.json").read_text())
    assert info["languages"] == ["qla", "qlb", "qca", "qga"] and info["steps"] == 4
    assert info["text_source"] == "synthetic" and info["lm_head"] == "fresh"  # the tiny model has no MLM head
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


def test_synthetic_pretraining_text_is_apart_from_fine_tuning_passages():
    cfg = compose("pretrain=mlm", "pretrain.n_low_resource=2", "pretrain.text_articles=5")
    langs = pretrain_languages(cfg.pretrain)
    texts = _texts(cfg, [], langs)
    assert set(texts) == set(langs) and len({len(v) for v in texts.values()}) == 1  # same amount per language
    splits = [synthetic_benchmark(OmegaConf.to_container(cfg.synthetic), s) for s in ("train", "dev", "test")]
    for lang in langs:
        paragraphs = {c.context for b in splits for c in b.languages[lang].candidates}
        vocab = {w.strip(".?").lower() for t in paragraphs for w in t.split()}
        words = {w.strip(".").lower() for t in texts[lang] for w in t.split()}
        assert not set(texts[lang]) & paragraphs  # no fine-tuning (or evaluation) paragraph
        assert len(words & vocab) / len(words) > 0.95  # but the same language (lexicon, word order)
    other = _texts(compose("pretrain=mlm", "pretrain.text_articles=5", "pretrain.text_seed=2"), [], ["qla"])
    assert other["qla"] != texts["qla"]


def test_flores_pretraining_text_on_a_fixture(tmp_path):
    folder = tmp_path / "sib200" / "yor_Latn"
    folder.mkdir(parents=True)
    (folder / "train.tsv").write_text("index_id\tcategory\ttext\n1\tscience\tOoru mu.\n2\thealth\tOmi tutu.\n")
    cfg = compose("pretrain=mlm_flores", f"paths.data_root={tmp_path}")
    assert _texts(cfg, [], ["yo"]) == {"yo": ["Ooru mu.", "Omi tutu."]}  # ISO code -> FLORES folder
    with pytest.raises(ConfigError, match="pretrain.text_source: language 'qla' has no FLORES-200 code"):
        _texts(cfg, [], ["qla"])
    with pytest.raises(DataError, match="file not found"):
        _texts(cfg, [], ["ig"])


def _tiny_mlm_checkpoint(folder, with_head: bool):
    texts = [t for v in _texts(compose("pretrain=mlm", "pretrain.text_articles=3"), [], ["qla", "qca"]).values() for t in v]
    tokenizer = build_tokenizer(texts, 2000, 64)
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=66, pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(3)
    model = BertForMaskedLM(config) if with_head else BertModel(config)
    if with_head:
        with torch.no_grad():  # a head unlike any fresh initialisation
            model.cls.predictions.transform.dense.weight.normal_(0, 1.0)
            model.cls.predictions.bias.uniform_(-1, 1)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return load_file(folder / "model.safetensors")


def _pretrained(folder):
    return compose("pretrain=mlm", "pretrain.max_steps=2", "pretrain.batch_size=4", "pretrain.text_articles=3",
                   "encoder.kind=pretrained", f"encoder.path={folder}", "encoder.format=transformers",
                   "encoder.name=tiny_mlm", "encoder.progress=false")


def test_checkpoint_mlm_head_is_kept(tmp_path):
    saved = _tiny_mlm_checkpoint(tmp_path / "ckpt", with_head=True)
    cfg = _pretrained(tmp_path / "ckpt")
    encoder = build_encoder(cfg.encoder)
    mlm, head = masked_lm(encoder.model[0].auto_model)
    assert head == "checkpoint"
    state = mlm.state_dict()
    head_keys = [k for k in saved if k.startswith("cls.")]
    assert head_keys and all(torch.equal(state[k], saved[k]) for k in head_keys)  # step 0 = the checkpoint's head
    continued_mlm(cfg, tmp_path / "out")  # a tiny run keeps it and says so
    info = json.loads((tmp_path / "out" / "pretrain.json").read_text())
    assert info["lm_head"] == "checkpoint" and info["steps"] == 2 and info["lr"] == cfg.pretrain.lr
    assert info["seed"] == cfg.pretrain.seed  # recorded: RQ4 replicates the stage per fine-tuning seed


def test_checkpoint_without_head_gets_a_fresh_one(tmp_path, caplog):
    _tiny_mlm_checkpoint(tmp_path / "ckpt", with_head=False)
    encoder = build_encoder(_pretrained(tmp_path / "ckpt").encoder)
    with caplog.at_level("WARNING"):
        _, head = masked_lm(encoder.model[0].auto_model)
    assert head == "fresh" and "freshly initialised MLM head" in caplog.text


@pytest.mark.parametrize("arch", ["bert", "xlm-roberta"])
def test_masked_positions_loss_equals_the_full_forward(arch):
    """The fast path (head on the masked positions only) gives the model's own loss and gradients (fp32 CPU,
    rtol 1e-5), for both head layouts the encoders here use (BERT ``cls``, XLM-R ``lm_head``)."""
    from transformers import XLMRobertaConfig, XLMRobertaForMaskedLM

    from hybrid_sweep.training.pretrain import masked_positions_loss

    torch.manual_seed(0)
    kw = dict(vocab_size=97, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)
    mlm = BertForMaskedLM(BertConfig(**kw)) if arch == "bert" else \
        XLMRobertaForMaskedLM(XLMRobertaConfig(**kw, pad_token_id=1, max_position_embeddings=40))
    ids = torch.randint(5, 97, (4, 12))
    mask = torch.ones_like(ids)
    mask[1, 8:] = 0
    labels = torch.full_like(ids, -100)
    picked = torch.rand(ids.shape) < 0.2
    picked[0, 3] = True
    labels[picked & (mask == 1)] = ids[picked & (mask == 1)]

    def loss_and_grads(fn):
        mlm.zero_grad()
        torch.manual_seed(1)  # training mode: the same dropout masks on both paths (the body runs the same ops)
        loss = fn()
        loss.backward()
        return loss.detach(), {n: p.grad.clone() for n, p in mlm.named_parameters() if p.grad is not None}

    full, g_full = loss_and_grads(lambda: mlm(input_ids=ids, labels=labels, attention_mask=mask).loss)
    fast, g_fast = loss_and_grads(lambda: masked_positions_loss(mlm, ids, labels, mask))
    torch.testing.assert_close(fast, full, rtol=1e-5, atol=1e-6)
    assert g_full.keys() == g_fast.keys() and len(g_fast) > 10
    for name in g_full:
        torch.testing.assert_close(g_fast[name], g_full[name], rtol=1e-4, atol=1e-6, msg=name)
    none = torch.full_like(ids, -100)
    assert masked_positions_loss(mlm, ids, none, mask).item() == 0.0  # no masked token: no signal, not NaN


def test_a_fresh_head_can_warm_up_with_the_body_frozen(tmp_path):
    """pretrain.head_warmup_steps: a fresh head trains alone first (the body's weights stay the checkpoint's
    for exactly those steps, then train); a checkpoint's own head gets no warm-up; the run id of configs
    without the key is unchanged (absent=0)."""
    from hybrid_sweep.encoders import from_folder
    from hybrid_sweep.runs.store import run_id

    saved = _tiny_mlm_checkpoint(tmp_path / "ckpt", with_head=False)
    body = {k: v for k, v in saved.items() if "pooler" not in k}

    def body_after(steps, warmup, out):
        cfg = OmegaConf.merge(_pretrained(tmp_path / "ckpt"), {"pretrain": {"max_steps": steps, "head_warmup_steps": warmup}})
        continued_mlm(cfg, tmp_path / out)
        model = build_encoder(from_folder(cfg.encoder, tmp_path / out / "model")).model[0].auto_model.state_dict()
        return json.loads((tmp_path / out / "pretrain.json").read_text()), model

    info, frozen = body_after(2, 2, "all_warmup")
    assert info["lm_head"] == "fresh" and info["head_warmup_steps"] == 2
    assert all(torch.equal(frozen[k], v) for k, v in body.items() if k in frozen)  # two head-only steps
    _, trained = body_after(3, 2, "then_body")
    assert any(not torch.equal(trained[k], v) for k, v in body.items() if k in trained)  # the third step moves it
    _tiny_mlm_checkpoint(tmp_path / "headed", with_head=True)
    cfg = OmegaConf.merge(_pretrained(tmp_path / "headed"), {"pretrain": {"head_warmup_steps": 5}})
    continued_mlm(cfg, tmp_path / "headed_out")
    assert json.loads((tmp_path / "headed_out" / "pretrain.json").read_text())["head_warmup_steps"] == 0
    assert run_id(compose("pretrain=mlm")) == run_id(compose("pretrain=mlm", "pretrain.head_warmup_steps=0"))
    assert run_id(compose("pretrain=mlm")) != run_id(compose("pretrain=mlm", "pretrain.head_warmup_steps=3"))
