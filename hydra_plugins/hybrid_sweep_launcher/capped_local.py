"""``hydra/launcher=submitit_local`` capped to the machine's cores: the plugin's local executor starts
every job of a sweep at once (18 processes on a 2-core machine for the demo); this launcher submits
them in waves of at most ``max_parallel`` jobs (null: the cores this process may use). It lives in the
``hydra_plugins`` namespace because Hydra instantiates launchers only from there."""

from __future__ import annotations

import os
from typing import Sequence

from hydra_plugins.hybrid_sweep_launcher.job_ends import recording_job_ends

try:
    from hydra_plugins.hydra_submitit_launcher.submitit_launcher import LocalLauncher, SlurmLauncher
except ImportError:  # hydra-submitit-launcher not installed: nothing to cap
    LocalLauncher = SlurmLauncher = None


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


class CoreCappedLocalLauncher(LocalLauncher or object):
    def __init__(self, max_parallel: int | None = None, **params) -> None:
        super().__init__(**params)
        self.max_parallel = max(1, int(max_parallel or usable_cores()))

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int):
        results = []
        for start in range(0, len(job_overrides), self.max_parallel):
            wave = job_overrides[start:start + self.max_parallel]
            with recording_job_ends(self):
                results += super().launch(wave, initial_job_idx + start)
        return results


class JobEndRecordingSlurmLauncher(SlurmLauncher or object):
    """``hydra/launcher=slurm``: the plugin's SLURM launcher, with jobs that end without a result (requeues
    exhausted, node failure) recorded FAILED instead of crashing the multirun (job_ends.py)."""

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int):
        with recording_job_ends(self):
            return super().launch(job_overrides, initial_job_idx)
