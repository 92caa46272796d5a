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
from hybrid_sweep.io import TMP_GLOB, waiting_lock, write_csv, write_parquet
from hybrid_sweep.runs.store import ARTEFACTS_FILE, EVALS_FILE, RunDir, all_runs

# The files of a run that collect reads: a change in any of them (or in a run's status) is new input.
INPUT_FILES = ("config.yaml", "run.json", "stages.json", "train_summary.json", EVALS_FILE, ARTEFACTS_FILE,
               "DONE", "FAILED")
EVAL_FILES = ("metrics.parquet", "per_query.parquet")  # of each requested evaluation


def _eval_files(rd: RunDir) -> list[Path]:
    return [rd.path / "eval" / name / e["key"] / f for name, e in rd.evals().items() for f in EVAL_FILES]


def fingerprint(runs: list[RunDir]) -> str:
    """Hash of every run's status and the size and mtime of the files collect reads."""
    h = hashlib.sha256(f"{results_schema.SCHEMA_VERSION}/{CONFIG_SCHEMA_VERSION}".encode())
    for rd in runs:
        h.update(f"{rd.id}:{rd.status()}".encode())
        for path in [rd.path / name for name in INPUT_FILES] + _eval_files(rd):
            try:
                st = path.stat()
            except FileNotFoundError:
                continue
            h.update(f"{path.relative_to(rd.path)}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()[:16]


class CollectFailed(DataError):
    """Tables were written, but some finished runs did not verify (named in the message)."""


def _verified(rd: RunDir) -> str | None:
    """None when every artefact matches DONE's record; else one line naming the first bad file, after
    marking its stage for recomputation (when no other process holds the run)."""
    problems = rd.verify()
    if not problems:
        return None
    rel, problem = problems[0]
    message = f"{rd.path / rel}: {problem}"
    with rd.lock() as owned:
        if owned:
            what = rd.invalidate(rel)
            rd.mark_failed(f"{message}; rerun the sweep to recompute {what}")
            return f"{message}; rerun the sweep to recompute {what}"
    return f"{message} (the run is in use; collect again when it finishes)"


def _read_evals(rd: RunDir, row: dict) -> tuple[list[pd.DataFrame], list[pd.DataFrame]]:
    """Each requested evaluation's metric and per-query rows, tagged with the run's columns."""
    metrics, per_query = [], []
    for name, e in rd.evals().items():
        folder = rd.path / "eval" / name / e["key"]
        try:
            m = pd.read_parquet(folder / "metrics.parquet")
            q = pd.read_parquet(folder / "per_query.parquet") if (folder / "per_query.parquet").exists() else None
        except Exception as err:  # noqa: BLE001 - a damaged table that DONE did not record
            raise DataError(folder / "metrics.parquet", f"unreadable ({type(err).__name__}); delete the folder and "
                                                        "rerun the sweep to recompute it") from None
        for key in ("run_id", "sweep", "variant", *results_schema.axes()):
            m.insert(len(m.columns), key, row.get(key))
        metrics.append(m)
        if q is not None and len(q):
            per_query.append(q.assign(run_id=rd.id))
    return metrics, per_query


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
    raw = {rd.id: _run_config(rd.path / "config.yaml") for rd in runs_found}
    _check_one_generation(root, raw)
    rows, configs = [], {}
    for rd in runs_found:
        cfg = load(raw[rd.id], paths=False)  # a root moved away from its training files still collects
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
    frames, queries, corrupt = [], [], []
    for rd, row in zip(runs_found, rows):
        if row["status"] != "done":
            continue
        bad = _verified(rd)
        if bad is None:
            try:
                m, q = _read_evals(rd, row)
            except DataError as err:
                bad = str(err)
            else:
                frames += m
                queries += q
                continue
        row.update(status="failed", error=bad)
        corrupt.append(bad)
    if corrupt:  # the tables record the state after marking, so a rerun's collect is not skipped
        inputs = fingerprint(runs_found)
    runs = pd.DataFrame(rows)
    results = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    study = _study(raw)
    with waiting_lock(root / ".collect.lock"):  # one writer of the tables at a time
        for stale in root.glob(TMP_GLOB):  # left by a collect that was killed
            stale.unlink()
        results_schema.write_table(root / "runs.parquet", runs, "runs", inputs)
        write_csv(root / "runs.csv", runs)
        fault_point("during_collect")
        if queries:
            write_parquet(root / "per_query.parquet", pd.concat(queries, ignore_index=True))
        else:
            (root / "per_query.parquet").unlink(missing_ok=True)
        results_schema.write_table(root / "results.parquet", results, "results", inputs,
                                   extra={"study": study, "resource_levels": _resource_levels(raw)})
    if not quiet:
        if hidden:
            print(f"note: runs with the same axes and seed differ in {', '.join(hidden)} (not on their command "
                  "lines: an edited default or a newer version); kept apart as conditions in `variant`")
        counts = runs.status.value_counts().to_dict() if len(runs) else {}
        print(f"{root}: {len(runs)} runs {counts}; results.parquet has {len(results)} rows")
        for _, r in runs[runs.status == "failed"].iterrows() if len(runs) else []:
            print(f"  failed {r.run_id}: {r.error}")
    if corrupt:
        raise CollectFailed(root, f"{len(corrupt)} finished run(s) did not verify, left out of the tables: {corrupt[0]}")
    return runs, results


def _resource_levels(raw: dict) -> dict[str, str]:
    """Language -> resource level of the synthetic benchmark (the one fact the analysis needs that no
    metric row carries), from the first run config that has one."""
    for c in raw.values():
        if c.get("synthetic") is not None and c.synthetic.get("languages"):
            return {str(lang.code): str(lang.resource) for lang in c.synthetic.languages}
    return {}


def _run_config(path: Path):
    """A run's stored config; a damaged one is one line naming ``file:line``."""
    import yaml

    try:
        return OmegaConf.load(path)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else path
        raise DataError(where, f"not valid YAML ({getattr(err, 'problem', None) or type(err).__name__}); "
                               "delete the run's folder and rerun the sweep to redo it") from None


def _study(raw: dict) -> dict | None:
    """The study declaration (primary hypothesis, seeds fixed in advance) the runs share, if any."""
    found = {json.dumps(OmegaConf.to_container(c.get("study"), resolve=True), sort_keys=True)
             for c in raw.values() if c.get("study") is not None}
    return json.loads(next(iter(found))) if len(found) == 1 else None


def main(argv=None) -> None:
    args = argv if argv is not None else sys.argv[1:]
    if len(args) != 1:
        print("usage: python -m hybrid_sweep.collect <results_root>", file=sys.stderr)
        sys.exit(2)
    if not Path(args[0]).is_dir():
        print(f"error: {args[0]}: no such results root", file=sys.stderr)
        sys.exit(2)
    if not (Path(args[0]) / "runs").is_dir():  # not a results root: write no tables into it
        print(f"error: {args[0]}: not a results root (no runs/ folder)", file=sys.stderr)
        sys.exit(2)
    try:
        collect(Path(args[0]))
    except HybridSweepError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
