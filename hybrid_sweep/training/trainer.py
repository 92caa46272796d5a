"""The hybrid-batch training recipe, one readable loop.

corpora -> HybridBatchSampler -> (shard per rank) -> encoder forward (plain or GradCache) -> InfoNCE
-> clip, average gradients across ranks, AdamW, warm-up + linear decay -> log, validate, checkpoint.
The best model by validation loss (else the last) is saved to ``<output_dir>/model``.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import time
from pathlib import Path

import torch
from omegaconf import OmegaConf
from tqdm.auto import tqdm
from transformers import get_linear_schedule_with_warmup

from hybrid_sweep.data.train_loading import load_training_data, vocabulary_texts
from hybrid_sweep.encoders import build_encoder, from_folder
from hybrid_sweep.errors import ConfigError, HybridSweepError
from hybrid_sweep.faults import fault_point
from hybrid_sweep.io import write_text
from hybrid_sweep.sampling import HybridBatchSampler
from hybrid_sweep.training import distributed as dist
from hybrid_sweep.training.checkpoint import latest_checkpoint, load_state, save_checkpoint
from hybrid_sweep.training.grad_cache import batch_loss, grad_cache_step, plain_step
from hybrid_sweep.training.loss import info_nce

log = logging.getLogger(__name__)
VAL_SEED_OFFSET = 1_000_003


class TrainingError(HybridSweepError):
    pass


def make_sampler(cfg, corpora, languages, seed, validation: bool = False) -> HybridBatchSampler:
    """The training sampler; with ``validation``: every language pair of the held-out set (so validation
    loss is comparable across ``n_pairs``), and monolingual batches only for a one-language set."""
    s = cfg.sampler
    ratio, n_pairs = dict(s.ratio), s.get("n_pairs")
    if validation:
        n_pairs = None
        ratio = {"mono": 1.0} if len(languages) < 2 else ratio
    return HybridBatchSampler(corpora, languages, cfg.train.batch_size, ratio, n_pairs,
                              s.get("pair_seed", 0), seed, s.get("weights"), s.get("n_negatives", 1))


def make_loss(t):
    def loss_fn(q, p, n):
        return info_nce(q, p, n, t.temperature, t.in_batch_positives, t.symmetric, offset=dist.rank() * q.shape[0],
                        p_all=dist.gather_with_grad(p), q_all=dist.gather_with_grad(q),
                        n_all=None if n is None else dist.gather_with_grad(n))
    return loss_fn


def _texts(batch):
    return ([it.query for it in batch.items], [it.positive for it in batch.items],
            [neg for it in batch.items for neg in it.negatives])


def validation_loss(encoder, batches, loss_fn) -> float:
    was = encoder.model.training
    encoder.model.eval()
    total = 0.0
    with torch.no_grad():
        for b in batches:
            total += batch_loss(encoder.forward, *_texts(b), loss_fn).item()
    encoder.model.train(was)
    return dist.mean_scalar(total / max(1, len(batches)))


def _rng_state() -> dict:
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _trim_log(path: Path, below_step: int) -> None:
    """Keep the records of the steps a resumed run will not redo (and drop a line torn by a kill)."""
    if not path.exists():
        return
    kept = []
    for line in path.read_text().splitlines():
        try:
            if json.loads(line)["step"] < below_step:
                kept.append(line)
        except (json.JSONDecodeError, KeyError, TypeError):
            continue
    write_text(path, "".join(ln + "\n" for ln in kept))


def train(cfg, output_dir: Path, tracker=None) -> dict:
    """Train per ``cfg`` into ``output_dir``; returns a summary dict. Resumes from its checkpoints."""
    t, output_dir = cfg.train, Path(output_dir)
    rank, world = dist.init_from_env()
    if t.batch_size % world:
        raise ConfigError("train.batch_size", f"{t.batch_size} is not divisible by the {world} processes")
    corpora, dev, languages = load_training_data(cfg)
    sampler = make_sampler(cfg, corpora, languages, t.seed)
    val_batches = []
    if dev is not None and t.eval_every:
        dev_langs = [lang for lang in languages if lang in dev.languages] or dev.languages
        vs = make_sampler(cfg, [dev], dev_langs, t.seed + VAL_SEED_OFFSET, validation=True)
        val_batches = [vs.batch_at(i).shard(rank, world) for i in range(t.val_batches)]
    ckpt_root = output_dir / "checkpoints"
    resume_from = latest_checkpoint(ckpt_root) if t.resume else None
    torch.manual_seed(t.seed)
    if resume_from is not None:
        encoder = build_encoder(from_folder(cfg.encoder, resume_from / "model"))
    else:
        if cfg.encoder.get("path") or cfg.encoder.get("kind") != "tiny":
            encoder = build_encoder(cfg.encoder)
        else:  # a new tiny model: built once (transformers saves on the main process only), loaded by the rest
            if rank == 0:
                encoder = build_encoder(cfg.encoder, vocabulary_texts(cfg, corpora), output_dir / "init_model")
            dist.barrier()
            if rank != 0:
                encoder = build_encoder(OmegaConf.merge(cfg.encoder, {"path": str(output_dir / "init_model")}))
    model = encoder.model
    dist.broadcast_parameters(model.parameters())  # every rank starts from rank 0's weights
    model.train()
    if t.gradient_checkpointing:
        model[0].auto_model.gradient_checkpointing_enable()
    optimizer = torch.optim.AdamW(model.parameters(), lr=t.lr, weight_decay=t.weight_decay, fused=True)
    horizon = t.get("schedule_steps") or t.max_steps  # the LR schedule's length; max_steps may stop earlier
    warmup = int(t.warmup * horizon) if t.warmup < 1 else int(t.warmup)
    scheduler = get_linear_schedule_with_warmup(optimizer, warmup, horizon)
    state = {"step": 0, "best_val": math.inf, "bad_evals": 0, "best_step": None}
    if resume_from is not None:
        saved = load_state(resume_from)
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        sampler.load_state_dict(saved["sampler"])
        _set_rng_state(saved["rng"])
        state = saved["trainer"]
        log.info("resumed from %s at step %d", resume_from.name, state["step"])
    loss_fn = make_loss(t)
    log_path, batch_log = output_dir / "train_log.jsonl", output_dir / "batches.jsonl"
    if rank == 0:
        output_dir.mkdir(parents=True, exist_ok=True)
        _trim_log(log_path, state["step"])
        _trim_log(batch_log, state["step"])
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=encoder.device.type == "cuda" and t.bf16)
    start, stopped_early = time.perf_counter(), False

    def checkpoint():
        payload = {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                   "sampler": sampler.state_dict(), "rng": _rng_state(), "trainer": dict(state)}
        if rank == 0:
            save_checkpoint(ckpt_root, state["step"], encoder, payload)

    bar = tqdm(total=t.max_steps, initial=state["step"], desc="train", disable=rank != 0 or not cfg.encoder.get("progress", True))
    while state["step"] < t.max_steps and not stopped_early:
        step_start = time.perf_counter()
        batch = next(sampler)
        queries, positives, negatives = _texts(batch.shard(rank, world))
        with autocast:
            if t.grad_cache.enabled:
                loss = grad_cache_step(encoder.forward, queries, positives, negatives, loss_fn,
                                       t.grad_cache.chunk_size, encoder.device)
            else:
                loss = plain_step(encoder.forward, queries, positives, negatives, loss_fn)
        loss_value = dist.mean_scalar(loss.item())
        if not math.isfinite(loss_value):
            raise TrainingError(f"train: loss is {loss_value} at step {state['step']} (lr {scheduler.get_last_lr()[0]:.2e}); "
                                "lower train.lr or check the data")
        dist.average_gradients(model.parameters())
        if t.grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), t.grad_clip)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        state["step"] += 1
        record = {"step": state["step"] - 1, "loss": loss_value, "lr": scheduler.get_last_lr()[0], "mode": batch.mode,
                  "requested": batch.requested, "examples_per_s": t.batch_size / (time.perf_counter() - step_start),
                  "elapsed_s": time.perf_counter() - start}
        if t.eval_every and val_batches and state["step"] % t.eval_every == 0:
            record["val_loss"] = validation_loss(encoder, val_batches, loss_fn)
            if record["val_loss"] < state["best_val"]:
                state.update(best_val=record["val_loss"], bad_evals=0, best_step=state["step"])
                if rank == 0:
                    _save_model(encoder, output_dir / "model")
            else:
                state["bad_evals"] += 1
                stopped_early = t.patience is not None and state["bad_evals"] >= t.patience
        if rank == 0:
            with open(log_path, "a") as f:
                f.write(json.dumps(record) + "\n")
            if tracker is not None:
                tracker.log({f"train/{k}": v for k, v in record.items()}, step=record["step"])
            if t.log_batches:
                with open(batch_log, "a") as f:
                    f.write(json.dumps(batch.log_record()) + "\n")
        bar.update(1)
        bar.set_postfix(loss=f"{loss_value:.3f}", mode=batch.mode)
        if state["step"] % t.save_every == 0 or state["step"] == t.max_steps or stopped_early:
            checkpoint()
            fault_point("after_checkpoint")
    bar.close()
    if rank == 0 and state["best_step"] is None:
        _save_model(encoder, output_dir / "model")
    return {"steps": state["step"], "best_step": state["best_step"], "best_val_loss": state["best_val"],
            "stopped_early": stopped_early, "wall_s": time.perf_counter() - start, "languages": languages,
            "pairs": [list(p) for p in sampler.pairs]}


def _save_model(encoder, folder: Path) -> None:
    tmp = folder.with_name(folder.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    encoder.save(tmp)
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)
