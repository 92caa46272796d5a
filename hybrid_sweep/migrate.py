"""Move a results root written by config schema 2 (evaluations inside the run id) to schema 3 (the run
id is the checkpoint key; each evaluation keyed apart), recomputing nothing:

    python -m hybrid_sweep.migrate <results_root>

Each schema-2 run folder is renamed to its checkpoint key; its ``eval/<name>/`` folders become
``eval/<name>/<eval_key>/`` and are recorded in ``evals.json``; ``config.yaml`` is stamped with the new
schema and ``artefacts.json`` / ``DONE`` written anew. Schema-2 runs that differed only in their
evaluations are one checkpoint now: the first keeps its folder, the others give it the evaluations it
lacks, and what remains of them (their identical retraining) is moved to ``runs.schema2/`` - nothing is
deleted. Then run ``python -m hybrid_sweep.collect <results_root>``.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

from omegaconf import OmegaConf

from hybrid_sweep.cli import EXIT_USER_ERROR
from hybrid_sweep.config import CONFIG_SCHEMA_VERSION
from hybrid_sweep.errors import ConfigError, HybridSweepError
from hybrid_sweep.io import write_text
from hybrid_sweep.runs.store import STORE_FILE, RunDir, requested_evals, run_id

OLD_TABLES = ("metrics.parquet", "per_query.parquet")  # schema 2's per-run merged tables (collect reads evals now)


def _load(folder: Path):
    from hybrid_sweep.config import load

    raw = OmegaConf.load(folder / "config.yaml")
    raw.schema_version = CONFIG_SCHEMA_VERSION
    try:
        return load(raw)
    except HybridSweepError as err:
        raise ConfigError(f"{folder}/config.yaml", f"cannot be read by schema {CONFIG_SCHEMA_VERSION}: {err}") from None


def _move_evals(src: Path, target: RunDir, wanted: dict) -> dict:
    """Move src/eval/<name>/ (finished ones) to target/eval/<name>/<key>/; returns the entries moved."""
    moved = {}
    for name, entry in wanted.items():
        old = src / "eval" / name
        if not (old / "metrics.parquet").exists():
            continue
        new = target.eval_dir(name, entry["key"])
        if (new / "metrics.parquet").exists() or name in target.evals():
            continue
        new.mkdir(parents=True, exist_ok=True)
        for item in list(old.iterdir()):
            if item.name != entry["key"]:
                shutil.move(str(item), str(new / item.name))
        moved[name] = entry
    return moved


def migrate(root: Path) -> dict:
    """Migrate ``root`` in place; returns counts."""
    root = Path(root)
    marker = root / "runs" / STORE_FILE
    found = json.loads(marker.read_text()).get("schema_version") if marker.exists() else None
    if found == CONFIG_SCHEMA_VERSION:
        return {"runs": 0, "checkpoints": 0, "merged": 0}
    if found != "2":
        raise ConfigError("results_root", f"{root}: holds runs of schema {found or '1 or none'}; only schema 2 migrates")
    folders = [p for p in sorted((root / "runs").iterdir()) if p.is_dir() and (p / "config.yaml").exists()]
    busy = [p.name for p in folders if RunDir(root, p.name).locked_by_other()]
    if busy:
        raise ConfigError("results_root", f"{root}: run {busy[0]} is in use; migrate when no sweep runs")
    plan = [(p, _load(p)) for p in folders]
    targets: dict[str, RunDir] = {}
    counts = {"runs": len(plan), "checkpoints": 0, "merged": 0}
    spare = root / "runs.schema2"
    for folder, cfg in plan:
        rid, wanted = run_id(cfg), requested_evals(cfg)
        was_done = (folder / "DONE").exists()
        if rid not in targets and not (root / "runs" / rid).exists():
            staging = root / "runs" / f".{rid}.migrating"
            folder.rename(staging)
            for name in OLD_TABLES:
                (staging / name).unlink(missing_ok=True)
            (staging / "DONE").unlink(missing_ok=True)
            for name in list(wanted):  # eval/<name>/ -> eval/<name>/<key>/ inside the same folder
                old = staging / "eval" / name
                if (old / "metrics.parquet").exists():
                    tmp = staging / "eval" / f".{name}.old"
                    old.rename(tmp)
                    (staging / "eval" / name).mkdir()
                    tmp.rename(staging / "eval" / name / wanted[name]["key"])
                else:
                    wanted.pop(name)
            staging.rename(root / "runs" / rid)
            target = targets[rid] = RunDir(root, rid)
            write_text(target.path / "config.yaml", OmegaConf.to_yaml(cfg, resolve=True))
            target.request(wanted)
            counts["checkpoints"] += 1
        else:  # another schema-2 run of the same checkpoint: give its evaluations, keep the rest aside
            target = targets.setdefault(rid, RunDir(root, rid))
            target.request(_move_evals(folder, target, wanted))
            spare.mkdir(exist_ok=True)
            folder.rename(spare / folder.name)
            counts["merged"] += 1
        if was_done and target.trained:
            target.mark_done()
    write_text(marker, json.dumps({"schema_version": CONFIG_SCHEMA_VERSION}) + "\n")
    return counts


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1 or not Path(args[0]).is_dir():
        print("usage: python -m hybrid_sweep.migrate <results_root>", file=sys.stderr)
        sys.exit(EXIT_USER_ERROR)
    try:
        c = migrate(Path(args[0]))
    except HybridSweepError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(EXIT_USER_ERROR)
    print(f"{args[0]}: {c['runs']} schema-2 runs -> {c['checkpoints']} checkpoints ({c['merged']} duplicate "
          f"trainings moved to runs.schema2/); nothing recomputed. Next: python -m hybrid_sweep.collect {args[0]}")


if __name__ == "__main__":
    main()
