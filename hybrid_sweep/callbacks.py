"""Hydra callback: write results.parquet / runs.parquet when a run or a multirun ends, and the analysis
(tables, figures, report.md) after a multirun. Both are skipped when their inputs did not change: collect
compares the run files' fingerprint with the one in the tables' metadata, and the analysis is redone only
when results.parquet carries a fingerprint other than the one the last report was made from, or the
analysis code changed."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from hydra.experimental.callback import Callback

from hybrid_sweep.errors import HybridSweepError

ANALYSIS_INPUTS = "inputs.json"  # in <results_root>/analysis: the results fingerprint and code the report was made from


def preload_end_of_sweep() -> None:
    """Import what the end of a sweep runs (collect, report, tracking). The sweep calls it before its first
    run that does work, so a sweep that runs for days collects and analyses with the code it started
    with even if the package is edited meanwhile; a sweep with nothing to run does not pay for it."""
    import hybrid_sweep.analysis.report  # noqa: F401
    import hybrid_sweep.collect  # noqa: F401
    import hybrid_sweep.tracking  # noqa: F401


class CollectResults(Callback):
    def on_run_end(self, config, **kwargs) -> None:
        self._collect(config, analyze=False)

    def on_multirun_end(self, config, **kwargs) -> None:
        self._collect(config, analyze=bool(config.get("analyze", True)))

    @staticmethod
    def _collect(config, analyze: bool) -> None:
        if config.get("plan") or not Path(config.results_root, "runs").exists():
            return
        from hybrid_sweep.collect import collect

        root = Path(config.results_root)
        try:
            _, results = collect(root)
        except HybridSweepError as err:  # e.g. a results root holding two run-id generations
            print(f"error: {err}", file=sys.stderr)
            return
        if analyze and not results.empty:
            analysis_if_changed(config, root)


def analysis_if_changed(config, root: Path) -> Path | None:
    """Write the report unless this analysis code already made it from this results.parquet; returns its path."""
    from hybrid_sweep.analysis import CODE_VERSION
    from hybrid_sweep.results_schema import table_metadata

    inputs = (table_metadata(root / "results.parquet") or {}).get("inputs")
    made_from = {"inputs": inputs, "code": CODE_VERSION}
    marker, report = root / "analysis" / ANALYSIS_INPUTS, root / "analysis" / "report.md"
    if inputs and report.exists() and marker.exists() and json.loads(marker.read_text()) == made_from:
        print(f"report: {report} (results and analysis code unchanged)")
        return report
    from hybrid_sweep.analysis.report import analyze as write_report
    from hybrid_sweep.io import write_text

    report = write_report(root)
    if inputs:
        write_text(marker, json.dumps(made_from) + "\n")
    print(f"report: {report}")
    if config.get("logger", {}).get("name") == "wandb":
        from hybrid_sweep.tracking import log_analysis

        log_analysis(config, report.parent)
    return report
