"""Kill -9 of the whole sweep process tree at several points, or a file system that refuses a write, then
the same command again: the final results equal those of an uninterrupted sweep, and no finished run is
recomputed."""

import os
import resource
import subprocess
import sys

import pandas as pd
import pytest

from tests.conftest import ROOT

SWEEP = ["-m", "train.seed=0,1", "train.max_steps=4", "train.save_every=1", "train.batch_size=8", "train.eval_every=0",
         "encoder.progress=false", "evals.synthetic.subset.articles=2", "analyze=false"]
VALUE_COLS = ["run_id", "benchmark", "setting", "query_lang", "doc_lang", "metric", "value", "n_queries"]


def sweep(root, fault=None, max_file_bytes=None):
    env = dict(os.environ)
    env.pop("HYBRID_SWEEP_FAULT", None)
    if fault:
        env["HYBRID_SWEEP_FAULT"] = fault

    def limit_file_size():  # the kernel refuses any write past this size (EFBIG), as a full disk would
        resource.setrlimit(resource.RLIMIT_FSIZE, (max_file_bytes, max_file_bytes))

    proc = subprocess.run([sys.executable, "-m", "hybrid_sweep", *SWEEP, f"results_root={root}"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600, start_new_session=True,
                          preexec_fn=limit_file_size if max_file_bytes else None)
    return proc, proc.stdout + proc.stderr


def table(root):
    r = pd.read_parquet(root / "results.parquet")[VALUE_COLS]
    return r.sort_values(VALUE_COLS[:6]).reset_index(drop=True)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    root = tmp_path_factory.mktemp("reference")
    proc, log = sweep(root)
    assert proc.returncode == 0, log[-3000:]
    return table(root)


@pytest.mark.parametrize("point", ["after_checkpoint", "during_eval", "after_eval", "during_write:metrics.parquet",
                                   "before_done", "during_collect"])
def test_kill_anywhere_then_rerun(tmp_path, reference, point):
    killed, _ = sweep(tmp_path, fault=point)
    assert killed.returncode == -9  # the whole tree died
    done_before = {p.parent.name for p in tmp_path.glob("runs/*/DONE")}
    assert len(done_before) < 2 or point == "during_collect"
    rerun, log = sweep(tmp_path)
    assert rerun.returncode == 0, log[-3000:]
    assert log.count("done, skipped") == len(done_before)  # finished runs are not recomputed
    pd.testing.assert_frame_equal(table(tmp_path), reference)
    runs = pd.read_parquet(tmp_path / "runs.parquet")
    assert list(runs.status) == ["done", "done"]
    assert not list(tmp_path.rglob(".*.tmp"))  # a killed writer's temporary file is cleaned up


def test_refused_write_fails_the_run_in_one_line_then_rerun_completes(tmp_path, reference):
    """A file system that refuses to grow a file (RLIMIT_FSIZE: the same error path as a full disk or a
    quota) while the model is saved: each run is FAILED with one line naming the run folder and the
    reason, nothing is DONE, the sweep itself finishes; the same command later completes every run."""
    full, log = sweep(tmp_path, max_file_bytes=100_000)
    assert full.returncode == 1, log[-3000:]  # a failed run does not stop the sweep; the exit code says it
    assert log.strip().splitlines()[-1].startswith("error: 2 run(s) failed")
    assert not list(tmp_path.glob("runs/*/DONE"))
    failed = sorted(tmp_path.glob("runs/*/FAILED"))
    assert len(failed) == 2
    for marker in failed:
        assert marker.read_text() == f"run {marker.parent.name}: {marker.parent}: cannot write (File too large)\n"
    assert "Traceback" not in log
    runs = pd.read_parquet(tmp_path / "runs.parquet")
    assert list(runs.status) == ["failed", "failed"]
    rerun, log = sweep(tmp_path)
    assert rerun.returncode == 0, log[-3000:]
    assert log.count("resuming (failed)") == 2
    pd.testing.assert_frame_equal(table(tmp_path), reference)
    assert oct((tmp_path / "results.parquet").stat().st_mode & 0o777) == oct(0o666 & ~_umask())


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
