"""Experiment tracking: W&B when ``logger=wandb``, nothing otherwise. Rank 0 only; ``finish`` always
runs (the worker calls it in a ``finally``). The config sent is the run's resolved config, flattened
to dotted keys, plus every axis column results.parquet carries for the run, under the column's own name
(``sampler``, ``n_train_langs``, ``train_langs``, ...; ``config.axis_values``), so a dashboard groups by
what the table groups by; the run's W&B group is the sweep name. Axes that depend on the training data
(``train_langs`` when ``data.languages`` is null) are known once ``train_summary.json`` exists: the
config is updated then (at the evaluation's summary, or at ``finish``). No environment variables (API
keys) are read into the config."""

from __future__ import annotations

import json
from pathlib import Path

from omegaconf import OmegaConf

from hybrid_sweep.config.load import typed_section, typed_sections
from hybrid_sweep.config.stages import LoggerConfig


class NullTracker:
    def log(self, record: dict, step: int | None = None) -> None:
        pass

    def summary(self, values: dict) -> None:
        pass

    def finish(self, failed: bool = False) -> None:
        pass


class WandbTracker(NullTracker):
    def __init__(self, cfg, run_dir: Path, run_name: str, run_id: str):
        import wandb

        self.cfg, self.run_dir = cfg, Path(run_dir)
        self.axes = run_axes(cfg, self.run_dir)
        flat = {**_flatten(OmegaConf.to_container(cfg, resolve=True)), **self.axes}
        self.run = wandb.init(project=cfg.logger.project, entity=cfg.logger.entity, group=cfg.get("sweep_name"),
                              name=run_name, id=run_id, resume="allow", config=flat, dir=str(run_dir),
                              mode=cfg.logger.mode, tags=list(cfg.logger.tags),
                              reinit="finish_previous")

    def _refresh_axes(self) -> None:
        """Send the axes that changed since ``init`` (derived from train_summary.json once it exists)."""
        axes = run_axes(self.cfg, self.run_dir)
        changed = {k: v for k, v in axes.items() if self.axes.get(k) != v}
        if changed:
            self.run.config.update(changed, allow_val_change=True)
            self.axes = axes

    def log(self, record: dict, step: int | None = None) -> None:
        self.run.log({k: v for k, v in record.items() if isinstance(v, (int, float))}, step=step)

    def summary(self, values: dict) -> None:
        self._refresh_axes()
        self.run.summary.update(values)

    def finish(self, failed: bool = False) -> None:
        try:
            self._refresh_axes()
        finally:
            self.run.finish(exit_code=1 if failed else 0)


def run_axes(cfg, run_dir: Path) -> dict:
    """The run's axis columns as results.parquet carries them (with train_summary.json when present)."""
    from hybrid_sweep.config import axis_values

    summary = Path(run_dir) / "train_summary.json"
    return axis_values(cfg, json.loads(summary.read_text()) if summary.is_file() else None)


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def make_tracker(cfg, run_dir: Path, rank: int = 0) -> NullTracker:
    if rank != 0:
        return NullTracker()
    cfg = typed_sections(cfg)  # the logger section with its declared defaults
    if cfg.logger.name != "wandb":
        return NullTracker()
    axes = run_axes(cfg, run_dir)  # the run's results columns, as results.parquet will carry them
    name = " ".join(f"{k}={v}" for k, v in axes.items() if v is not None and k in
                    ("encoder", "sampler", "n_pairs", "train_langs", "ratio_mono", "ratio_cross", "seed"))
    return WandbTracker(cfg, run_dir, name, Path(run_dir).name)


def log_analysis(cfg, folder: Path) -> None:
    """Log a results root's analysis (CSV tables, PNG figures) as one W&B run in the sweep's group."""
    import pandas as pd
    import wandb

    logger = typed_section(cfg.logger, LoggerConfig, "logger")
    run = wandb.init(project=logger.project, entity=logger.entity, group=cfg.get("sweep_name"),
                     name=f"{cfg.get('sweep_name')} analysis", job_type="analysis", dir=str(folder),
                     mode=logger.mode, reinit="finish_previous")
    try:
        for csv in sorted(Path(folder).glob("*.csv")):
            run.log({f"tables/{csv.stem}": wandb.Table(dataframe=pd.read_csv(csv))})
        for png in sorted(Path(folder).glob("*.png")):
            run.log({f"figures/{png.stem}": wandb.Image(str(png))})
    finally:
        run.finish()
