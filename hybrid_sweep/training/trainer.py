"""The hybrid-batch training recipe: named setup steps, then a short loop (the way torchtune recipes read).

Setup: data (corpora, validation batches) -> samplers -> model (seed, build or restore, DDP, gradient
checkpointing) -> optimizer and schedule -> resume (optimizer, schedule, sampler and RNG state).
Loop, per step: the global batch from the HybridBatchSampler, this rank's slice, one ``contrastive_step``
(plain or GradCache: the same call) under bf16 autocast on CUDA, clip, AdamW, warm-up + linear decay;
then log, validate, checkpoint. Gradients are averaged across ranks by DDP's reducer during the backward.
The loss stays on the device; it is copied to the host only when a log line is written
(``train.log_every`` steps; 1 = every step). The best model by validation loss (else the last) is
saved to ``<output_dir>/model``.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import os
import shutil
import time
from contextlib import contextmanager
from pathlib import Path

import torch
import torch.nn.functional as F
from omegaconf import OmegaConf
from transformers import get_linear_schedule_with_warmup

from hybrid_sweep.config.load import typed_sections
from hybrid_sweep.data.corpus_loading import load_training_data, vocabulary_texts
from hybrid_sweep.encoders import build_encoder, from_folder
from hybrid_sweep.errors import ConfigError, HybridSweepError
from hybrid_sweep.faults import fault_point
from hybrid_sweep.io import write_text
from hybrid_sweep.progress import progress
from hybrid_sweep.sampling.configured import sampler_from_config
from hybrid_sweep.sampling.prefetch import Prefetcher
from hybrid_sweep.training import distributed as dist
from hybrid_sweep.training.checkpoint import latest_checkpoint, load_state, save_checkpoint
from hybrid_sweep.training.grad_cache import batch_loss, contrastive_step
from hybrid_sweep.training.loss import false_negative_mask, loss_from_config
from hybrid_sweep.training.microbatch import Prepared, TokenBatch, one_embedding_lookup, tokenize

log = logging.getLogger(__name__)
VAL_SEED_OFFSET = 1_000_003


class TrainingError(HybridSweepError):
    pass


def make_loss(t):
    """``train.loss`` (``loss.LOSSES``) over the global batch: this rank's rows against gathered candidates."""
    loss = loss_from_config(t)

    def loss_fn(q, p, n, exclude=None):
        return loss(q, p, n, offset=dist.rank() * q.shape[0], p_all=dist.gather_with_grad(p),
                    q_all=dist.gather_with_grad(q), n_all=None if n is None else dist.gather_with_grad(n),
                    exclude=exclude)
    return loss_fn


def batch_loss_fn(loss_fn, t, batch, rank: int, world: int):
    """``loss_fn`` with this batch's known false negatives masked (``train.mask_false_negatives``)."""
    if not t.mask_false_negatives:
        return loss_fn
    items, per = batch.items, len(batch.items) // world
    candidates = [it.positive for it in items] + [neg for it in items for neg in it.negatives]
    mine = [it.positive for it in items[rank * per : (rank + 1) * per]]
    mask = false_negative_mask(mine, candidates, offset=rank * per)
    return loss_fn if mask is None else functools.partial(loss_fn, exclude=mask)


def _texts(batch):
    return ([it.query for it in batch.items], [it.positive for it in batch.items],
            [neg for it in batch.items for neg in it.negatives])


def validation_loss(embed, model, batches, device, max_tokens: int | None = None) -> float:
    """Mean loss over this rank's ``(inputs, loss_fn)`` pairs, averaged over ranks (one host copy)."""
    was = model.training
    model.eval()
    with torch.no_grad():
        losses = [batch_loss(embed, *inputs, fn, max_tokens) for inputs, fn in batches] if batches else []
    model.train(was)
    local = sum(torch.stack(losses).tolist()) / max(1, len(losses)) if losses else 0.0
    return dist.mean(torch.tensor([local], dtype=torch.float64, device=device)).item()


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


def check_train_config(cfg) -> None:
    """What spans sections (the value of each field is checked where it is declared, config/stages.py)."""
    t = cfg.train
    if not t.in_batch_positives and int(cfg.sampler.n_negatives) == 0:
        raise ConfigError("train.in_batch_positives", "false needs hard negatives (sampler.n_negatives is 0): "
                          "every query would see only its own positive and the loss would be exactly 0")
    loss_from_config(t)  # an unknown train.loss is one ConfigError here


class Recipe:
    """``Recipe(cfg, output_dir).setup()`` runs the named setup steps; ``.train()`` the loop."""

    def __init__(self, cfg, output_dir: Path, tracker=None):
        cfg = typed_sections(cfg)  # typed and checked: every default is the declared one
        self.cfg, self.t, self.output_dir, self.tracker = cfg, cfg.train, Path(output_dir), tracker
        self.ckpt_root = self.output_dir / "checkpoints"
        self.log_path, self.batch_log = self.output_dir / "train_log.jsonl", self.output_dir / "batches.jsonl"

    def setup(self) -> Recipe:
        self.rank, self.world = dist.init_from_env()
        if self.t.batch_size % self.world:
            raise ConfigError("train.batch_size", f"{self.t.batch_size} is not divisible by the {self.world} processes")
        check_train_config(self.cfg)
        self.device_spec = dist.training_device(self.cfg.encoder.device)
        self.setup_data()
        self.setup_samplers()
        self.setup_model()
        self.setup_optimizer()
        self.resume()
        return self

    def setup_data(self) -> None:
        self.corpora, self.dev, self.languages = load_training_data(self.cfg)

    def setup_samplers(self) -> None:
        cfg, t = self.cfg, self.t
        self.sampler = sampler_from_config(cfg, self.corpora, self.languages, t.seed)
        self.val_batches = []
        if self.dev is not None and t.eval_every:
            dev_langs = [lang for lang in self.languages if lang in self.dev.languages] or self.dev.languages
            val_seed = VAL_SEED_OFFSET + (t.seed if t.val_seed is None else int(t.val_seed))
            vs = sampler_from_config(cfg, [self.dev], dev_langs, val_seed, validation=True)
            self.val_batches = [vs.batch_at(i) for i in range(t.val_batches)]

    def setup_model(self) -> None:
        cfg, rank = self.cfg, self.rank
        enc_cfg = OmegaConf.merge(cfg.encoder, {"device": self.device_spec})
        self.resume_from = latest_checkpoint(self.ckpt_root) if self.t.resume else None
        torch.manual_seed(self.t.seed + rank)  # per-rank dropout masks; DDP copies rank 0's weights to all
        if self.resume_from is not None:
            encoder = build_encoder(from_folder(enc_cfg, self.resume_from / "model"))
        elif enc_cfg.path or enc_cfg.kind != "tiny":
            encoder = build_encoder(enc_cfg)
        else:  # a new tiny model: built once (transformers saves on the main process only), loaded by the rest
            if rank == 0:
                encoder = build_encoder(enc_cfg, vocabulary_texts(cfg, self.corpora), self.output_dir / "init_model")
            dist.barrier()
            if rank != 0:
                encoder = build_encoder(OmegaConf.merge(enc_cfg, {"path": str(self.output_dir / "init_model")}))
        self.encoder, self.model = encoder, encoder.model
        if self.t.dropout is not None:  # override the checkpoint's dropout (0: deterministic steps)
            for m in self.model.modules():
                if isinstance(m, torch.nn.Dropout):
                    m.p = float(self.t.dropout)
        self.model.train()
        self.frozen = self.freeze_unused()
        if self.t.gradient_checkpointing:  # non-reentrant: works under DDP with two forwards per backward
            self.model[0].auto_model.gradient_checkpointing_enable({"use_reentrant": False})
        if self.t.compile:  # the forward sentence-transformers calls; parameter names stay the model's
            auto = self.model[0].auto_model
            auto.forward = torch.compile(auto.forward, dynamic=True)
        self.module = dist.wrap(self.model, encoder.device, find_unused=False)
        self.no_sync = dist.no_sync(self.module)
        self.loss_fn = make_loss(self.t)

    def freeze_unused(self) -> list[str]:
        """Turn off ``requires_grad`` of the parameters no embedding depends on (they never get a gradient,
        so AdamW never moves them either): DDP then needs no per-step search for unused parameters."""
        devices = [self.encoder.device] if self.encoder.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):  # the probe draws no dropout mask of the run
            out = self.model(self.encoder.features(["probe"], "query"))["sentence_embedding"]
        names = dist.unused_parameters(self.model, out)
        params = dict(self.model.named_parameters())
        for name in names:
            params[name].requires_grad_(False)
        if names:
            log.info("parameters outside the loss's graph, frozen: %s", ", ".join(names))
        return names

    def embed(self, inputs, kind: str) -> torch.Tensor:
        """``Encoder.forward`` through the (DDP-wrapped) module, of a TokenBatch on the device (or texts)."""
        feats = inputs.features if isinstance(inputs, TokenBatch) else self.encoder.features(inputs, kind)
        emb = self.module(feats)["sentence_embedding"]
        return F.normalize(emb, dim=-1) if self.encoder.normalize else emb

    def prepare(self, batch) -> Prepared:
        """This rank's slice of ``batch`` tokenised (run in the prefetch thread, off the step's path)."""
        q, p, n = _texts(batch.shard(self.rank, self.world))
        pin = self.encoder.device.type == "cuda"
        return Prepared(batch, (tokenize(self.encoder, q, "query", pin), tokenize(self.encoder, p, "passage", pin),
                                tokenize(self.encoder, n, "passage", pin)))

    def setup_optimizer(self) -> None:
        t = self.t
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=t.lr, weight_decay=t.weight_decay, fused=True)
        horizon = t.schedule_steps or t.max_steps  # the LR schedule's length; max_steps may stop earlier
        warmup = int(t.warmup * horizon) if t.warmup < 1 else int(t.warmup)
        self.scheduler = get_linear_schedule_with_warmup(self.optimizer, warmup, horizon)

    def resume(self) -> None:
        self.state = {"step": 0, "best_val": math.inf, "bad_evals": 0, "best_step": None}
        if self.resume_from is not None:
            saved = load_state(self.resume_from)
            self.optimizer.load_state_dict(saved["optimizer"])
            self.scheduler.load_state_dict(saved["scheduler"])
            self.sampler.load_state_dict(saved["sampler"])
            _set_rng_state(saved["rng"])
            self.state = saved["trainer"]
            log.info("resumed from %s at step %d", self.resume_from.name, self.state["step"])
        if self.rank == 0:
            self.output_dir.mkdir(parents=True, exist_ok=True)
            _trim_log(self.log_path, self.state["step"])
            _trim_log(self.batch_log, self.state["step"])

    def step(self, batch) -> torch.Tensor:
        """Forward + backward of one global batch (this rank's slice; a sampler batch or ``Prepared``);
        the loss on the device. ``train.max_tokens``: length-sorted sub-batches / GradCache chunks."""
        t = self.t
        prepared = batch if isinstance(batch, Prepared) else self.prepare(batch)
        loss_fn = batch_loss_fn(self.loss_fn, t, prepared.batch, self.rank, self.world)
        chunk = int(t.grad_cache.chunk_size) if t.grad_cache.enabled else None
        inputs, max_tokens = prepared.on(self.encoder.device), t.max_tokens
        one_lookup = max_tokens is not None and chunk is None and not t.compile
        auto = getattr(self.model[0], "auto_model", None)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.encoder.device.type == "cuda" and t.bf16), \
                one_embedding_lookup(auto.get_input_embeddings() if one_lookup and auto is not None else None, inputs):
            return contrastive_step(self.embed, *inputs, loss_fn, chunk, self.encoder.device, self.no_sync,
                                    max_tokens=max_tokens)

    def update(self) -> None:
        if self.t.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.t.grad_clip)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)

    def _to_host(self, pending: list) -> None:
        """Copy the pending steps' losses to the host at once (rank mean), failing on a non-finite one."""
        values = dist.mean(torch.stack([p["loss"] for p in pending]).float()).tolist()
        for p, value in zip(pending, values):
            if not math.isfinite(value):
                raise TrainingError(f"train: loss is {value} at step {p['record']['step']} (lr {p['lr']:.2e}); "
                                    "lower train.lr or check the data")
            p["record"]["loss"], p["loss"] = value, None

    def validate(self) -> float:
        if not hasattr(self, "_val_inputs"):  # tokenised once, on first use
            self._val_inputs = [(self.prepare(b), batch_loss_fn(self.loss_fn, self.t, b, self.rank, self.world))
                                for b in self.val_batches]
        batches = [(p.on(self.encoder.device), fn) for p, fn in self._val_inputs]
        return validation_loss(self.embed, self.model, batches, self.encoder.device, self.t.max_tokens)

    def checkpoint(self) -> None:
        payload = {"optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                   "sampler": self.sampler.state_dict(), "rng": _rng_state(), "trainer": dict(self.state)}
        if self.rank == 0:
            save_checkpoint(self.ckpt_root, self.state["step"], self.encoder, payload)

    def write(self, records: list[dict], batches: list) -> None:
        if self.rank != 0:
            return
        with open(self.log_path, "a") as f:
            f.writelines(json.dumps(r) + "\n" for r in records)
        if self.tracker is not None:
            for r in records:
                self.tracker.log({f"train/{k}": v for k, v in r.items()}, step=r["step"])
        if self.t.log_batches:
            with open(self.batch_log, "a") as f:
                f.writelines(json.dumps(b.log_record()) + "\n" for b in batches)

    def train(self) -> dict:
        t, state = self.t, self.state
        every, start, pending = int(t.log_every), time.perf_counter(), []
        bar = progress(t.max_steps, "train", initial=state["step"],
                       disable=self.rank != 0 or not self.cfg.encoder.progress)
        # batches are drawn, their texts fetched and tokenised one step ahead in a background thread; the
        # result for step s is the sampler's batch_at(s) whatever the timing, so resume stays exact
        batches = Prefetcher(lambda s: self.prepare(self.sampler.batch_at(s)), start=state["step"],
                             stop=t.max_steps, depth=max(1, int(t.prefetch)))
        try:
            return self._loop(batches, bar, start, every, pending)
        finally:
            batches.close()

    def _loop(self, batches, bar, start, every, pending) -> dict:
        t, state, stopped_early = self.t, self.state, False
        while state["step"] < t.max_steps and not stopped_early:
            step_start, prepared = time.perf_counter(), next(batches)
            batch = prepared.batch
            self.sampler.step = state["step"] + 1  # what a checkpoint after this step records
            record = {"step": state["step"], "loss": None}
            pending.append({"record": record, "batch": batch, "lr": self.scheduler.get_last_lr()[0],
                            "loss": self.step(prepared)})
            done = state["step"] + 1
            evaluating = bool(t.eval_every and self.val_batches and done % t.eval_every == 0)
            saving = done % t.save_every == 0 or done == t.max_steps
            if done % every == 0 or evaluating or saving:
                self._to_host(pending)  # before the optimizer step, so a NaN loss never reaches the weights
            self.update()
            state["step"] = done
            record.update(lr=self.scheduler.get_last_lr()[0], mode=batch.mode, requested=batch.requested,
                          examples_per_s=t.batch_size / (time.perf_counter() - step_start),
                          elapsed_s=time.perf_counter() - start)
            if evaluating:
                record["val_loss"] = self.validate()
                if record["val_loss"] < state["best_val"]:
                    state.update(best_val=record["val_loss"], bad_evals=0, best_step=done)
                    if self.rank == 0:
                        _save_model(self.encoder, self.output_dir / "model")
                else:
                    state["bad_evals"] += 1
                    stopped_early = t.patience is not None and state["bad_evals"] >= t.patience
            if pending[-1]["loss"] is None:  # on the host: write the pending log lines
                self.write([p["record"] for p in pending], [p["batch"] for p in pending])
                bar.set_postfix(loss=f"{record['loss']:.3f}", mode=batch.mode)
                pending = []
            bar.update(1)
            if saving or stopped_early:
                self.checkpoint()
                fault_point("after_checkpoint")
        bar.close()
        if self.rank == 0 and state["best_step"] is None:
            _save_model(self.encoder, self.output_dir / "model")
        return {"steps": state["step"], "best_step": state["best_step"], "best_val_loss": state["best_val"],
                "stopped_early": stopped_early, "wall_s": time.perf_counter() - start, "languages": self.languages,
                "pairs": [list(p) for p in self.sampler.pairs]}


def train(cfg, output_dir: Path, tracker=None) -> dict:
    """Train per ``cfg`` into ``output_dir``; returns a summary dict. Resumes from its checkpoints."""
    cfg = typed_sections(cfg)
    with deterministic_algorithms(bool(cfg.train.deterministic)):
        return Recipe(cfg, output_dir, tracker).setup().train()


@contextmanager
def deterministic_algorithms(on: bool):
    """``train.deterministic``: torch's deterministic kernels (the embedding backward uses atomics on CUDA
    otherwise) and cuBLAS's fixed workspace, set before the first CUDA call; the previous mode after."""
    if not on:
        yield
        return
    before = torch.are_deterministic_algorithms_enabled()
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before)


def _save_model(encoder, folder: Path) -> None:
    tmp = folder.with_name(folder.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    encoder.save(tmp)
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)
