"""Train once, evaluate many: the run id is the checkpoint key, each evaluation entry is keyed apart, so
adding, removing or changing an evaluation never trains (counted in train_log.jsonl and the weights'
bytes), an older root migrates without recomputing, and a damaged artefact is found and recomputed."""

import json
import shutil
import subprocess
import sys

import pandas as pd
import pytest

from hybrid_sweep.runs.store import eval_key, run_id
from tests.conftest import ROOT, compose
from tests.test_sweeps import app

QUICK = ("train.max_steps=2", "train.batch_size=8", "train.eval_every=0", "encoder.progress=false",
         "evals.synthetic.subset.articles=2")
FLORES = ("+eval@evals.flores=flores", "evals.flores.languages=[eng_Latn,deu_Latn,zho_Hans]")


def _cfg(*overrides):
    return compose(*overrides, "results_root=/tmp/unused", config_name="config")


def test_evaluation_settings_are_not_in_the_run_id():
    base = _cfg()
    for change in (FLORES, ("evals.synthetic.full_rank_max=49999",), ("evals.synthetic.run_depth=10",),
                   ("~eval@evals.synthetic", "+eval@evals.xquad_r=xquad_r")):
        assert run_id(_cfg(*change)) == run_id(base), change
    assert eval_key(_cfg("evals.synthetic.full_rank_max=49999"), "synthetic") != eval_key(base, "synthetic")
    assert eval_key(_cfg("evals.synthetic.run_depth=10"), "synthetic") == eval_key(base, "synthetic")  # files only
    assert run_id(_cfg("train.lr=1e-4")) != run_id(base)  # a training setting is a new checkpoint


def _steps(root):
    return {p.parent.name: len(p.read_text().splitlines()) for p in root.glob("runs/*/train_log.jsonl")}


def _files(root):
    return {p.relative_to(root): (p.stat().st_mtime_ns, p.read_bytes()) for p in root.glob("runs/*/**/*")
            if p.is_file() and p.name not in (".lock", "config.yaml", "evals.json", "artefacts.json", "stages.json",
                                              "DONE") and "/eval/" not in str(p)}


@pytest.fixture(scope="module")
def trained_root(tmp_path_factory, data_root):
    root = tmp_path_factory.mktemp("train_once")
    res = app("-m", "train.seed=0,1", *QUICK, root=root)
    assert res.returncode == 0, res.log[-3000:]
    return root


def test_adding_a_benchmark_to_a_finished_sweep_only_evaluates(trained_root, tmp_path):
    root = tmp_path / "root"
    shutil.copytree(trained_root, root)
    before_runs = pd.read_parquet(root / "runs.parquet")
    steps, files = _steps(root), _files(root)
    res = app("-m", "train.seed=0,1", *QUICK, *FLORES, root=root)
    assert res.returncode == 0, res.log[-3000:]
    assert res.log.count(" evaluating ") == 2 and " starting " not in res.log
    assert _steps(root) == steps and _files(root) == files  # no training step, no checkpoint file rewritten
    results, runs = pd.read_parquet(root / "results.parquet"), pd.read_parquet(root / "runs.parquet")
    assert set(results.benchmark) == {"synthetic-test", "flores"}
    assert set(results[results.benchmark == "flores"].run_id) == set(before_runs.run_id)
    pd.testing.assert_series_equal(runs.set_index("run_id").variant.sort_index(),
                                   before_runs.set_index("run_id").variant.sort_index())  # same conditions
    again = app("-m", "train.seed=0,1", *QUICK, root=root)  # the entry left out: kept, nothing recomputed
    assert again.returncode == 0 and again.log.count("done, skipped") == 2
    assert "flores" in set(pd.read_parquet(root / "results.parquet").benchmark)


def test_a_changed_evaluation_setting_is_a_new_evaluation_of_the_same_checkpoint(trained_root, tmp_path):
    root = tmp_path / "root"
    shutil.copytree(trained_root, root)
    steps = _steps(root)
    res = app("train.seed=0", *QUICK, "evals.synthetic.full_rank_max=49999", root=root)
    assert res.returncode == 0, res.log[-3000:]
    assert _steps(root) == steps
    rid = run_id(_cfg("train.seed=0", *QUICK))
    assert len(list((root / "runs" / rid / "eval" / "synthetic").iterdir())) == 2  # the older one is kept on disk
    used = json.loads((root / "runs" / rid / "evals.json").read_text())["synthetic"]["key"]
    assert used == eval_key(_cfg("train.seed=0", *QUICK, "evals.synthetic.full_rank_max=49999"), "synthetic")


def test_evaluate_root_adds_benchmarks_and_a_zero_shot_baseline(trained_root, tmp_path):
    root = tmp_path / "root"
    shutil.copytree(trained_root, root)
    steps = _steps(root)
    res = subprocess.run([sys.executable, "-m", "hybrid_sweep.evaluate_root", str(root), *FLORES,
                          "--baseline", "encoder=tiny"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    assert _steps(root) == steps
    results = pd.read_parquet(root / "results.parquet")
    by = results.groupby("trained").benchmark.agg(set)
    assert by[True] == {"synthetic-test", "flores"}
    assert by[False] == {"synthetic-test", "flores"}  # the baseline on every benchmark the root has
    assert results[~results.trained].run_id.nunique() == 1
    bad = subprocess.run([sys.executable, "-m", "hybrid_sweep.evaluate_root", str(root)], cwd=ROOT,
                         capture_output=True, text=True)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1 and "evals" in bad.stderr


def test_a_damaged_artefact_is_reported_and_recomputed(trained_root, tmp_path):
    root = tmp_path / "root"
    shutil.copytree(trained_root, root)
    table = pd.read_parquet(root / "results.parquet")
    target = next(root.glob("runs/*/eval/synthetic/*/metrics.parquet"))
    target.write_bytes(target.read_bytes()[:1000])  # truncated
    res = subprocess.run([sys.executable, "-m", "hybrid_sweep.collect", str(root)], cwd=ROOT, capture_output=True,
                         text=True)
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1
    assert str(target) in res.stderr and "recompute" in res.stderr
    runs = pd.read_parquet(root / "runs.parquet")
    assert (runs.status == "failed").sum() == 1  # the table says so instead of looking current
    steps = _steps(root)
    again = app("-m", "train.seed=0,1", *QUICK, root=root)
    assert again.returncode == 0, again.log[-3000:]
    assert _steps(root) == steps  # only the evaluation ran again
    cols = ["run_id", "benchmark", "setting", "query_lang", "doc_lang", "metric", "value"]
    pd.testing.assert_frame_equal(pd.read_parquet(root / "results.parquet")[cols].sort_values(cols[:6]).reset_index(drop=True),
                                  table[cols].sort_values(cols[:6]).reset_index(drop=True))


def test_a_truncated_table_is_repaired_by_the_rerun_itself(trained_root, tmp_path):
    root = tmp_path / "root"
    shutil.copytree(trained_root, root)
    target = next(root.glob("runs/*/eval/synthetic/*/metrics.parquet"))
    target.write_bytes(target.read_bytes()[:1000])
    res = app("-m", "train.seed=0,1", *QUICK, root=root)
    assert res.returncode == 0, res.log[-3000:]
    assert "recomputing evaluation synthetic" in res.log and res.log.count("done, skipped") == 1
    assert len(pd.read_parquet(target)) > 0


def _as_schema2(root):
    """Rewrite a schema-3 root into the exact schema-2 layout (what the released code wrote): run folders
    named by the old id, eval/<name>/ without keys, merged per-run tables, schema 2 stamped."""
    for run in [p for p in (root / "runs").iterdir() if p.is_dir()]:
        evals = json.loads((run / "evals.json").read_text())
        for name, e in evals.items():
            keyed = run / "eval" / name / e["key"]
            for item in keyed.iterdir():
                item.rename(run / "eval" / name / item.name)
            keyed.rmdir()
        metrics = pd.concat([pd.read_parquet(run / "eval" / n / "metrics.parquet") for n in evals])
        metrics.to_parquet(run / "metrics.parquet")
        for f in ("evals.json", "artefacts.json"):
            (run / f).unlink()
        (run / "config.yaml").write_text((run / "config.yaml").read_text().replace("schema_version: '3'",
                                                                                   "schema_version: '2'"))
        run.rename(run.parent / f"old{run.name[:9]}")
    (root / "runs" / "store.json").write_text(json.dumps({"schema_version": "2"}))


def test_a_schema2_root_migrates_without_recomputing(trained_root, tmp_path):
    root = tmp_path / "root"
    shutil.copytree(trained_root, root)
    table = pd.read_parquet(root / "results.parquet")
    _as_schema2(root)
    refused = app("-m", "train.seed=0,1", *QUICK, root=root)
    assert refused.returncode == 2 and "python -m hybrid_sweep.migrate" in refused.stderr.strip().splitlines()[-1]
    res = subprocess.run([sys.executable, "-m", "hybrid_sweep.migrate", str(root)], cwd=ROOT, capture_output=True,
                         text=True)
    assert res.returncode == 0, res.stderr
    assert "2 schema-2 runs -> 2 checkpoints" in res.stdout
    steps = _steps(root)
    again = app("-m", "train.seed=0,1", *QUICK, root=root)
    assert again.returncode == 0 and again.log.count("done, skipped") == 2, again.log[-3000:]
    assert _steps(root) == steps
    cols = ["run_id", "benchmark", "setting", "query_lang", "doc_lang", "metric", "value"]
    pd.testing.assert_frame_equal(pd.read_parquet(root / "results.parquet")[cols].sort_values(cols[:6]).reset_index(drop=True),
                                  table[cols].sort_values(cols[:6]).reset_index(drop=True))


def test_keep_checkpoints_false_keeps_only_the_model_and_still_evaluates_later(tmp_path, data_root):
    root = tmp_path / "root"
    res = app("train.seed=0", *QUICK, "train.keep_checkpoints=false", root=root)
    assert res.returncode == 0, res.log[-3000:]
    (run,) = root.glob("runs/*/")
    assert (run / "model" / "modules.json").exists() and (run / "train_summary.json").exists()
    assert not (run / "checkpoints").exists()  # the resumable state went once training finished
    assert run.name == run_id(_cfg("train.seed=0", *QUICK))  # off the run id: the same checkpoint key
    steps = _steps(root)
    res = app("train.seed=0", *QUICK, *FLORES, root=root)  # a later evaluation needs only model/
    assert res.returncode == 0, res.log[-3000:]
    assert _steps(root) == steps and " starting " not in res.log
    assert "flores" in set(pd.read_parquet(root / "results.parquet").benchmark)
    kept = app("train.seed=1", *QUICK, root=tmp_path / "kept")  # the default keeps them
    assert kept.returncode == 0 and any((tmp_path / "kept").glob("runs/*/checkpoints/LATEST"))
