"""Submitit jobs that end without a result (requeues exhausted, killed, node failure) are recorded
instead of crashing the multirun: the plugin's launcher collects each job's result and the first job that
raised would end the whole sweep before collect and the report. Here each such job is marked ``FAILED``
in the run store with the cluster's reason and handed back as a failed run, so the other jobs are
collected and reported, the command exits non-zero naming the failed runs, and a rerun retries only them.
Used by the ``submitit_local`` (capped) and ``slurm`` launchers of conf/hydra/launcher."""

from __future__ import annotations

import logging
from contextlib import contextmanager

log = logging.getLogger("hybrid_sweep")


class EndedJob:
    """A submitit job whose ``results()`` never raises: a job that ended without a result comes back as
    Hydra's JobReturn with the return value ``"failed"`` after its run is marked FAILED."""

    def __init__(self, job, overrides, launcher) -> None:
        self._job, self._overrides, self._launcher = job, list(overrides), launcher

    def __getattr__(self, name):
        return getattr(self._job, name)

    def results(self):
        try:
            return self._job.results()
        except Exception as err:  # noqa: BLE001 - submitit's FailedJobError, UncompletedJobError, ...
            reason = (str(err).strip().splitlines() or [type(err).__name__])[0]
            message = f"cluster job {getattr(self._job, 'job_id', '?')} ended without a result: {type(err).__name__}: {reason}"
            mark_failed(self._launcher, self._overrides, message)
            from hydra.core.utils import JobReturn, JobStatus

            ret = JobReturn(overrides=self._overrides, status=JobStatus.COMPLETED, _return_value="failed")
            return [ret]


def mark_failed(launcher, overrides: list[str], message: str) -> None:
    """Record ``FAILED`` with ``message`` in the run the job's overrides describe (unless it is DONE)."""
    try:
        from hybrid_sweep.app import validate
        from hybrid_sweep.runs.store import RunDir, run_id

        from omegaconf import OmegaConf

        composed = launcher.hydra_context.config_loader.load_sweep_config(launcher.config, list(overrides))
        plain = OmegaConf.to_container(composed, resolve=False)
        plain.pop("hydra", None)  # its job fields are set only inside the job
        cfg = validate(OmegaConf.create(plain))
        rd = RunDir(cfg.results_root, run_id(cfg))
        if not rd.done and rd.path.exists():
            rd.mark_failed(f"run {rd.id}: {message}")
    except Exception as err:  # noqa: BLE001 - the record is a courtesy; the exit code still says it
        log.warning("could not mark the run of %s failed: %s", " ".join(overrides), err)
    log.error("%s (%s)", message, " ".join(overrides))


@contextmanager
def recording_job_ends(launcher):
    """While the plugin's ``launch`` runs: its executor's jobs come back as ``EndedJob``s."""
    import submitit

    original = submitit.AutoExecutor.map_array

    def map_array(executor, fn, *iterables):
        jobs = original(executor, fn, *iterables)
        overrides = iterables[0] if iterables else [[] for _ in jobs]
        return [EndedJob(j, o, launcher) for j, o in zip(jobs, overrides)]

    submitit.AutoExecutor.map_array = map_array
    try:
        yield
    finally:
        submitit.AutoExecutor.map_array = original
