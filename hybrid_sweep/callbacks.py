"""Hydra callback: write results.parquet / runs.parquet when a run or a multirun ends."""

from __future__ import annotations

from pathlib import Path

from hydra.experimental.callback import Callback


class CollectResults(Callback):
    def on_run_end(self, config, **kwargs) -> None:
        self._collect(config)

    def on_multirun_end(self, config, **kwargs) -> None:
        self._collect(config)

    @staticmethod
    def _collect(config) -> None:
        if config.get("plan") or not Path(config.results_root, "runs").exists():
            return
        from hybrid_sweep.collect import collect

        collect(Path(config.results_root))
