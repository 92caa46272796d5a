"""Hydra callback: write results.parquet / runs.parquet when a run or a multirun ends, and the analysis
(tables, figures, report.md) after a multirun."""

from __future__ import annotations

from pathlib import Path

from hydra.experimental.callback import Callback


class CollectResults(Callback):
    def on_multirun_start(self, config, **kwargs) -> None:
        # Import now, not when the sweep ends: a sweep that runs for days then collects and analyses with
        # the code it started with, even if the package is edited meanwhile.
        import hybrid_sweep.analysis.report  # noqa: F401
        import hybrid_sweep.collect  # noqa: F401
        import hybrid_sweep.tracking  # noqa: F401

    def on_run_end(self, config, **kwargs) -> None:
        self._collect(config, analyze=False)

    def on_multirun_end(self, config, **kwargs) -> None:
        self._collect(config, analyze=bool(config.get("analyze", True)))

    @staticmethod
    def _collect(config, analyze: bool) -> None:
        if config.get("plan") or not Path(config.results_root, "runs").exists():
            return
        from hybrid_sweep.collect import collect

        _, results = collect(Path(config.results_root))
        if analyze and not results.empty:
            from hybrid_sweep.analysis.report import analyze as write_report

            report = write_report(Path(config.results_root))
            print(f"report: {report}")
            if config.get("logger", {}).get("name") == "wandb":
                from hybrid_sweep.tracking import log_analysis

                log_analysis(config, report.parent)
