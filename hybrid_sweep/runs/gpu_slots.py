"""GPU slots for parallel local jobs and the torchrun rendezvous for multi-node SLURM jobs.

Slots: a job takes ``per`` GPUs that no other job on this machine holds, by an exclusive ``flock`` on
one file per GPU (``<lock_dir>/gpu-<id>.lock``; the kernel drops a lock when its holder dies, so a
killed job never leaves a GPU taken). When fewer are free the job waits. GPUs are those named by
``CUDA_VISIBLE_DEVICES``; when it is unset, every GPU the machine has (``nvidia-smi``, else
``torch.cuda.device_count``), so a multi-GPU box spreads jobs without any setting. Hand-written: joblib
and submitit place processes, not GPUs.

Rendezvous: a SLURM job of ``nnodes`` nodes runs one task per node; each task's torchrun gets the node
count, its node rank (``SLURM_NODEID``), the first host of the job's node list as master and a port
derived from the job id, through torchrun's ``PET_*`` environment variables.
"""

from __future__ import annotations

import fcntl
import functools
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from hybrid_sweep.errors import ConfigError

_held: list[int] = []  # lock file descriptors of the slot this process's current job holds


@functools.cache
def count_gpus() -> int:
    """GPUs on this machine, asked of ``nvidia-smi`` or, without it, of torch in a child process: this
    (forking) sweep process must not initialise CUDA itself. No NVIDIA driver: 0 without asking."""
    if not shutil.which("nvidia-smi") and not os.path.isdir("/proc/driver/nvidia/gpus"):
        return 0
    commands = [["nvidia-smi", "--query-gpu=index", "--format=csv,noheader"]] if shutil.which("nvidia-smi") else []
    commands.append([sys.executable, "-c", "import torch; [print(i) for i in range(torch.cuda.device_count())]"])
    for cmd in commands:
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.SubprocessError):
            continue
        if out.returncode == 0:
            return len([line for line in out.stdout.splitlines() if line.strip()])
    return 0


def visible_gpus(env: Mapping[str, str], count: Callable[[], int] = count_gpus) -> list[str]:
    """The GPU ids jobs may use: ``CUDA_VISIBLE_DEVICES`` when set (empty: none), else all of them."""
    if "CUDA_VISIBLE_DEVICES" in env:
        return [g.strip() for g in env["CUDA_VISIBLE_DEVICES"].split(",") if g.strip() and g.strip() != "-1"]
    return [str(i) for i in range(count())]


def release() -> None:
    while _held:
        os.close(_held.pop())


def claim(gpus: list[str], per: int, lock_dir: Path, poll_s: float = 0.5, timeout_s: float | None = None) -> list[str]:
    """Take ``per`` free GPUs of ``gpus`` (waiting for them); held until ``release()`` or process exit."""
    if per > len(gpus):
        raise ConfigError("resources.nproc_per_node", f"{per} GPUs per job, but only {len(gpus)} visible ({gpus})")
    release()  # this process's previous job is over
    lock_dir.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    while True:
        taken, fds = [], []
        for gpu in gpus:
            fd = os.open(lock_dir / f"gpu-{re.sub(r'[^A-Za-z0-9_.-]', '_', gpu)}.lock", os.O_RDWR | os.O_CREAT, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            taken.append(gpu)
            fds.append(fd)
            if len(taken) == per:
                _held.extend(fds)
                return taken
        for fd in fds:
            os.close(fd)
        if timeout_s is not None and time.monotonic() - start > timeout_s:
            raise TimeoutError(f"no {per} free GPU(s) among {gpus} after {timeout_s} s")
        time.sleep(poll_s)


def default_lock_dir() -> Path:
    return Path(tempfile.gettempdir()) / f"hybrid_sweep-gpu-slots-{os.getuid()}"


def slot_env(env: Mapping[str, str], per: int, lock_dir: Path | None = None,
             count: Callable[[], int] = count_gpus) -> dict[str, str]:
    """``env`` with ``CUDA_VISIBLE_DEVICES`` narrowed to a claimed free slot (unchanged without GPUs)."""
    out = dict(env)
    gpus = visible_gpus(env, count)
    if gpus:
        out["CUDA_VISIBLE_DEVICES"] = ",".join(claim(gpus, per, lock_dir or default_lock_dir()))
    return out


def expand_nodelist(nodelist: str) -> list[str]:
    """SLURM's compressed host list, e.g. ``gpu[01-03,07],login1`` -> gpu01 gpu02 gpu03 gpu07 login1."""
    hosts, depth, item = [], 0, ""
    for ch in nodelist + ",":
        if ch == "," and depth == 0:
            if item:
                hosts.extend(_expand_item(item))
            item = ""
            continue
        depth += (ch == "[") - (ch == "]")
        item += ch
    return hosts


def _expand_item(item: str) -> list[str]:
    m = re.search(r"\[([^\]]*)\]", item)
    if m is None:
        return [item]
    head, tail, out = item[: m.start()], item[m.end():], []
    for part in m.group(1).split(","):
        lo, _, hi = part.partition("-")
        values = [lo] if not hi else [str(i).zfill(len(lo)) for i in range(int(lo), int(hi) + 1)]
        out.extend(head + v + rest for v in values for rest in _expand_item(tail))
    return out


def slurm_rendezvous(env: Mapping[str, str], nnodes: int, base_port: int = 29500) -> dict[str, str]:
    """torchrun's ``PET_*`` settings for a ``nnodes``-node job from the SLURM environment ({} for one node)."""
    if nnodes <= 1:
        return {}
    nodelist = env.get("SLURM_JOB_NODELIST") or env.get("SLURM_NODELIST")
    if not nodelist or "SLURM_NODEID" not in env:
        raise ConfigError("resources.nnodes", f"{nnodes} nodes need a SLURM job (SLURM_JOB_NODELIST and "
                                              "SLURM_NODEID are not set)")
    hosts = expand_nodelist(nodelist)
    if len(hosts) != nnodes:
        raise ConfigError("resources.nnodes", f"{nnodes} nodes, but the SLURM job has {len(hosts)} ({nodelist})")
    port = env.get("MASTER_PORT") or str(base_port + int(env.get("SLURM_JOB_ID", "0")) % 10000)
    return {"PET_NNODES": str(nnodes), "PET_NODE_RANK": env["SLURM_NODEID"], "PET_MASTER_ADDR": hosts[0],
            "PET_MASTER_PORT": port}
