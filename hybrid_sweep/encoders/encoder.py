"""The encoder interface every model goes through: a sentence-transformers model plus our encode loop.

sentence-transformers owns the model structure (transformer, pooling, normalisation) and the folder
format. The loop here adds what evaluation needs: each unique text encoded once, length-sorted batches,
``inference_mode``, bf16 autocast on CUDA, and embeddings returned in input order.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from sentence_transformers import SentenceTransformer

from hybrid_sweep.errors import HybridSweepError
from hybrid_sweep.progress import progress

Kind = Literal["query", "passage"]


def native_max_length(model) -> int | None:
    """The model's own input limit: the positions its architecture has (RoBERTa / XLM-R count from
    ``padding_idx + 1``, so 514 positions read 512 tokens); 512 for the E5 / XLM-R / BERT families, the
    length MTEB encodes them at. The tokenizer's ``model_max_length`` is not used: sentence-transformers
    overwrites it with the encoder preset's length. None where the model has no position table."""
    for module in model.modules() if hasattr(model, "modules") else ():
        table = getattr(getattr(module, "embeddings", None), "position_embeddings", None)
        if isinstance(table, torch.nn.Embedding):
            offset = table.padding_idx + 1 if table.padding_idx is not None else 0
            return int(table.num_embeddings - offset)
    return None



class Encoder:
    def __init__(
        self,
        model: SentenceTransformer,
        name: str,
        query_prefix: str = "query: ",
        passage_prefix: str = "passage: ",
        max_length: int | None = None,
        batch_size: int = 64,
        normalize: bool = True,
        show_progress: bool = True,
    ):
        self.model = model
        self.name = name
        self.prefixes = {"query": query_prefix or "", "passage": passage_prefix or ""}
        if max_length is not None:
            model.max_seq_length = int(max_length)
        self.batch_size = int(batch_size)
        self.normalize = normalize
        self.show_progress = show_progress

    @property
    def device(self) -> torch.device:
        return self.model.device

    def save(self, folder) -> None:
        """Save as a sentence-transformers folder (safetensors) with the prefixes recorded as prompts."""
        self.model.prompts = {"query": self.prefixes["query"], "document": self.prefixes["passage"]}
        was_training = self.model.training
        with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
            self.model.save(str(folder), safe_serialization=True)  # its model card may switch to eval mode
        self.model.train(was_training)

    def features(self, texts: list[str], kind: Kind) -> dict:
        """Tokenised, prefixed inputs on the model's device (also used by the trainer)."""
        feats = self.model.preprocess([self.prefixes[kind] + t for t in texts])
        return {k: (v.to(self.device) if torch.is_tensor(v) else v) for k, v in feats.items()}

    def forward(self, texts: list[str], kind: Kind) -> torch.Tensor:
        """Embeddings with gradients (training path)."""
        emb = self.model(self.features(texts, kind))["sentence_embedding"]
        return F.normalize(emb, dim=-1) if self.normalize else emb

    def encode(self, texts: list[str], kind: Kind, desc: str | None = None) -> torch.Tensor:
        """(len(texts), dim) float32 CPU embeddings; duplicate texts are encoded once."""
        unique = list(dict.fromkeys(texts))
        order = sorted(range(len(unique)), key=lambda i: -len(unique[i]))
        out = None
        was_training = self.model.training
        self.model.eval()
        autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.device.type == "cuda")
        bar = progress(len(unique), desc or f"encode {kind}s", disable=not self.show_progress, unit="text")
        try:
            with torch.inference_mode(), autocast:
                for start in range(0, len(order), self.batch_size):
                    idx = order[start : start + self.batch_size]
                    emb = self.forward([unique[i] for i in idx], kind).float()
                    if out is None:
                        out = torch.empty((len(unique), emb.shape[1]), dtype=torch.float32)
                    out[idx] = emb.cpu()
                    bar.update(len(idx))
        finally:
            bar.close()
            self.model.train(was_training)
        if out is None:
            return torch.empty((0, 0))
        if not torch.isfinite(out).all():
            raise HybridSweepError(f"encoder {self.name}: produced non-finite embeddings (NaN/inf weights?)")
        position = {t: i for i, t in enumerate(unique)}
        return out[torch.tensor([position[t] for t in texts], dtype=torch.long)]

