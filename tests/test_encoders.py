"""The tiny encoder behind the common Encoder interface."""

import torch
from sentence_transformers import SentenceTransformer

from hybrid_sweep.encoders import build_encoder
from hybrid_sweep.encoders.tiny import build_tokenizer
from tests.conftest import compose

TEXTS = ["der Hund bellt laut", "the dog barks loudly", "собака лает", "the cat sleeps", "a dog and a cat"]


def _tiny(tmp_path, *overrides):
    cfg = compose("encoder=tiny", "encoder.device=cpu", "encoder.progress=false", *overrides).encoder
    return build_encoder(cfg, TEXTS * 3, tmp_path / "tiny")


def test_tokenizer_is_deterministic_and_frequency_ordered():
    a, b = build_tokenizer(TEXTS, 100, 32), build_tokenizer(list(TEXTS), 100, 32)
    assert a.get_vocab() == b.get_vocab()
    vocab = a.get_vocab()
    assert vocab["dog"] < vocab["bellt"]  # "dog" occurs twice, "bellt" once
    ids = a("the dog")["input_ids"]
    assert ids[0] == a.cls_token_id and ids[-1] == a.sep_token_id


def test_embeddings_normalised_in_input_order_and_deduplicated(tmp_path):
    enc = _tiny(tmp_path, "encoder.batch_size=2")
    texts = TEXTS + [TEXTS[0]]
    emb = enc.encode(texts, "query")
    assert emb.shape == (len(texts), 64)
    torch.testing.assert_close(emb.norm(dim=1), torch.ones(len(texts)))
    assert torch.equal(emb[0], emb[-1])
    single = enc.encode([TEXTS[2]], "query")
    torch.testing.assert_close(single[0], emb[2], atol=1e-5, rtol=0)  # batching and padding do not matter
    assert not torch.allclose(enc.encode([TEXTS[0]], "passage")[0], emb[0])  # prefixes differ


def test_same_seed_same_weights_and_saved_folder_reloads(tmp_path):
    a, b = _tiny(tmp_path / "a"), _tiny(tmp_path / "b")
    torch.testing.assert_close(a.encode(TEXTS, "query"), b.encode(TEXTS, "query"))
    a.save(tmp_path / "st")
    assert SentenceTransformer(str(tmp_path / "st")).prompts["query"] == "query: "
    cfg = compose(f"encoder.path={tmp_path / 'st'}", "encoder.device=cpu", "encoder.progress=false",
                  "encoder.query_prefix=null", "encoder.passage_prefix=null").encoder
    reloaded = build_encoder(cfg)
    assert reloaded.prefixes == {"query": "query: ", "passage": "passage: "}  # from the saved prompts
    torch.testing.assert_close(reloaded.encode(TEXTS, "query"), a.encode(TEXTS, "query"))
