"""torch.distributed helpers: process group from torchrun's environment, gathers with gradients, and
gradient averaging (done by hand instead of wrapping in DDP, so GradCache's several backward passes per
step need no ``no_sync`` bookkeeping)."""

from __future__ import annotations

import os
import warnings

import torch
import torch.distributed as dist
import torch.distributed.nn.functional as dist_fn


def init_from_env() -> tuple[int, int]:
    """(rank, world) — initialises the process group when launched by torchrun with WORLD_SIZE > 1."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group(backend)
    return rank(), world_size()


def rank() -> int:
    return dist.get_rank() if dist.is_initialized() else 0


def world_size() -> int:
    return dist.get_world_size() if dist.is_initialized() else 1


def gather_with_grad(x: torch.Tensor) -> torch.Tensor:
    """Concatenate ``x`` from every rank; gradients flow back to each rank's own slice (summed)."""
    if world_size() == 1:
        return x
    with warnings.catch_warnings():  # deprecated in favour of a private API; still the public autograd gather
        warnings.simplefilter("ignore", FutureWarning)
        return torch.cat(dist_fn.all_gather(x.contiguous()), dim=0)


def average_gradients(params) -> None:
    world = world_size()
    if world == 1:
        return
    for p in params:
        if p.grad is not None:
            dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)
            p.grad.div_(world)


def mean_scalar(value: float) -> float:
    if world_size() == 1:
        return value
    t = torch.tensor([value], dtype=torch.float64)
    dist.all_reduce(t)
    return t.item() / world_size()


def broadcast_parameters(params) -> None:
    if world_size() == 1:
        return
    for p in params:
        dist.broadcast(p.data, src=0)


def barrier() -> None:
    if world_size() > 1:
        dist.barrier()
