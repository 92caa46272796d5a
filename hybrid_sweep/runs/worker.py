"""Execute one run in its own process: ``python -m hybrid_sweep.runs.worker <run_dir>``.

Stages (each skipped when its output is already complete, so a killed run resumes):
  train     -> checkpoints/ (resumable), model/, train_log.jsonl, train_summary.json (when train.enabled)
  evaluate  -> eval/<name>/<eval_key>/{metrics,per_query}.parquet, runs/, qrels/ for every entry of
               evals.json (every entry ever requested of the run; a finished one is not redone)
Writes stages.json (wall time per stage). User errors print one line and exit 2. An optional second
argument runs only ``train`` (what torchrun launches on every rank) or only ``evaluate`` (under torchrun
too when an entry uses the embedding store: every rank encodes its corpus shards, rank 0 writes). The worker
dies with the process that started it (parent-death signal), so a killed sweep leaves no orphan.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path

from omegaconf import OmegaConf

from hybrid_sweep.cli import quiet_libraries, user_errors
from hybrid_sweep.errors import HybridSweepError
from hybrid_sweep.faults import fault_point
from hybrid_sweep.io import storage_error, write_text
from hybrid_sweep.runs.store import embeddings_dir


def _train_stage(cfg, run_dir: Path, tracker) -> Path | None:
    if not cfg.train.enabled:
        return None
    if not (run_dir / "train_summary.json").exists():
        from hybrid_sweep.training import distributed as dist
        from hybrid_sweep.training.trainer import train

        if cfg.pretrain.enabled:
            from hybrid_sweep.encoders import from_folder
            from hybrid_sweep.runs.store import cached_stage, stage_cache_dir
            from hybrid_sweep.training.pretrain import continued_mlm

            folder = cached_stage(stage_cache_dir(run_dir.parent.parent, "pretrain", cfg),  # <results_root>/cache/...
                                  lambda out: continued_mlm(cfg, out))
            cfg = OmegaConf.merge(cfg, {"encoder": from_folder(cfg.encoder, folder / "model")})
        summary = train(cfg, run_dir, tracker)
        if dist.rank() == 0:
            write_text(run_dir / "train_summary.json", json.dumps(summary, indent=2))
            if not cfg.train.keep_checkpoints:  # finished: the resumable state is no longer needed
                shutil.rmtree(run_dir / "checkpoints", ignore_errors=True)
    return run_dir / "model"


def _eval_stage(cfg, run_dir: Path, model_dir: Path | None, tracker) -> None:
    from hybrid_sweep.config.load import load_entry
    from hybrid_sweep.encoders import build_encoder, from_folder
    from hybrid_sweep.evaluation.pipeline import run_evaluation
    from hybrid_sweep.evaluation.sharded import rank_group
    from hybrid_sweep.runs.store import RunDir

    rd, encoder = RunDir(run_dir.parent.parent, run_dir.name), None
    train_languages = _train_languages(cfg, run_dir)
    with rank_group(run_dir / "eval_ranks") as plan:  # under torchrun: each rank encodes its corpus shards
        for name, entry in rd.evals().items():
            out = rd.eval_dir(name, entry["key"])
            if (out / "metrics.parquet").exists():
                continue
            view = cfg.copy()  # the run's typed config with this entry, typed by its kind, as `eval`
            OmegaConf.set_struct(view, False)
            view.eval = load_entry(entry["entry"], f"evals.{name}")
            if model_dir is not None and encoder is None:
                encoder = build_encoder(from_folder(cfg.encoder, model_dir))
            result = run_evaluation(view, out, encoder, train_languages, embeddings_dir(run_dir.parent.parent),
                                    plan)  # no model dir: the configured (zero-shot) encoder
            if result is None:  # a rank other than 0: its shards are stored, rank 0 writes the results
                continue
            avg = result.metrics[result.metrics.query_lang == "avg"]
            tracker.summary({f"{r.benchmark}/{r.setting}/{r.metric}": r.value for r in avg.itertuples()})
            fault_point("after_eval")


def _train_languages(cfg, run_dir: Path) -> list[str] | None:
    """The fine-tuning languages (seen / unseen breakdown): data.languages, else what training used."""
    if not cfg.train.enabled:
        return None
    if cfg.data.languages and cfg.data.n_languages is None:  # else drawn from the pool: the summary
        return list(cfg.data.languages)
    summary = run_dir / "train_summary.json"
    return json.loads(summary.read_text()).get("languages") if summary.exists() else None


ERROR_FILE = "error.txt"  # the one-line reason a worker failed, read by the sweep process


def preload() -> None:
    """Import what a run needs, so forked workers start without paying for it again and run the code the
    sweep started with even if the package is edited meanwhile."""
    import sentence_transformers  # noqa: F401

    import hybrid_sweep.encoders.e5_q4  # noqa: F401
    import hybrid_sweep.evaluation.pipeline  # noqa: F401
    import hybrid_sweep.tracking  # noqa: F401
    import hybrid_sweep.training.pretrain  # noqa: F401
    import hybrid_sweep.training.trainer  # noqa: F401


def run_forked(run_dir: str, env: dict, only: str | None = None) -> None:
    """Entry point of a forked worker process (``multiprocessing`` 'fork' context)."""
    os.environ.clear()
    os.environ.update(env)
    sys.argv = [sys.argv[0], run_dir] + ([only] if only else [])
    try:
        run.__wrapped__(Path(run_dir))  # not `run`: the sweep prints the one line from error.txt itself
    except HybridSweepError:
        sys.exit(2)


def die_with_parent() -> None:
    """Ask the kernel to end this process when its parent dies (Linux ``PR_SET_PDEATHSIG``); elsewhere
    a no-op. A worker whose sweep was killed must not go on training a run nobody will mark done."""
    import ctypes
    import signal

    parent = os.getppid()
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGKILL), 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)


@user_errors
def run(run_dir: Path) -> None:
    die_with_parent()
    try:
        _run(run_dir)
    except BaseException as err:
        storage = storage_error(err, run_dir)  # disk full, read-only, denied: one line, no traceback
        if not isinstance(err, SystemExit):
            message = str(storage or err).splitlines()[0] if str(err) else type(err).__name__
            reason = f"{message}\n" if storage or isinstance(err, HybridSweepError) else f"{type(err).__name__}: {message}\n"
            try:
                write_text(run_dir / ERROR_FILE, reason)
            except OSError:
                pass  # no room even for the reason: the sweep reports the exit code instead
        if storage is not None:
            raise storage from None
        raise


def _run(run_dir: Path) -> None:
    quiet_libraries()
    from hybrid_sweep.tracking import make_tracker
    from hybrid_sweep.training import distributed as dist

    from hybrid_sweep.config import load

    cfg = load(OmegaConf.load(run_dir / "config.yaml"))  # the typed, checked config: no default restated here
    stages = json.loads((run_dir / "stages.json").read_text()) if (run_dir / "stages.json").exists() else {}
    only = sys.argv[2] if len(sys.argv) > 2 else None  # "train" (under torchrun) or "evaluate" (the rest)
    rank, _ = dist.init_from_env()
    tracker = make_tracker(cfg, run_dir, rank)
    failed = True
    try:
        for name, fn in (("train", lambda: _train_stage(cfg, run_dir, tracker)),
                         ("evaluate", lambda: _eval_stage(cfg, run_dir, _model_dir(cfg, run_dir), tracker))):
            if (only == "train" and name != "train") or (only == "evaluate" and name == "train"):
                continue
            start = time.perf_counter()
            fn()
            stages[f"{name}_s"] = stages.get(f"{name}_s", 0.0) + time.perf_counter() - start
            if rank == 0:
                write_text(run_dir / "stages.json", json.dumps(stages))
        failed = False
    finally:
        tracker.finish(failed)


def _model_dir(cfg, run_dir: Path) -> Path | None:
    return run_dir / "model" if cfg.train.enabled else None


if __name__ == "__main__":
    run(Path(sys.argv[1]))
