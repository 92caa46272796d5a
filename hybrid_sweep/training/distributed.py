"""torch.distributed for the trainer: the process group from torchrun's environment, the training device,
the DDP wrapper (bucketed gradient all-reduce overlapped with the backward pass), gathers with gradients
and device-side means.

Every collective runs whenever a process group exists, also at world size 1, so a one-GPU NCCL run takes
the same code path as a multi-GPU one; every tensor handed to a collective lives on the training device
(NCCL serves no CPU tensors). Without a process group everything here is a no-op.
"""

from __future__ import annotations

import contextlib
import os
import warnings

import torch
import torch.distributed as dist
import torch.distributed.nn.functional as dist_fn

from hybrid_sweep.errors import ConfigError


def init_from_env() -> tuple[int, int]:
    """(rank, world) — initialises the process group when launched by torchrun with WORLD_SIZE > 1
    (NCCL with CUDA, each rank on GPU ``LOCAL_RANK``; gloo on CPU)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(local_rank())
        dist.init_process_group(backend)
    return rank(), world_size()


def active() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    return dist.get_rank() if active() else 0


def world_size() -> int:
    return dist.get_world_size() if active() else 1


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def training_device(spec: str | None, key: str = "encoder.device") -> str:
    """The device string to build the model on: ``auto`` picks CUDA when it works; an explicit ``cuda``
    on a machine whose CUDA does not work is a ConfigError (never a silent CPU run). Under an NCCL
    process group each rank takes its own GPU, ``cuda:LOCAL_RANK``."""
    spec = "auto" if spec in (None, "") else str(spec)
    if spec == "auto":
        spec = "cuda" if torch.cuda.is_available() else "cpu"
    if spec.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(key, f"{spec!r} asked for, but CUDA does not work on this machine "
                                   f"(torch {torch.__version__}, built for CUDA {torch.version.cuda}); use cpu or auto")
        index = int(spec.split(":", 1)[1]) if ":" in spec else None
        if index is not None and index >= torch.cuda.device_count():
            raise ConfigError(key, f"{spec!r}: only {torch.cuda.device_count()} GPU(s) visible")
        if active() and dist.get_backend() == "nccl":
            return f"cuda:{local_rank()}"
    elif spec != "cpu" and not spec.startswith(("mps", "xpu")):
        raise ConfigError(key, f"unknown device {spec!r}; auto, cpu, cuda or cuda:N")
    return spec


def unused_parameters(model: torch.nn.Module, output: torch.Tensor) -> list[str]:
    """Names of the trainable parameters that ``output`` (one forward of ``model``) does not depend on,
    read from its autograd graph (no backward): e.g. a BERT pooler that mean pooling never reads."""
    reached, seen, todo = set(), set(), [output.grad_fn]
    while todo:
        fn = todo.pop()
        if fn is None or fn in seen:
            continue
        seen.add(fn)
        if hasattr(fn, "variable"):
            reached.add(id(fn.variable))
        todo.extend(nxt for nxt, _ in fn.next_functions)
    return [n for n, p in model.named_parameters() if p.requires_grad and id(p) not in reached]


def wrap(model: torch.nn.Module, device: torch.device, find_unused: bool = True) -> torch.nn.Module:
    """``model`` under DistributedDataParallel when a process group exists (which also broadcasts rank
    0's weights), else itself. ``find_unused``: an extra graph traversal per step so that parameters the
    loss never reaches do not stall the reducer; the trainer freezes those (``unused_parameters``) instead
    and turns it off."""
    if not active():
        return model
    ids = [device] if device.type == "cuda" else None
    return torch.nn.parallel.DistributedDataParallel(model, device_ids=ids, broadcast_buffers=False,
                                                     find_unused_parameters=find_unused)


def no_sync(module: torch.nn.Module):
    """Context factory that skips the gradient all-reduce (GradCache's backward passes but the last)."""
    if isinstance(module, torch.nn.parallel.DistributedDataParallel):
        return module.no_sync
    return contextlib.nullcontext


def gather_with_grad(x: torch.Tensor) -> torch.Tensor:
    """Concatenate ``x`` from every rank; gradients flow back to each rank's own slice (summed)."""
    if not active():
        return x
    with warnings.catch_warnings():  # deprecated in favour of a private API; still the public autograd gather
        warnings.simplefilter("ignore", FutureWarning)
        return torch.cat(dist_fn.all_gather(x.contiguous()), dim=0)


def mean(t: torch.Tensor) -> torch.Tensor:
    """The mean of ``t`` over ranks, reduced on ``t``'s own device (no host synchronisation)."""
    if not active():
        return t
    out = t.detach().clone()
    dist.all_reduce(out)
    return out / world_size()


def barrier() -> None:
    if active():
        dist.barrier()
