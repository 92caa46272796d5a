"""Hydra's basic sweeper, composing each job's config once instead of twice.

The basic sweeper composes every job of a batch to check it before launching any (so a bad override
fails before the first run), then the launcher composes each job again; on a rerun of a finished sweep
that second composition was a third of the wall time. This sweeper hands the launcher the config the
check already composed, after running the app's checks on it (``check_job``: every job's typed config and
languages, so a bad value in any job is one line before the first job starts). It lives in the ``hydra_plugins`` namespace because Hydra instantiates sweepers
only from there; it subclasses ``hydra._internal``'s BasicSweeper, which hydra-core < 1.4 (pinned) keeps."""

from __future__ import annotations

from typing import Any

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.types import HydraContext

KEEP_AT_MOST = 256  # composed configs held between the check and the launch; beyond that, composed again


class ComposedOnce:
    """A config loader that answers each job's ``load_sweep_config`` twice from one composition: the
    sweeper's check stores it, the launcher's call takes it. Everything else goes to the wrapped loader."""

    def __init__(self, loader, keep_at_most: int = KEEP_AT_MOST, check=None) -> None:
        self._loader, self._keep_at_most, self._composed, self._seen = loader, keep_at_most, {}, set()
        self._check = check  # run on each job's config at its first composition (the sweeper's check)

    def load_sweep_config(self, master_config, sweep_overrides):
        key = (id(master_config), tuple(sweep_overrides))
        if key in self._composed:
            return self._composed.pop(key)
        composed = self._loader.load_sweep_config(master_config, list(sweep_overrides))
        if key not in self._seen and self._check is not None:
            self._check(composed)
        if key not in self._seen and len(self._composed) < self._keep_at_most:  # held for its second call only
            self._composed[key] = composed
        self._seen.add(key)
        return composed

    def __getattr__(self, name: str) -> Any:
        loader = self.__dict__.get("_loader")
        if loader is None or name.startswith("__"):
            raise AttributeError(name)
        return getattr(loader, name)

    def __getstate__(self) -> dict:  # a launcher that pickles itself (submitit) ships no held configs
        return {**self.__dict__, "_composed": {}}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)


def check_job(composed) -> None:
    """Every job's config through the app's checks before any job is launched: a bad value in the fifth
    job of a sweep is one line and exit 2 before the first trains (not after four runs)."""
    import sys

    from omegaconf import OmegaConf

    from hybrid_sweep.app import validate
    from hybrid_sweep.cli import EXIT_USER_ERROR
    from hybrid_sweep.errors import HybridSweepError

    plain = OmegaConf.to_container(composed, resolve=False)
    plain.pop("hydra", None)  # its job fields are set only inside the job
    try:
        validate(OmegaConf.create(plain))
    except HybridSweepError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(EXIT_USER_ERROR)


class ComposeOnceSweeper(BasicSweeper):
    def setup(self, *, hydra_context: HydraContext, task_function, config) -> None:
        once = HydraContext(config_loader=ComposedOnce(hydra_context.config_loader, check=check_job),
                            callbacks=hydra_context.callbacks)
        super().setup(hydra_context=once, task_function=task_function, config=config)

    def sweep(self, arguments):
        """Hydra's sweep; jobs whose run failed are recorded so the command can exit non-zero at the end."""
        from hybrid_sweep.callbacks import record_failed_job

        returns = super().sweep(arguments)
        for batch in returns:
            for r in batch:
                if r.return_value == "failed":
                    record_failed_job(" ".join(r.overrides or ()))
        return returns
