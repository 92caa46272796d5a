"""The sweep app: composition of every shipped sweep, a real small multirun, skip / resume / retry,
two concurrent sweeps on one results root, and the submitit_local launcher."""

import json
import os
import re
import signal
import subprocess
import sys

import pandas as pd
import pytest

from tests.conftest import ROOT

QUICK = ["train.max_steps=2", "train.batch_size=8", "train.eval_every=0", "encoder.progress=false",
         "evals.synthetic.subset.articles=2", "encoder.tiny.hidden=32",
         "encoder.tiny.intermediate=64"]
# Runs per shipped sweep = the product of its sweeper params' value counts (conf/sweep/<name>.yaml):
SWEEP_SIZES = {"language_pairs": 5 * 3,        # sampler.n_pairs 1,2,4,8,15 (unordered) x train.seed 0,1,2
               "mix_ratio": 7 * 3,             # +ratio: the 7 presets of conf/ratio x 3 seeds
               "train_languages": 5 * 3,       # data.n_languages 2..6 of 6 (drawn per seed) x 3 seeds
               "encoders": 7 * 3,              # 7 encoder presets x sampler mono,cross,hybrid
               "encoders_offline": 2 * 3,      # tiny, me5_small_q4 x 3 samplers
               "seeds": 5,                     # train.seed 0..4
               "low_resource_pretrain": 3 * 3,  # pretrain.n_low_resource 0..2 x 3 seeds
               "low_resource_pretrain_flores": 4 * 3,  # pretrain.n_low_resource 0,1,2,4 x 3 seeds
               "synthetic_languages": 5 * 3,   # +langs syn2..syn6 x 3 seeds
               "synthetic_languages_ict": 5 * 3,  # data.n_languages 2,3,4,5,7 of MLQA-R (fixed order) x 3 seeds
               "real_rq1": 3 * 3,              # sampler.n_pairs 1,5,21 x 3 seeds (me5_small_q4, MLQA-R)
               "real_rq2": 3 * 3,              # +ratio mono,hybrid,cross x 3 seeds (me5_small_q4, MLQA-R)
               "real_rq3": 3 * 3}              # data.n_languages 2,4,7 of MLQA-R's 7 (drawn per seed) x 3 seeds
RUN_LINE = re.compile(r"^([0-9a-f]{12})  (\w+)\s+(.*)$")


def app(*args, root, timeout=600, wait=True, env=None):
    cmd = [sys.executable, "-m", "hybrid_sweep", *args, f"results_root={root}"]
    if not wait:
        return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                start_new_session=True)
    res = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=env,
                         start_new_session=True)  # a fault point kills its own process group, not pytest
    res.log = res.stdout + res.stderr  # Hydra's job logging goes to stdout, user errors to stderr
    return res


def plan(*args, root):
    res = app("-m", *args, "plan=true", root=root)
    assert res.returncode == 0, res.log[-2000:]
    return [m.groups() for m in map(RUN_LINE.match, res.stdout.splitlines()) if m]


def test_every_sweep_is_shipped_and_tested():
    assert {p.stem for p in (ROOT / "conf" / "sweep").glob("*.yaml")} == set(SWEEP_SIZES)


@pytest.mark.parametrize("name", sorted(SWEEP_SIZES))
def test_sweep_composition(tmp_path, name):
    runs = plan(f"+sweep={name}", root=tmp_path)
    assert len(runs) == SWEEP_SIZES[name]
    assert len({rid for rid, _, _ in runs}) == SWEEP_SIZES[name]  # every axis value changes the run id
    assert all(status == "pending" for _, status, _ in runs)
    assert not (tmp_path / "runs").exists()  # plan writes no run


def test_semantic_hash_ignores_output_keys(tmp_path):
    a = plan("train.seed=0", root=tmp_path / "a")
    b = plan("train.seed=0", "encoder.progress=true", "resources.threads=1", root=tmp_path / "b")
    assert a[0][0] == b[0][0]
    assert plan("train.seed=1", root=tmp_path)[0][0] != a[0][0]


def test_two_spellings_of_one_mix_plan_one_run(tmp_path):
    assert plan("sampler=mono", root=tmp_path)[0][0] == plan("+ratio=mono", root=tmp_path)[0][0]


def test_multirun_collect_rerun_skips(tmp_path):
    res = app("-m", "train.seed=0,1", *QUICK, root=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    results = pd.read_parquet(tmp_path / "results.parquet")
    assert set(results.seed) == {0, 1} and set(results.setting) == {"mono", "cross", "multi"}
    runs = pd.read_parquet(tmp_path / "runs.parquet")
    assert list(runs.status) == ["done", "done"]
    assert runs.train_langs.str.count(",").eq(5).all() and runs.n_train_langs.eq(6).all()
    for _, r in runs.iterrows():  # the resolved pair list of each run, as its trainer recorded it
        summary = json.loads((tmp_path / "runs" / r.run_id / "train_summary.json").read_text())
        assert r.pairs.split(",") == [f"{x}-{y}" for x, y in summary["pairs"]] and len(summary["pairs"]) == 30
    tables = ("runs/*/DONE", "results.parquet", "runs.parquet", "analysis/report.md")
    stamps = {p: p.stat().st_mtime_ns for pattern in tables for p in tmp_path.glob(pattern)}
    assert len(stamps) == 5
    again = app("-m", "train.seed=0,1", *QUICK, root=tmp_path)
    assert again.returncode == 0 and again.log.count("done, skipped") == 2 and "starting" not in again.log
    assert "unchanged since the last collect" in again.log and "(results and analysis code unchanged)" in again.log
    assert stamps == {p: p.stat().st_mtime_ns for pattern in tables for p in tmp_path.glob(pattern)}  # nothing rewritten
    from hybrid_sweep.analysis import CODE_VERSION
    from hybrid_sweep.callbacks import ANALYSIS_INPUTS, analysis_if_changed

    marker = tmp_path / "analysis" / ANALYSIS_INPUTS
    assert json.loads(marker.read_text())["code"] == CODE_VERSION
    marker.write_text(json.dumps({**json.loads(marker.read_text()), "code": "made-by-older-code"}))
    report = analysis_if_changed({}, tmp_path)  # same results, other analysis code: the report is redone
    assert report.stat().st_mtime_ns != stamps[report] and json.loads(marker.read_text())["code"] == CODE_VERSION


def _file_source(tmp_path) -> list[str]:
    """A training file in de and en: a language it lacks is found only once the run reads it."""
    from tests.corpus_fixtures import documented_rows, write_jsonl

    (tmp_path / "data").mkdir()
    path = write_jsonl(tmp_path / "data" / "train.jsonl", documented_rows(24))
    return ["data=jsonl", f"data.sources.0.path={path}"]


def test_failed_run_does_not_stop_the_sweep_and_is_retried(tmp_path):
    """The other runs finish and are collected and reported; the command exits 1 with one line naming
    the failed run's overrides, so a script or CI can tell."""
    source = _file_source(tmp_path)
    root = tmp_path / "root"
    res = app("-m", "data.languages=[de,en],[de,xx]", *source, *QUICK, root=root)
    assert res.returncode == 1, res.stderr[-3000:]
    last = res.stderr.strip().splitlines()[-1]
    assert last.startswith("error: 1 run(s) failed") and "data.languages=[de,xx]" in last
    assert (root / "analysis" / "report.md").exists()
    runs = pd.read_parquet(root / "runs.parquet").set_index("train_langs")
    assert runs.loc["de,en", "status"] == "done"
    assert runs.loc["de,xx", "status"] == "failed"
    assert "data.languages" in runs.loc["de,xx", "error"] and "'xx'" in runs.loc["de,xx", "error"]
    failed = next(p for p in root.glob("runs/*") if (p / "FAILED").exists())
    assert not (failed / "DONE").exists()
    again = app("-m", "data.languages=[de,en],[de,xx]", *source, *QUICK, root=root)
    assert again.log.count(" starting ") + again.log.count(" resuming ") == 1  # only the failed run reruns


def test_single_run_failure_exits_non_zero(tmp_path):
    res = app("data.languages=[de,xx]", *_file_source(tmp_path), *QUICK, root=tmp_path / "root")
    assert res.returncode == 2
    assert res.stderr.strip().splitlines()[-1].startswith("error: run ")


@pytest.mark.parametrize("bad", ["train.temperature=0.05,-1", "data.languages=[qla,qca],[qla,xx]",
                                 "evals.synthetic.languages=[qla],[qla,xx]"])
def test_a_bad_value_in_any_job_stops_the_sweep_before_the_first_run(tmp_path, bad):
    """Every job of the sweep is checked before any starts: the bad value of the second job is one line
    naming the key, exit 2, and no run folder (the first job never trained)."""
    res = app("-m", bad, *QUICK, root=tmp_path)
    assert res.returncode == 2, res.stderr[-3000:]
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {bad.split('=')[0]}: "), lines
    assert not (tmp_path / "runs").exists()


def test_killed_run_resumes_from_its_checkpoint(tmp_path):
    """SIGKILL of the process group right after the first checkpoint (a fault point, not a timed poll),
    then the same command: the run resumes from that checkpoint and logs every step exactly once."""
    args = ("train.max_steps=12", "train.save_every=5", "train.eval_every=0", "encoder.progress=false",
            "evals.synthetic.subset.articles=2", "train.batch_size=8")
    killed = app(*args, root=tmp_path, env=dict(os.environ, HYBRID_SWEEP_FAULT="after_checkpoint"))
    assert killed.returncode == -signal.SIGKILL
    run_dir = next(p for p in tmp_path.glob("runs/*") if p.is_dir())
    assert not (run_dir / "DONE").exists()
    saved = int((run_dir / "checkpoints" / "LATEST").read_text().split("-")[1])
    assert saved == 5  # the first checkpoint (save_every=5) is where the fault point fired
    res = app(*args, root=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    assert " resuming (interrupted)" in res.log
    steps = [json.loads(line)["step"] for line in (run_dir / "train_log.jsonl").read_text().splitlines()]
    assert steps == list(range(12))


def test_two_concurrent_sweeps_run_each_run_once(tmp_path):
    procs = [app("-m", "train.seed=0,1,2", *QUICK, root=tmp_path, wait=False) for _ in range(2)]
    outs = [p.communicate(timeout=600)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    started = sum(o.count(" starting ") for o in outs)
    assert started == 3
    for run_dir in [p for p in tmp_path.glob("runs/*") if p.is_dir()]:
        steps = [json.loads(line)["step"] for line in (run_dir / "train_log.jsonl").read_text().splitlines()]
        assert steps == [0, 1] and (run_dir / "DONE").exists()
    final = app("-m", "train.seed=0,1,2", *QUICK, root=tmp_path)
    assert final.log.count("done, skipped") == 3
    assert len(pd.read_parquet(tmp_path / "runs.parquet")) == 3


def test_submitit_local_gives_the_local_launchers_results(tmp_path):
    """Each job in its own submitit process, at most the machine's cores at once: the same run ids and
    metric values as the basic launcher."""
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    values = ["run_id", "benchmark", "setting", "query_lang", "doc_lang", "metric", "value"]
    tables = {}
    for name, launcher in (("submitit", ["hydra/launcher=submitit_local", "hydra.launcher.timeout_min=10"]),
                           ("basic", [])):
        res = app("-m", "train.seed=0,1", *launcher, *QUICK, root=tmp_path / name)
        assert res.returncode == 0, res.log[-3000:]
        tables[name] = pd.read_parquet(tmp_path / name / "results.parquet")[values].sort_values(values[:6])
    assert tables["submitit"]["run_id"].nunique() == 2
    pd.testing.assert_frame_equal(tables["submitit"].reset_index(drop=True), tables["basic"].reset_index(drop=True))
    assert list((tmp_path / "submitit" / "hydra").glob("multirun-*/.submitit"))  # it did run through submitit


def test_collect_cli(tmp_path):
    res = subprocess.run([sys.executable, "-m", "hybrid_sweep.collect", str(tmp_path / "missing")],
                         cwd=ROOT, capture_output=True, text=True)
    assert res.returncode == 2 and "no such results root" in res.stderr
    usage = subprocess.run([sys.executable, "-m", "hybrid_sweep.collect"], cwd=ROOT, capture_output=True, text=True)
    assert usage.returncode == 2 and usage.stderr.startswith("usage: python -m hybrid_sweep.collect <results_root>")


def test_wandb_offline_logging_and_no_secret_in_any_file(tmp_path):
    pytest.importorskip("wandb")
    secrets = {"WANDB_API_KEY": "wandbkey" + "7" * 32, "HF_TOKEN": "hf_sentinelTOKEN0123456789"}
    res = app("logger=wandb", "+sweep=seeds", "train.seed=0", "-m", *QUICK, root=tmp_path,
              env=dict(os.environ, **secrets))
    assert res.returncode == 0, res.log[-3000:]
    run_dir = next(p for p in tmp_path.glob("runs/*") if p.is_dir())
    offline = list((run_dir / "wandb").glob("offline-run-*"))
    assert len(offline) == 1
    record = next(offline[0].glob("*.wandb")).read_bytes()  # offline runs keep everything in this log
    for key in (b"synthetic-test/multi/rank_distance", b"train/loss", b"sampler.ratio.mono", b"seeds"):
        assert key in record, key
    assert b"WANDB_API_KEY" not in record
    analysis = list((tmp_path / "analysis" / "wandb").glob("offline-run-*/*.wandb"))
    assert len(analysis) == 1 and b"tables/table1_map" in analysis[0].read_bytes()
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(files) > 50
    leaks = [str(p) for p in files for value in secrets.values() if value.encode() in p.read_bytes()]
    assert leaks == []


def test_training_under_torchrun_two_processes(tmp_path):
    """resources.nproc_per_node=2: the training stage runs under torchrun (gloo on CPU), one global batch
    split across ranks; evaluation follows in one process."""
    res = app("resources.nproc_per_node=2", "train.max_steps=4", "train.batch_size=8", "train.eval_every=2",
              "train.save_every=2", "encoder.progress=false", "evals.synthetic.subset.articles=2", root=tmp_path)
    assert res.returncode == 0, res.log[-3000:]
    run_dir = next(p for p in tmp_path.glob("runs/*") if p.is_dir())
    steps = [json.loads(line) for line in (run_dir / "train_log.jsonl").read_text().splitlines()]
    assert [s["step"] for s in steps] == [0, 1, 2, 3]  # rank 0 logs once per step
    assert (run_dir / "DONE").exists() and list(run_dir.glob("eval/synthetic/*/metrics.parquet"))


def test_gpu_slots_are_free_gpus_not_the_job_number(monkeypatch, tmp_path):
    """Consecutive jobs in one launcher process get the GPUs free at the time (the previous job's slot is
    released when the next one claims); tests/test_gpu_slots.py covers jobs in other processes."""
    from omegaconf import OmegaConf

    from hybrid_sweep import app as app_module
    from hybrid_sweep.runs import gpu_slots

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1,2,3")
    cfg = OmegaConf.create({"resources": {"nproc_per_node": 2, "gpu_slots": True, "gpu_lock_dir": str(tmp_path),
                                          "threads": 3}})
    try:
        for _ in range(3):
            env = app_module._child_env(cfg)
            assert env["CUDA_VISIBLE_DEVICES"] == "0,1" and env["OMP_NUM_THREADS"] == "3"
    finally:
        gpu_slots.release()


def test_submitit_local_is_capped_to_the_cores(monkeypatch):
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    from hydra_plugins.hybrid_sweep_launcher import capped_local as launchers
    from hybrid_sweep.cli import cap_local_launcher

    assert cap_local_launcher(["x", "-m", "hydra/launcher=submitit_local"])[-1] == "hydra/launcher=submitit_local_capped"
    waves = []
    # the plugin's LocalLauncher as our launcher subclasses it (Hydra's plugin discovery may re-import the module)
    LocalLauncher = launchers.CoreCappedLocalLauncher.__bases__[0]
    monkeypatch.setattr(LocalLauncher, "launch", lambda self, jobs, idx: waves.append((len(jobs), idx)) or list(jobs))
    monkeypatch.setattr(launchers, "usable_cores", lambda: 4)
    jobs = [[f"train.seed={i}"] for i in range(10)]
    assert launchers.CoreCappedLocalLauncher().launch(jobs, 0) == jobs  # every job, in order
    assert waves == [(4, 0), (4, 4), (2, 8)]
    waves.clear()
    launchers.CoreCappedLocalLauncher(max_parallel=6).launch(jobs, 3)
    assert waves == [(6, 3), (4, 9)]
