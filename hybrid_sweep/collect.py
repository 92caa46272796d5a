"""One tidy results table for a results root: ``python -m hybrid_sweep.collect <results_root>``.

- ``runs.parquet``: one row per run (done, failed, interrupted, running), with its axis columns,
  status, error, config hash, git commit, versions, device and wall time per stage;
- ``results.parquet``: every metric row of every finished run joined with that run's axis columns, so
  ``pd.read_parquet("results.parquet")`` is the whole study. Failed runs are listed in runs.parquet,
  never silently dropped (collect prints them).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd
from omegaconf import OmegaConf

from hybrid_sweep.faults import fault_point
from hybrid_sweep.io import TMP_GLOB, waiting_lock, write_csv, write_parquet
from hybrid_sweep.runs.store import all_runs, semantic_config

# Overrides that never define a condition (seeds are repetitions; the rest are bookkeeping).
NOT_VARIANT = ("train.seed=", "results_root=", "encoder.progress=", "plan=", "+sweep=", "sweep_name=", "hydra",
               "resources.", "logger=")
AXIS_COLUMNS = ("encoder", "data", "sampler", "ratio_mono", "ratio_cross", "ratio_multi", "n_pairs",
                "train_langs", "n_train_langs", "pretrain_low_resource", "seed", "max_steps", "batch_size", "lr",
                "trained")


def axis_values(cfg, train_summary: dict | None = None) -> dict:
    """The columns every results row carries, from a run's resolved config (and, for the training
    languages when the config leaves them to the data, its train_summary.json)."""
    trained = bool(cfg.get("train", {}).get("enabled", True))
    ratio = cfg.sampler.ratio if trained else {}
    langs = cfg.data.get("languages") if trained else None
    if trained and langs is None and train_summary:
        langs = train_summary.get("languages")
    return {
        "encoder": cfg.encoder.name, "data": cfg.data.name if trained else None,
        "sampler": cfg.sampler.name if trained else "zero-shot",
        "ratio_mono": ratio.get("mono"), "ratio_cross": ratio.get("cross"), "ratio_multi": ratio.get("multi"),
        "n_pairs": cfg.sampler.get("n_pairs") if trained else None,
        "train_langs": ",".join(sorted(langs)) if langs else ("all" if trained else None),
        "n_train_langs": len(langs) if langs else None,
        "pretrain_low_resource": (cfg.pretrain.get("n_low_resource", 0)
                                  if cfg.get("pretrain", {}).get("enabled", False) else None),
        "seed": cfg.train.seed if trained else None,
        "max_steps": cfg.train.max_steps if trained else 0,
        "batch_size": cfg.train.batch_size if trained else None,
        "lr": cfg.train.lr if trained else None, "trained": trained,
    }


def separate_hidden_differences(rows: list[dict], configs: dict[str, dict]) -> list[str]:
    """Runs that agree on every axis column, variant and seed but not on their config (a default edited
    between sweeps, a key a newer version added) are different conditions, not extra seeds: append the
    config keys that differ to their ``variant``. Returns those keys."""
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault((*(str(row.get(c)) for c in AXIS_COLUMNS if c != "seed"), row["variant"]), []).append(row)
    hidden: set[str] = set()
    for members in groups.values():
        seeds = [str(m.get("seed")) for m in members]
        if len(seeds) == len(set(seeds)):
            continue
        flat = [configs[m["run_id"]] for m in members]
        keys = sorted(k for k in set().union(*flat) if k != "train.seed"
                      and len({str(f.get(k, "<absent>")) for f in flat}) > 1)
        for m, f in zip(members, flat):
            m["variant"] = " ".join([m["variant"], *(f"{k}={f.get(k, '<absent>')}" for k in keys)]).strip()
        hidden.update(keys)
    return sorted(hidden)


def _json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {}


def collect(root: Path, quiet: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:
    root = Path(root)
    rows, configs = [], {}
    for rd in all_runs(root):
        if not (rd.path / "config.yaml").exists():
            continue
        cfg = OmegaConf.load(rd.path / "config.yaml")
        configs[rd.id] = pd.json_normalize(semantic_config(cfg), sep=".").iloc[0].to_dict()
        info = rd.info()
        stages = _json(rd.path / "stages.json")
        status = rd.status()
        error = (rd.path / "FAILED").read_text().strip().splitlines()[-1] if status == "failed" else None
        row = {"run_id": rd.id, "status": status, "error": error, **axis_values(cfg, _json(rd.path / "train_summary.json")),
               **{k: info.get(k) for k in ("sweep", "overrides", "config_hash", "git_commit", "versions", "device")},
               **stages}
        row["variant"] = " ".join(sorted(o for o in (info.get("overrides") or "").split() if not o.startswith(NOT_VARIANT)))
        rows.append(row)
    hidden = separate_hidden_differences(rows, configs)
    frames = []
    for row in rows:
        if row["status"] == "done":
            m = pd.read_parquet(root / "runs" / row["run_id"] / "metrics.parquet")
            for key in ("run_id", "sweep", "variant", *AXIS_COLUMNS):
                m.insert(len(m.columns), key, row.get(key))
            frames.append(m)
    runs = pd.DataFrame(rows)
    results = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    with waiting_lock(root / ".collect.lock"):  # one writer of the tables at a time
        for stale in root.glob(TMP_GLOB):  # left by a collect that was killed
            stale.unlink()
        write_parquet(root / "runs.parquet", runs)
        write_csv(root / "runs.csv", runs)
        fault_point("during_collect")
        write_parquet(root / "results.parquet", results)
    if not quiet:
        if hidden:
            print(f"note: runs with the same axes and seed differ in {', '.join(hidden)} (not on their command "
                  "lines: an edited default or a newer version); kept apart as conditions in `variant`")
        counts = runs.status.value_counts().to_dict() if len(runs) else {}
        print(f"{root}: {len(runs)} runs {counts}; results.parquet has {len(results)} rows")
        for _, r in runs[runs.status == "failed"].iterrows() if len(runs) else []:
            print(f"  failed {r.run_id}: {r.error}")
    return runs, results


def main(argv=None) -> None:
    args = argv if argv is not None else sys.argv[1:]
    if len(args) != 1:
        print("usage: python -m hybrid_sweep.collect <results_root>", file=sys.stderr)
        sys.exit(2)
    if not Path(args[0]).is_dir():
        print(f"error: {args[0]}: no such results root", file=sys.stderr)
        sys.exit(2)
    collect(Path(args[0]))


if __name__ == "__main__":
    main()
