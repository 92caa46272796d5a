"""Encoders: build one from its config (``conf/encoder/*.yaml``)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch
from sentence_transformers import SentenceTransformer
from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer

from hybrid_sweep.encoders.encoder import Encoder
from hybrid_sweep.encoders.tiny import build_tiny_model
from hybrid_sweep.errors import ConfigError

__all__ = ["Encoder", "build_encoder", "resolve_device"]


def resolve_device(device: str | None) -> str:
    if device in (None, "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def _load_path(path: str, pooling: str, max_length: int | None, device: str) -> SentenceTransformer:
    local = Path(path).expanduser()
    if (local / "modules.json").exists():
        return SentenceTransformer(str(local), device=device)
    if (local / "config.json").exists():
        tr = Transformer(str(local), max_seq_length=max_length)
        return SentenceTransformer(modules=[tr, Pooling(tr.get_embedding_dimension(), pooling), Normalize()], device=device)
    if local.exists() or path.startswith((".", "/", "~")):
        raise ConfigError("encoder.path", f"no model at {local} (expected modules.json or config.json)")
    return SentenceTransformer(path, device=device)  # a hub id; honours HF_HUB_OFFLINE and local caches


def build_encoder(cfg, texts: list[str] | None = None, work_dir: Path | None = None) -> Encoder:
    """``cfg`` is the ``encoder`` config node. ``texts`` feed the tiny model's tokenizer."""
    device = resolve_device(cfg.get("device"))
    kind = cfg.get("kind", "pretrained")
    if cfg.get("path"):
        model = _load_path(str(cfg.path), cfg.get("pooling", "mean"), cfg.get("max_length"), device)
    elif kind == "tiny":
        if not texts:
            raise ConfigError("encoder.kind", "the tiny encoder needs texts to build its vocabulary")
        folder = Path(work_dir) if work_dir else Path(tempfile.mkdtemp(prefix="hybrid_sweep_tiny_"))
        t = cfg.tiny
        prefixes = [cfg.get("query_prefix") or "", cfg.get("passage_prefix") or ""]
        model = build_tiny_model(
            list(texts) + prefixes, folder, hidden=t.hidden, layers=t.layers, heads=t.heads, intermediate=t.intermediate,
            vocab_size=t.vocab_size, max_length=cfg.max_length, pooling=cfg.pooling, seed=t.seed,
        ).to(device)
    else:
        raise ConfigError("encoder.path", f"encoder {cfg.get('name')!r} (kind {kind!r}) needs a path or hub id")
    return Encoder(
        model, name=cfg.get("name", "encoder"), query_prefix=cfg.get("query_prefix", ""),
        passage_prefix=cfg.get("passage_prefix", ""), max_length=cfg.get("max_length"),
        batch_size=cfg.get("batch_size", 64), normalize=cfg.get("normalize", True),
        show_progress=cfg.get("progress", True),
    )
