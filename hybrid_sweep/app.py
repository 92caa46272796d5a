"""``python -m hybrid_sweep``: run one run (train, then evaluate on every configured benchmark); with
``-m`` and ``+sweep=NAME`` a sweep. Each run is content-addressed in the run store: a finished run is
skipped, an interrupted one resumes, a failed one is retried; the run itself executes in a child
process (``torchrun`` when ``resources.nproc_per_node`` > 1) so memory is freed between runs.
``plan=true`` lists the runs with their status and runs nothing.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import platform
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from hybrid_sweep.callbacks import preload_end_of_sweep
from hybrid_sweep.cli import CONF_DIR, EXIT_USER_ERROR, user_errors
from hybrid_sweep.config import CONFIG_SCHEMA_VERSION, load
from hybrid_sweep.config.load import typed_section
from hybrid_sweep.config.stages import ResourcesConfig
from hybrid_sweep.errors import ConfigError, HybridSweepError
from hybrid_sweep.faults import fault_point
from hybrid_sweep.io import TMP_GLOB, write_text
from hybrid_sweep.runs.store import RunDir, check_store_version, config_hash, requested_evals, run_id
from hybrid_sweep.runs.worker import ERROR_FILE, preload, run_forked

log = logging.getLogger("hybrid_sweep")
VERSIONED = ("hybrid_sweep", "torch", "transformers", "sentence-transformers", "hydra-core")


class RunFailed(HybridSweepError):
    pass


def validate(cfg: DictConfig) -> DictConfig:
    """The typed config: every declared check runs here, before anything is written, and the languages
    no configured source or pooled benchmark can hold (``check_languages``, ``check_eval_languages``);
    what only reading the data can tell (a file source's languages) is checked in the worker. The sweep
    runs this for every job before launching any (hydra_plugins/hybrid_sweep_sweeper)."""
    from hybrid_sweep.data.benchmark_loading import check_eval_languages
    from hybrid_sweep.data.corpus_loading import check_languages

    cfg = load(cfg)
    check_languages(cfg)
    check_eval_languages(cfg)
    return cfg


def _overrides() -> list[str]:
    try:
        return list(HydraConfig.get().overrides.task)
    except ValueError:
        return []


def _in_multirun() -> bool:
    try:
        return HydraConfig.get().mode == RunMode.MULTIRUN
    except ValueError:
        return False


def _run_info(cfg, rid: str, wall: float) -> dict:
    versions = {}
    for pkg in VERSIONED:
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = None
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                                cwd=Path(__file__).parent, timeout=10).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        commit = None
    return {"run_id": rid, "schema_version": CONFIG_SCHEMA_VERSION, "sweep": cfg.sweep_name, "overrides": " ".join(_overrides()),
            "config_hash": config_hash(OmegaConf.to_container(cfg, resolve=True)), "git_commit": commit,
            "versions": json.dumps(versions), "device": cfg.resources.device_label or platform.node(),
            "wall_s": wall}  # axis values are derived from config.yaml by collect, not stored twice



def _child_env(cfg) -> dict:
    """The run's environment: a free GPU slot (runs/gpu_slots.py), torchrun's multi-node rendezvous from
    SLURM, per-rank logs teed live, and the thread count."""
    from hybrid_sweep.runs import gpu_slots

    env, res = dict(os.environ), typed_section(cfg.resources, ResourcesConfig, "resources")
    per = int(res.nproc_per_node)
    if res.gpu_slots:
        env = gpu_slots.slot_env(env, per, Path(res.gpu_lock_dir) if res.gpu_lock_dir else None)
    env.update(gpu_slots.slurm_rendezvous(env, int(res.nnodes)))
    if per > 1 or int(res.nnodes) > 1:
        env.update(PYTHONUNBUFFERED="1", PET_TEE=env.get("PET_TEE", "3"))  # each rank's output, prefixed, live
    if res.threads:
        env["OMP_NUM_THREADS"] = str(res.threads)
    return env


def _failure(rd: RunDir, fallback: str) -> RunFailed:
    reason = rd.path / ERROR_FILE
    message = reason.read_text().strip().splitlines()[-1] if reason.exists() else fallback
    return RunFailed(f"run {rd.id}: {message}")


def _execute(cfg, rd: RunDir) -> None:
    """Run the worker in a child process: forked from this (pre-imported) process by default, a fresh
    interpreter with ``resources.start=spawn``, and ``torchrun`` for multi-process training (and for the
    evaluation when an entry uses the embedding store: each rank encodes its share of the corpora)."""
    (rd.path / ERROR_FILE).unlink(missing_ok=True)
    env, worker = _child_env(cfg), [sys.executable, "-m", "hybrid_sweep.runs.worker", str(rd.path)]
    shard = node_rank() == 0 and _sharded_eval(cfg, rd)
    if _distributed(cfg) or shard:  # torchrun trains (every node), then node 0 evaluates
        evaluate = _torchrun(cfg, rd, "evaluate") if shard else worker + ["evaluate"]
        commands = ([_torchrun(cfg, rd)] if _distributed(cfg) else []) + ([evaluate] if node_rank() == 0 else [])
    elif cfg.resources.start == "fork" and hasattr(os, "fork"):
        preload()
        proc = multiprocessing.get_context("fork").Process(target=run_forked, args=(str(rd.path), env))
        proc.start()
        proc.join()
        if proc.exitcode != 0:
            raise _failure(rd, f"worker exited with code {proc.exitcode}")
        return
    else:
        commands = [worker]
    for cmd in commands:
        live = cmd[2] == "torch.distributed.run"  # ranks' logs stream as they come (teed, rank-prefixed)
        proc = subprocess.run(cmd, env=env, stderr=None if live else subprocess.PIPE, text=True)
        if proc.returncode != 0:
            if not live and not (rd.path / ERROR_FILE).exists():
                sys.stderr.write(proc.stderr[-4000:])
            raise _failure(rd, f"exit code {proc.returncode}")


def _distributed(cfg) -> bool:
    res = cfg.resources
    return cfg.train.enabled and (int(res.nproc_per_node) > 1 or int(res.nnodes) > 1)


def _sharded_eval(cfg, rd: RunDir) -> bool:
    """Evaluation under torchrun on node 0's ``nproc_per_node`` ranks, each encoding its share of the
    corpora: when an entry of the run goes through the embedding store (evaluation/sharded.py)."""
    return int(cfg.resources.nproc_per_node) > 1 and any(  # entries of the kinds that have the store
        bool(e["entry"].get("embedding_store")) for e in rd.evals().values())


def _torchrun(cfg, rd: RunDir, stage: str = "train") -> list[str]:
    alone = ["--standalone", "--nnodes=1"] if stage == "evaluate" else []  # node 0 alone, a free port
    return [sys.executable, "-m", "torch.distributed.run", *alone,
            f"--nproc_per_node={int(cfg.resources.nproc_per_node)}", "-m", "hybrid_sweep.runs.worker", str(rd.path),
            stage]


def node_rank() -> int:
    """This node's index in a multi-node SLURM job (0 elsewhere)."""
    return int(os.environ.get("SLURM_NODEID", "0") or 0)


def _follow(cfg, rd: RunDir, wait_s: float = 600.0) -> str:
    """A node other than 0 of a multi-node run: node 0 owns the run folder (lock, config.yaml, markers,
    evaluation); this node waits for its config.yaml and joins the torchrun rendezvous for training."""
    deadline = time.monotonic() + wait_s
    while not (rd.path / "config.yaml").exists():
        if time.monotonic() > deadline:
            raise RunFailed(f"run {rd.id}: node {node_rank()}: node 0 did not start the run within {wait_s:.0f} s")
        time.sleep(1.0)
    proc = subprocess.run(_torchrun(cfg, rd), env=_child_env(cfg))
    if proc.returncode != 0:
        raise RunFailed(f"run {rd.id}: node {node_rank()}: torchrun exit code {proc.returncode}")
    return "follower"


def run_one(cfg: DictConfig) -> str:
    """Run (or skip) the run that ``cfg`` describes; returns its final status. The run id is the
    checkpoint key: a run trained before is only evaluated on the entries it lacks."""
    cfg = validate(cfg)
    root, rid = Path(cfg.results_root), run_id(cfg)
    rd, wanted = RunDir(root, rid), requested_evals(cfg)
    axes = " ".join(_overrides()) or "(defaults)"
    if cfg.plan:
        status = rd.status(wanted=wanted)
        print(f"{rid}  {status:<11}  {axes}")
        return status
    if rd.complete(wanted):
        log.info("%s done, skipped (%s)", rid, axes)
        return "done"
    if _in_multirun():  # this sweep has work: the code its end runs is fixed now, not when it ends
        preload_end_of_sweep()
    if _distributed(cfg) and int(cfg.resources.nnodes) > 1 and node_rank() > 0:
        return _follow(cfg, rd)
    try:
        rd.path.parent.mkdir(parents=True, exist_ok=True)
        check_store_version(root)
        rd.path.mkdir(exist_ok=True)
    except OSError as err:
        raise ConfigError("results_root", f"cannot write to {root} ({err.strerror or type(err).__name__})") from None
    with rd.lock() as owned:
        if not owned:
            log.info("%s running in another process, skipped (%s)", rid, axes)
            return "running"
        if rd.complete(wanted):
            return "done"
        return _run_locked(cfg, rd, wanted, axes)


def _run_locked(cfg, rd: RunDir, wanted: dict, axes: str) -> str:
    """Holding the run's lock: repair what does not match DONE's record, record the requested
    evaluations, run the stages that are missing (a trained checkpoint is never trained again)."""
    previous = rd.status(check_lock=False)  # interrupted or failed: its stages resume from what they left on disk
    for rel, problem in rd.verify():
        log.warning("%s/%s: %s; recomputing %s", rd.id, rel, problem, rd.invalidate(rel))
    for stale in rd.path.rglob(TMP_GLOB):  # temporary files of a killed writer; we hold the lock
        stale.unlink()
    write_text(rd.path / "config.yaml", OmegaConf.to_yaml(cfg, resolve=True))
    rd.request(wanted)
    (rd.path / "DONE").unlink(missing_ok=True)  # not complete until the new evaluations are
    what = "starting" if previous == "pending" else ("evaluating" if rd.trained and previous == "done"
                                                     else f"resuming ({previous})")
    log.info("%s %s (%s)", rd.id, what, axes)
    start = time.perf_counter()
    try:
        _execute(cfg, rd)
    except RunFailed as err:
        rd.mark_failed(str(err))
        raise
    if not (rd.path / "run.json").exists():  # the run's first completion: how it was made
        write_text(rd.path / "run.json", json.dumps(_run_info(cfg, rd.id, time.perf_counter() - start), indent=2))
    fault_point("before_done")
    rd.mark_done()
    log.info("%s done in %.1f s", rd.id, time.perf_counter() - start)
    return "done"


@hydra.main(config_path=CONF_DIR, config_name="config", version_base="1.3")
@user_errors
def main(cfg: DictConfig) -> str | None:
    try:
        return run_one(cfg)
    except RunFailed as err:
        if _in_multirun():  # the sweep goes on; collect lists the failure and a rerun retries it
            log.error("%s", err)
            return "failed"
        print(f"error: {err}", file=sys.stderr)
        sys.exit(EXIT_USER_ERROR)
