"""Continued masked-language-model pre-training (research question 4), a cached stage.

The recipe writes into the output folder it is given; the run store keys that folder by what the stage
depends on (``hybrid_sweep.runs.store.stage_cache_dir``) and computes it once for every fine-tuning run
that starts from it (other seeds, other samplers).

Languages: ``base_languages`` always, plus the first ``n_low_resource`` of ``low_resource`` (the axis).
Text (``text_source``): ``flores`` (real FLORES-200 sentences) or ``synthetic`` (a fresh synthetic sample),
both separate from the fine-tuning passages (``data.pretrain_text``); ``training_data`` (the training
corpus's passages, kept for comparison; not separate) or ``hub`` (a ``datasets`` source per language).

MLM head: where the encoder's checkpoint has one (a ``*ForMaskedLM`` save), it is loaded with its weights
and trained on; otherwise a fresh head is initialised and the log says so. ``pretrain.json`` records which.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np
import torch
from omegaconf import OmegaConf
from transformers import AutoModelForMaskedLM, DataCollatorForLanguageModeling

from hybrid_sweep.config.stages import PretrainConfig
from hybrid_sweep.config.load import typed_sections
from hybrid_sweep.data.corpus_loading import load_training_data, vocabulary_texts
from hybrid_sweep.data.hub_sources import load_hub_dataset
from hybrid_sweep.data.pretrain_text import flores_texts, synthetic_texts
from hybrid_sweep.encoders import build_encoder
from hybrid_sweep.errors import ConfigError, DataError
from hybrid_sweep.io import write_text
from hybrid_sweep.training.distributed import training_device

log = logging.getLogger(__name__)
TEXT_SOURCES = ("flores", "synthetic", "training_data", "hub")


def pretrain_languages(p) -> list[str]:
    """``base_languages`` plus the first ``n_low_resource`` of ``low_resource``."""
    return PretrainConfig.languages(p)


def _texts(cfg, corpora, langs: list[str]) -> dict[str, list[str]]:
    p = cfg.pretrain
    src = p.text_source  # the typed, validated value (default: config/stages.py)
    limit = p.max_texts_per_language
    if src == "flores":
        return flores_texts(langs, p.text_split, cfg.paths.data_root, limit)
    if src == "synthetic":
        out = synthetic_texts(OmegaConf.to_container(cfg.synthetic, resolve=True), langs,
                              int(p.text_articles), int(p.text_seed))
        return {lang: ts[:limit] if limit else ts for lang, ts in out.items()}
    if src == "training_data":
        out: dict[str, list[str]] = {}
        for c in corpora:
            for g in c.groups:
                for lang, ex in g.items.items():
                    if lang in langs:
                        out.setdefault(lang, []).extend(t for t in (ex.positive, *ex.negatives) if t)
        return {lang: sorted(set(v)) for lang, v in out.items()}
    if src == "hub":
        out = {}
        for lang in langs:
            if lang not in p.hub:
                raise ConfigError("pretrain.hub", f"no text source for language {lang!r}")
            spec = dict(p.hub[lang])
            field, n = spec.pop("text_field", "text"), spec.pop("max_texts", None)
            rows = load_hub_dataset(spec, lang)
            out[lang] = [r[field] for i, r in enumerate(rows) if n is None or i < n]
        return out
    raise ConfigError("pretrain.text_source", f"unknown source {src!r}; one of {', '.join(TEXT_SOURCES)}")


def masked_lm(base: torch.nn.Module) -> tuple[torch.nn.Module, str]:
    """``base`` (the encoder's transformer) with an MLM head: ``(model, "checkpoint")`` when the folder
    it was loaded from holds a head, else ``(model, "fresh")``. The body always carries ``base``'s weights."""
    source = str(getattr(base.config, "_name_or_path", "") or "")
    mlm, head = None, "fresh"
    if source:  # a local folder, or a hub id (the encoder was just loaded from it: in the hub cache)
        try:
            mlm, info = AutoModelForMaskedLM.from_pretrained(source, output_loading_info=True)
        except (OSError, ValueError, KeyError) as err:
            log.warning("no masked-LM model in %s (%s)", source, str(err).splitlines()[0])
        else:
            prefix = mlm.base_model_prefix + "."
            missing_head = [k for k in info["missing_keys"] if not k.startswith(prefix)]
            if missing_head:
                log.warning("checkpoint %s has no complete MLM head (missing %s)", source, missing_head[:3])
                mlm = None
            else:
                head = "checkpoint"
    if mlm is None:
        log.warning("continued pre-training with a freshly initialised MLM head (the encoder's checkpoint has none)")
        mlm = AutoModelForMaskedLM.from_config(base.config)
    else:
        log.info("continued pre-training keeps the MLM head of %s", source)
    body = {k: v for k, v in base.state_dict().items() if not k.startswith("pooler.")}
    result = mlm.base_model.load_state_dict(body, strict=False)
    if result.missing_keys:
        raise DataError(source or "encoder", f"the MLM model's body lacks {result.missing_keys[:3]}")
    return mlm, head


def _freeze(body: torch.nn.Module, frozen: bool) -> None:
    """Body parameters out of (or back in) the update. The input embeddings are tied to the head's decoder
    in BERT / XLM-R, so while frozen the decoder keeps the checkpoint's embeddings: only the head's
    transform and bias learn."""
    for param in body.parameters():
        param.requires_grad_(not frozen)


def masked_positions_loss(mlm: torch.nn.Module, ids, labels, attention_mask) -> torch.Tensor:
    """The MLM loss with the head applied at the labelled (masked) positions only.

    The head's vocabulary projection is the step's largest product (250k x 384 for mE5-small: 7x the
    4-layer body at 64 tokens) and only ~15 % of the positions carry a label, so projecting every position,
    as ``*ForMaskedLM.forward`` does, spends most of the step on logits nobody scores. Equal to the model's
    own loss (mean cross-entropy over labelled positions; tests/test_pretrain.py). A head that is not one
    module beside the body (no such model here yet) falls back to the model's forward."""
    heads = [m for name, m in mlm.named_children() if name != mlm.base_model_prefix]
    if len(heads) != 1:
        return mlm(input_ids=ids, labels=labels, attention_mask=attention_mask).loss
    hidden = mlm.base_model(input_ids=ids, attention_mask=attention_mask).last_hidden_state
    keep = labels != -100
    if not bool(keep.any()):  # nothing masked in this batch: no signal (the full forward would give NaN)
        return hidden.sum() * 0.0
    return torch.nn.functional.cross_entropy(heads[0](hidden[keep]).float(), labels[keep])


def continued_mlm(cfg, out: Path) -> None:
    """Pre-train the configured encoder into ``out`` (``model/``, ``init_model/``, logs)."""
    log.info("continued pre-training into %s", out)
    cfg = typed_sections(cfg)
    p = cfg.pretrain
    corpora, _, _ = load_training_data(cfg)
    langs = pretrain_languages(p)
    device = training_device(cfg.encoder.device)  # cuda that does not work: one ConfigError
    encoder = build_encoder(OmegaConf.merge(cfg.encoder, {"device": device}), vocabulary_texts(cfg, corpora),
                            out / "init_model")
    by_lang = _texts(cfg, corpora, langs)
    texts = [t for lang, ts in sorted(by_lang.items()) for t in ts]
    if not texts:
        raise DataError(str(out), f"no pre-training text in languages {langs}")
    base = encoder.model[0].auto_model
    tokenizer = encoder.model[0].tokenizer
    torch.manual_seed(p.seed)
    mlm, head = masked_lm(base)
    mlm.to(encoder.device).train()
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=encoder.device.type == "cuda")
    collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=p.mlm_probability)  # masks from torch.manual_seed
    optimizer = torch.optim.AdamW(mlm.parameters(), lr=p.lr, weight_decay=0.01)
    rng = np.random.default_rng(p.seed)
    start, records = time.perf_counter(), []
    warmup = int(p.head_warmup_steps) if head == "fresh" else 0  # a checkpoint's own head needs none
    for step in range(p.max_steps):
        if step in (0, warmup):  # frozen for the warm-up, trainable from its end: set at the two edges only
            _freeze(mlm.base_model, step < warmup)
        batch_texts = [texts[i] for i in rng.choice(len(texts), size=min(p.batch_size, len(texts)), replace=False)]
        enc = tokenizer(batch_texts, truncation=True, max_length=p.max_length)
        batch = collator([{"input_ids": ids} for ids in enc["input_ids"]])
        ids, labels = batch["input_ids"].to(encoder.device), batch["labels"].to(encoder.device)
        with autocast:
            loss = masked_positions_loss(mlm, ids, labels, (ids != tokenizer.pad_token_id).long())
        loss.backward()
        torch.nn.utils.clip_grad_norm_(mlm.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        records.append({"step": step, "loss": loss.item(), "elapsed_s": time.perf_counter() - start})
    base.load_state_dict(mlm.base_model.state_dict(), strict=False)
    encoder.save(out / "model")
    write_text(out / "pretrain_log.jsonl", "".join(json.dumps(r) + "\n" for r in records))
    write_text(out / "pretrain.json", json.dumps({
        "languages": langs, "texts": len(texts), "texts_per_language": {k: len(v) for k, v in sorted(by_lang.items())},
        "text_source": p.text_source, "steps": p.max_steps, "lr": p.lr, "lm_head": head, "head_warmup_steps": warmup,
        "seed": int(p.seed)}))  # RQ4 ties it to train.seed: one replicated MLM stage per fine-tuning seed
