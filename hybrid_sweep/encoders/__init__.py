"""Encoders: build one from its config (``conf/encoder/*.yaml``).

Kinds:
  pretrained    ``path`` is a hub id or a local folder. A sentence-transformers folder (modules.json) or a
                preset with ``format: sentence_transformers`` loads as shipped (LaBSE keeps its dense head);
                a plain transformers model gets ``pooling`` + L2 normalisation.
  tiny          a random-initialised small BERT with a vocabulary built from the given texts (tests, demo).
  me5_small_q4  multilingual-e5-small dequantised from the offline PyPI wheels, cached once.
"""

from __future__ import annotations

import os
import pickle
import tempfile
from pathlib import Path

import platformdirs
import torch
from omegaconf import DictConfig, OmegaConf
from sentence_transformers import SentenceTransformer
from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer

from hybrid_sweep.config.load import typed_section
from hybrid_sweep.config.stages import EncoderConfig
from hybrid_sweep.encoders.encoder import Encoder, native_max_length
from hybrid_sweep.errors import ConfigError

__all__ = ["Encoder", "build_encoder", "from_folder", "resolve_device", "model_cache_dir"]
KINDS = ("pretrained", "tiny", "me5_small_q4")


def resolve_device(device: str | None) -> str:
    if device in (None, "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def model_cache_dir(configured: str | None = None) -> Path:
    return Path(configured).expanduser() if configured else Path(platformdirs.user_cache_dir("hybrid_sweep")) / "models"


def _plain_transformer(name: str, pooling: str, max_length: int | None, device: str) -> SentenceTransformer:
    tr = Transformer(name, max_seq_length=max_length)
    return SentenceTransformer(modules=[tr, Pooling(tr.get_embedding_dimension(), pooling), Normalize()], device=device)


def load_pretrained(path: str, fmt: str, pooling: str, max_length: int | None, device: str) -> SentenceTransformer:
    local = Path(path).expanduser()
    try:
        if (local / "modules.json").exists():
            return SentenceTransformer(str(local), device=device)
        if (local / "config.json").exists():
            return _plain_transformer(str(local), pooling, max_length, device)
        if local.exists() or path.startswith((".", "/", "~")):
            raise ConfigError("encoder.path", f"no model at {local} (expected modules.json or config.json)")
        if fmt == "sentence_transformers":
            return SentenceTransformer(path, device=device)
        return _plain_transformer(path, pooling, max_length, device)
    except pickle.UnpicklingError:  # torch.load(weights_only=True) met a pickle that wants to run code
        raise ConfigError("encoder.path", f"{path}: refusing to unpickle a weight file that is not plain tensors; "
                                          "convert the model to safetensors") from None
    except ValueError as err:
        if "trust_remote_code" not in str(err):
            raise
        raise ConfigError("encoder.path", f"{path}: the model ships its own code, which hybrid_sweep never "
                                          "runs (trust_remote_code stays off)") from None
    except OSError as err:  # hub id not cached and no network, or HF_HUB_OFFLINE=1
        offline = " (HF_HUB_OFFLINE=1)" if os.environ.get("HF_HUB_OFFLINE") == "1" else ""
        raise ConfigError("encoder.path", f"cannot load {path!r}{offline}: not in the local cache and not "
                                          f"downloadable; pre-download it or pass a local folder ({type(err).__name__})") from None


def _model(cfg, texts, work_dir, device) -> SentenceTransformer:
    kind = cfg.kind  # a declared kind (config/stages.py EncoderConfig)
    if cfg.path:
        return load_pretrained(str(cfg.path), cfg.format, cfg.pooling, cfg.max_length, device)
    if kind == "tiny":
        from hybrid_sweep.encoders.tiny import build_tiny_model

        if not texts:
            raise ConfigError("encoder.kind", "the tiny encoder needs texts to build its vocabulary")
        folder = Path(work_dir) if work_dir else Path(tempfile.mkdtemp(prefix="hybrid_sweep_tiny_"))
        t = cfg.tiny
        prefixes = [cfg.query_prefix or "", cfg.passage_prefix or ""]
        return build_tiny_model(
            list(texts) + prefixes, folder, hidden=t.hidden, layers=t.layers, heads=t.heads,
            intermediate=t.intermediate, vocab_size=t.vocab_size, max_length=cfg.max_length, pooling=cfg.pooling,
            seed=t.seed,
        ).to(device)
    if kind == "me5_small_q4":
        from hybrid_sweep.encoders.e5_q4 import me5_small_q4_folder

        folder = me5_small_q4_folder(model_cache_dir(cfg.cache_dir), cfg.layers)
        return SentenceTransformer(str(folder), device=device)
    raise ConfigError("encoder.path", f"encoder {cfg.name!r} needs a path or hub id")


def from_folder(cfg, folder) -> DictConfig:
    """The encoder config for a model saved by us (checkpoint, trained or pre-trained model): its path,
    and the prefixes it recorded as prompts rather than the preset's."""
    return OmegaConf.merge(cfg, {"path": str(folder), "query_prefix": None, "passage_prefix": None})


def check_length(max_length: int | None, model) -> None:
    """A ``max_length`` above the model's own position table can only be a mistake (the positions past it
    do not exist): one line naming ``encoder.max_length`` and the model's limit."""
    limit = native_max_length(model)
    if max_length is not None and limit is not None and int(max_length) > limit:
        raise ConfigError("encoder.max_length", f"{max_length} is above the model's limit of {limit} tokens "
                                                f"(its position table); use at most {limit}")


def build_encoder(cfg, texts: list[str] | None = None, work_dir: Path | None = None) -> Encoder:
    """``cfg`` is the ``encoder`` config node; ``texts`` feed the tiny model's vocabulary.

    Prefixes: the config's ``query_prefix`` / ``passage_prefix``; where those are null, the model's own
    saved prompts (``query`` / ``document``), else none.
    """
    cfg = typed_section(cfg, EncoderConfig, "encoder")  # checked, with the declared defaults
    device = resolve_device(cfg.device)
    model = _model(cfg, texts, work_dir, device)
    check_length(cfg.max_length, model)
    prompts = model.prompts or {}
    qp, pp = cfg.query_prefix, cfg.passage_prefix
    return Encoder(
        model, name=cfg.name,
        query_prefix=prompts.get("query", "") if qp is None else qp,
        passage_prefix=prompts.get("document", prompts.get("passage", "")) if pp is None else pp,
        max_length=cfg.max_length, batch_size=cfg.batch_size, normalize=cfg.normalize, show_progress=cfg.progress,
    )
