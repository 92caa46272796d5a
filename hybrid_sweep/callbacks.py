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

ANALYSIS_INPUTS = "inputs.json"
# What went wrong in this process's multirun: failed jobs and errors at its end (collect, report). The
# command exits non-zero when either is non-empty (``exit_status``), so a script or CI can tell.
OUTCOME: dict[str, list[str]] = {"failed_jobs": [], "end_errors": []}


def record_failed_job(overrides: str) -> None:
    OUTCOME["failed_jobs"].append(overrides)


def exit_status() -> int:
    """0, or 1 after one line saying what failed in this process's multirun."""
    failed, errors = OUTCOME["failed_jobs"], OUTCOME["end_errors"]
    if not failed and not errors:
        return 0
    parts = [f"{len(failed)} run(s) failed (e.g. {failed[0] or '(defaults)'}); a rerun retries them"] if failed else []
    parts += errors[:1]
    print(f"error: {'; '.join(parts)}", file=sys.stderr)
    return 1  # in <results_root>/analysis: the results fingerprint and code the report was made from


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
        self._collect(config, analyze=bool(config.analyze))  # conf/config.yaml sets it (the declared default)

    @staticmethod
    def _collect(config, analyze: bool) -> None:
        if config.plan or not Path(config.results_root, "runs").exists():
            return
        from hybrid_sweep.collect import collect

        root = Path(config.results_root)
        try:
            _, results = collect(root)
            if analyze and not results.empty:
                analysis_if_changed(config, root)
        except Exception as err:  # noqa: BLE001 - Hydra would turn it into a warning and exit 0
            line = str(err).splitlines()[0] if str(err) else type(err).__name__
            message = line if isinstance(err, HybridSweepError) else f"{type(err).__name__}: {line}"
            OUTCOME["end_errors"].append(f"collecting {root}: {message}")


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
    from hybrid_sweep.config.load import typed_section
    from hybrid_sweep.config.stages import LoggerConfig
    from hybrid_sweep.io import write_text

    report = write_report(root)
    if inputs:
        write_text(marker, json.dumps(made_from) + "\n")
    print(f"report: {report}")
    logger = config.get("logger")  # absent where no sweep config is at hand (evaluate_root, tests)
    if logger is not None and typed_section(logger, LoggerConfig, "logger").name == "wandb":
        from hybrid_sweep.tracking import log_analysis

        log_analysis(config, report.parent)
    return report
