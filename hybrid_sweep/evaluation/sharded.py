"""Sharded corpus encoding: under torchrun every rank encodes its share of each evaluation corpus into
the embedding store, and rank 0 searches once every shard exists.

A :class:`ShardPlan` gives shard i to rank ``i % world`` (deterministic: the same job always splits a
corpus the same way, and the shard boundaries do not depend on the world size, so the store equals the
one a single process writes). Each rank holds an ``flock`` on ``<ranks_dir>/rank-<r>.lock`` for as long
as it works; the kernel drops it when the rank exits or dies. Rank 0 polls the shards it waits for and,
when one is missing and its rank's lock is free, raises one DataError instead of hanging. Ranks other
than 0 encode their shards of every corpus and return; only rank 0 writes results.

``rank_group`` is the only place that talks to ``torch.distributed`` (gloo on CPU, NCCL on GPU, as the
trainer's process group): one barrier after every rank holds its lock, so rank 0 never mistakes a rank
that has not started yet for a dead one.
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from hybrid_sweep.errors import DataError
from hybrid_sweep.io import lock_held


@dataclass(frozen=True)
class ShardPlan:
    """This process's place in a job that encodes corpora together."""

    rank: int
    world: int
    ranks_dir: Path
    poll_s: float = 0.2

    def owner(self, shard: int) -> int:
        return shard % self.world

    def owns(self, shard: int) -> bool:
        return self.owner(shard) == self.rank

    def alive(self, rank: int) -> bool:
        """True while ``rank`` holds its liveness lock (is still working)."""
        return rank == self.rank or lock_held(self.ranks_dir / f"rank-{rank}.lock")


@contextmanager
def hold_rank(ranks_dir: Path, rank: int, world: int, barrier=None) -> Iterator[ShardPlan]:
    """Hold this rank's liveness lock for the block; ``barrier()`` (every rank of the job) runs once the
    lock is held. A lock already held means another job's rank still uses the folder: one DataError."""
    ranks_dir = Path(ranks_dir)
    ranks_dir.mkdir(parents=True, exist_ok=True)
    path = ranks_dir / f"rank-{rank}.lock"
    with open(path, "a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DataError(path, "held by another process (a rank of an earlier job still running?); "
                                  "two jobs cannot share one ranks folder") from None
        if barrier is not None:
            barrier()
        yield ShardPlan(rank, world, ranks_dir)


@contextmanager
def rank_group(ranks_dir: Path) -> Iterator[ShardPlan | None]:
    """The plan of this rank when a ``torch.distributed`` process group of 2+ ranks exists (torchrun),
    else None (one process: the unchanged path)."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() < 2:
        yield None
        return
    with hold_rank(ranks_dir, dist.get_rank(), dist.get_world_size(), dist.barrier) as plan:
        yield plan

