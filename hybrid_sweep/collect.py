"""One tidy results table for a results root: ``python -m hybrid_sweep.collect <results_root>``.

- ``runs.parquet``: one row per run (done, failed, interrupted, running), with its axis columns,
  status, error, config hash, git commit, versions, device and wall time per stage;
- ``results.parquet``: every metric row of every finished run joined with that run's axis columns, so
  ``pd.read_parquet("results.parquet")`` is the whole study. Failed runs are listed in runs.parquet,
  never silently dropped (collect prints them).

Both are written through ``hybrid_sweep.results_schema`` (columns, types, allowed values, metadata);
the axis columns and which overrides define a condition are derived from the typed configs' marks.
Collect skips its work when the run files it reads are unchanged since the tables were written (their
fingerprint is in the tables' metadata), so rerunning a finished sweep recomputes nothing.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import pandas as pd
from omegaconf import OmegaConf

from hybrid_sweep import results_schema
from hybrid_sweep.config import CONFIG_SCHEMA_VERSION, axis_values, is_condition_override, load, semantic_config
from hybrid_sweep.errors import DataError, HybridSweepError
from hybrid_sweep.faults import fault_point
from hybrid_sweep.io import TMP_GLOB, waiting_lock, write_csv
from hybrid_sweep.runs.store import RunDir, all_runs

# The files of a run that collect reads: a change in any of them (or in a run's status) is new input.
INPUT_FILES = ("config.yaml", "run.json", "stages.json", "train_summary.json", "metrics.parquet", "DONE", "FAILED")


def fingerprint(runs: list[RunDir]) -> str:
    """Hash of every run's status and the size and mtime of the files collect reads."""
    h = hashlib.sha256(f"{results_schema.SCHEMA_VERSION}/{CONFIG_SCHEMA_VERSION}".encode())
    for rd in runs:
        h.update(f"{rd.id}:{rd.status()}".encode())
        for name in INPUT_FILES:
            try:
                st = (rd.path / name).stat()
            except FileNotFoundError:
                continue
            h.update(f"{name}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()[:16]


def separate_hidden_differences(rows: list[dict], configs: dict[str, dict]) -> list[str]:
    """Runs that agree on every axis column, variant and seed but not on their config (a default edited
    between sweeps, a key a newer version added) are different conditions, not extra seeds: append the
    config keys that differ to their ``variant``. Returns those keys."""
    axes = [a for a in results_schema.axes() if a != "seed"]
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault((*(str(row.get(c)) for c in axes), row["variant"]), []).append(row)
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


def _check_one_generation(root: Path, configs: dict[str, dict]) -> None:
    old = sorted(rid for rid, raw in configs.items() if raw.get("schema_version") != CONFIG_SCHEMA_VERSION)
    if old:
        raise DataError(root, f"{len(old)} of {len(configs)} runs (e.g. {old[0]}) were written by config schema "
                              f"{configs[old[0]].get('schema_version') or '1'}, whose run ids differ from schema "
                              f"{CONFIG_SCHEMA_VERSION}'s; collect them with the version that wrote them, "
                              "or keep each generation in its own results_root")


def _unchanged(root: Path, inputs: str) -> bool:
    metas = [results_schema.table_metadata(root / f"{t}.parquet") for t in ("runs", "results")]
    return all(m is not None and m.get("schema_version") == results_schema.SCHEMA_VERSION
               and m.get("inputs") == inputs for m in metas)


def collect(root: Path, quiet: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:
    root = Path(root)
    runs_found = [rd for rd in all_runs(root) if (rd.path / "config.yaml").exists()]
    inputs = fingerprint(runs_found)
    if _unchanged(root, inputs):
        runs, results = (pd.read_parquet(root / f"{t}.parquet") for t in ("runs", "results"))
        if not quiet:
            print(f"{root}: {len(runs)} runs, unchanged since the last collect; results.parquet has {len(results)} rows")
        return runs, results
    raw = {rd.id: OmegaConf.load(rd.path / "config.yaml") for rd in runs_found}
    _check_one_generation(root, raw)
    rows, configs = [], {}
    for rd in runs_found:
        cfg = load(raw[rd.id])
        configs[rd.id] = pd.json_normalize(semantic_config(cfg), sep=".").iloc[0].to_dict()
        info = rd.info()
        status = rd.status()
        error = (rd.path / "FAILED").read_text().strip().splitlines()[-1] if status == "failed" else None
        summary = _json(rd.path / "train_summary.json")
        row = {"run_id": rd.id, "status": status, "error": error,
               "pairs": ",".join(f"{x}-{y}" for x, y in summary["pairs"]) if summary.get("pairs") else None,
               **axis_values(cfg, summary),
               **{k: info.get(k) for k in ("sweep", "overrides", "config_hash", "git_commit", "versions", "device")},
               **_json(rd.path / "stages.json")}
        row["variant"] = " ".join(sorted(o for o in (info.get("overrides") or "").split() if is_condition_override(o)))
        rows.append(row)
    hidden = separate_hidden_differences(rows, configs)
    frames = []
    for row in rows:
        if row["status"] == "done":
            m = pd.read_parquet(root / "runs" / row["run_id"] / "metrics.parquet")
            for key in ("run_id", "sweep", "variant", *results_schema.axes()):
                m.insert(len(m.columns), key, row.get(key))
            frames.append(m)
    runs = pd.DataFrame(rows)
    results = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    with waiting_lock(root / ".collect.lock"):  # one writer of the tables at a time
        for stale in root.glob(TMP_GLOB):  # left by a collect that was killed
            stale.unlink()
        results_schema.write_table(root / "runs.parquet", runs, "runs", inputs)
        write_csv(root / "runs.csv", runs)
        fault_point("during_collect")
        results_schema.write_table(root / "results.parquet", results, "results", inputs)
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
    try:
        collect(Path(args[0]))
    except HybridSweepError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
