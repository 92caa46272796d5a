"""Evaluate what a results root already holds on more benchmarks, training nothing:

    python -m hybrid_sweep.evaluate_root <results_root> +eval@evals.flores=flores [evals.flores.languages=[de,fr]]
    python -m hybrid_sweep.evaluate_root <results_root> --baseline encoder=me5_small_q4 [--baseline ...]

Every run of the root is evaluated on the entries the overrides name (``+eval@evals.NAME=PRESET``, then
``evals.NAME.key=value``); the other entries a run has are kept. ``--baseline OVERRIDES`` adds a model
that is not trained here (a preset, ``encoder.path=<hub id or sentence-transformers folder>``) as a
zero-shot run of the same root, evaluated on every entry the root's runs have plus the named ones, so
"fine-tuned vs its starting point" is one table. Each evaluation is keyed by (checkpoint, entry): an
entry a run already has is not recomputed. Then the tables and the report are brought up to date.
"""

from __future__ import annotations

import logging
import re
import sys
from pathlib import Path

from omegaconf import OmegaConf

from hybrid_sweep.cli import CONF_DIR, EXIT_USER_ERROR, check_overrides
from hybrid_sweep.errors import ConfigError, HybridSweepError

USAGE = "usage: python -m hybrid_sweep.evaluate_root <results_root> [+eval@evals.NAME=PRESET ...] [--baseline OVERRIDES ...]"
_ENTRY = re.compile(r"^[+~]*(?:eval@)?evals\.([^.=]+)")


def entry_names(overrides: list[str]) -> list[str]:
    """The evaluation entries the overrides name, in order."""
    names = []
    for o in overrides:
        m = _ENTRY.match(o)
        if m and m.group(1) not in names:
            names.append(m.group(1))
    return names


def _compose(overrides: list[str]):
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name="config", overrides=overrides)


def parse(argv: list[str]) -> tuple[Path, list[str], list[list[str]]]:
    if not argv or argv[0].startswith(("-", "+")):
        raise ConfigError("results_root", USAGE)
    root, overrides, baselines, i = Path(argv[0]), [], [], 1
    while i < len(argv):
        if argv[i] == "--baseline":
            if i + 1 >= len(argv):
                raise ConfigError("--baseline", "needs the baseline's overrides, e.g. --baseline encoder=me5_small_q4")
            baselines.append(argv[i + 1].split())
            i += 2
        else:
            overrides.append(argv[i])
            i += 1
    return root, overrides, baselines


def evaluate_root(root: Path, overrides: list[str], baselines: list[list[str]]) -> list[str]:
    """Evaluate every finished run of ``root`` (and each baseline) on the named entries; returns statuses."""
    from hybrid_sweep.app import run_one
    from hybrid_sweep.runs.store import all_runs, check_store_version

    if not (root / "runs").is_dir():
        raise ConfigError("results_root", f"{root}: no runs/ folder here")
    names = entry_names(overrides)
    if not names and not baselines:
        raise ConfigError("evals", "name an evaluation entry (+eval@evals.NAME=PRESET) or a --baseline")
    for given in (overrides, *baselines):  # unknown presets and keys: one line, before anything is written
        check_overrides(["evaluate_root", *given])
    check_store_version(root)
    composed = _compose([*overrides, f"results_root={root}"])
    unknown = [n for n in names if n not in composed.evals]
    if unknown:
        raise ConfigError(f"evals.{unknown[0]}", "set no preset; add it with +eval@evals.NAME=PRESET")
    new = {n: composed.evals[n] for n in names}
    runs = [rd for rd in all_runs(root) if rd.trained or (rd.done and (rd.path / "config.yaml").exists())]
    statuses, every_entry = [], {}
    for rd in runs:
        every_entry.update({n: e["entry"] for n, e in rd.evals().items()})
        if not new:
            continue
        cfg = OmegaConf.load(rd.path / "config.yaml")
        cfg.evals, cfg.results_root = new, str(root)
        statuses.append(_one(run_one, cfg))
    for extra in baselines:
        cfg = _compose([*extra, "train.enabled=false", *overrides, f"results_root={root}"])
        cfg.evals = {**every_entry, **new}
        statuses.append(_one(run_one, cfg))
    return statuses


def _one(run_one, cfg) -> str:
    from hybrid_sweep.app import RunFailed

    try:
        return run_one(cfg)
    except RunFailed as err:  # the others go on; the failure is in runs.parquet and the exit code
        logging.getLogger("hybrid_sweep").error("%s", err)
        return "failed"


def main(argv: list[str] | None = None) -> None:
    import hybrid_sweep.config  # noqa: F401  (registers the typed schemas)

    logging.basicConfig(level=logging.INFO, format="[%(asctime)s][%(name)s] %(message)s")
    try:
        root, overrides, baselines = parse(list(sys.argv[1:] if argv is None else argv))
        statuses = evaluate_root(root, overrides, baselines)
        from hybrid_sweep.callbacks import analysis_if_changed
        from hybrid_sweep.collect import collect

        _, results = collect(root)
        if not results.empty:
            analysis_if_changed(OmegaConf.create({}), root)
    except HybridSweepError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(EXIT_USER_ERROR)
    if "failed" in statuses:
        print(f"error: {statuses.count('failed')} evaluation(s) failed (see runs.parquet)", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
