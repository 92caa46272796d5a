"""``python -m hybrid_sweep.evaluate``: outputs, refusal to overwrite, one-line errors, data root."""

import subprocess
import sys

import pandas as pd
import pytest
from omegaconf import OmegaConf

from hybrid_sweep.data import download
from hybrid_sweep.errors import DataError
from tests.conftest import ROOT


def _run(*overrides, env=None):
    return subprocess.run([sys.executable, "-m", "hybrid_sweep.evaluate", *overrides], cwd=ROOT,
                          capture_output=True, text=True, env=env, timeout=300)


def test_cli_writes_results_and_refuses_to_overwrite(tmp_path):
    out = tmp_path / "ev"
    res = _run(f"output_dir={out}", "eval.subset.articles=2", "encoder.progress=false")
    assert res.returncode == 0, res.stderr
    for name in ("metrics.parquet", "metrics.csv", "per_query.parquet", "config.yaml"):
        assert (out / name).exists(), name
    metrics = pd.read_parquet(out / "metrics.parquet")
    assert set(metrics.setting) == {"mono", "cross", "multi"}
    assert metrics.n_queries.gt(0).all()
    assert OmegaConf.load(out / "config.yaml").eval.subset.articles == 2
    assert any((out / "runs" / "synthetic-test" / "mono").glob("*.trec"))
    before = (out / "metrics.parquet").stat().st_mtime_ns
    again = _run(f"output_dir={out}", "eval.subset.articles=2")
    assert again.returncode == 2
    assert "already holds results" in again.stderr
    assert (out / "metrics.parquet").stat().st_mtime_ns == before


@pytest.mark.parametrize("override, message", [
    ("eval.subset.articles=0", "eval.subset.articles: must be a positive integer"),
    ("eval.settings=[mono,diagonal]", "eval.settings: unknown setting 'diagonal'"),
    ("eval.languages=[qla,xx]", "eval.languages: synthetic benchmark has no language 'xx'"),
    ("eval.run_depth=-3", "eval.run_depth: must be a positive integer"),
])
def test_bad_config_is_one_line_and_nothing_written(tmp_path, override, message):
    out = tmp_path / "ev"
    res = _run(f"output_dir={out}", override)
    assert res.returncode == 2
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert lines == [f"error: {lines[0][7:]}"] and message in lines[0]
    assert not (out / "metrics.parquet").exists() and not (out / "config.yaml").exists()


@pytest.mark.parametrize("override, message", [
    ("+encoder.max_len=64", "error: encoder.max_len: unknown key (declared: name, kind, path,"),
    ("+outputdir=x", "error: outputdir: unknown key (declared: paths, synthetic, encoder, eval, output_dir, overwrite)"),
    ("encoder.max_len=64", "error: encoder.max_len: unknown key (declared: name, kind, path,"),  # no "+"
    ("encoder.max_length=long", "error: encoder.max_length: Value 'long' of type 'str' could not be converted to Integer"),
    ("encoder.pooling=max", "error: encoder.pooling: unknown pooling 'max'; one of mean, cls"),
])
def test_schema_errors_are_one_line_and_leave_no_output_dir(tmp_path, override, message):
    """The CLI validates through the typed schema (``config.load(cfg, "evaluate")``) before anything is
    written: not even the output folder appears."""
    out = tmp_path / "new" / "ev"
    res = _run(f"output_dir={out}", override)
    assert res.returncode == 2
    assert res.stderr.strip().splitlines() == [res.stderr.strip()] and res.stderr.startswith(message), res.stderr
    assert not (tmp_path / "new").exists()


def test_unwritable_output_dir_is_one_line(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    res = _run(f"output_dir={blocker / 'sub' / 'ev'}")
    assert res.returncode == 2
    assert res.stderr.strip() == f"error: output_dir: cannot write to {blocker / 'sub' / 'ev'} (Not a directory)"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"]


def test_offline_without_data_root_names_the_variable(tmp_path, monkeypatch):
    monkeypatch.setattr(download, "LAREQA_URL", "http://127.0.0.1:9/{commit}/{folder}/{lang}.json")
    with pytest.raises(DataError, match=f"set {download.ENV_VAR}="):
        download.ensure_lareqa_file(tmp_path, "xquad-r", "en", user_supplied=False, timeout=2)
    assert not (tmp_path / "lareqa" / "xquad-r" / "en.json").exists()


def test_download_fills_the_cache(tmp_path, monkeypatch, data_root):
    monkeypatch.setattr(download, "LAREQA_URL", (data_root / "lareqa").as_uri() + "/{folder}/{lang}.json")
    path = download.ensure_lareqa_file(tmp_path, "mlqa-r", "de", user_supplied=False)
    assert path.read_bytes() == (data_root / "lareqa" / "mlqa-r" / "de.json").read_bytes()


def test_user_supplied_root_missing_file(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        download.ensure_lareqa_file(tmp_path, "xquad-r", "en", user_supplied=True)


def test_data_root_precedence(tmp_path, monkeypatch):
    monkeypatch.setenv(download.ENV_VAR, str(tmp_path / "env"))
    assert download.data_root(None) == ((tmp_path / "env").resolve(), True)
    assert download.data_root(str(tmp_path / "cfg")) == ((tmp_path / "cfg").resolve(), True)
    monkeypatch.delenv(download.ENV_VAR)
    root, supplied = download.data_root(None)
    assert not supplied and root.name == "data"


@pytest.mark.parametrize("args, message", [
    (["encoder=bert_large"], "error: encoder: unknown option 'bert_large'; available: labse,"),
    (["+sweep=nope", "-m"], "error: sweep: unknown option 'nope'"),
    (["sampler=mono", "sampler=cross"], "error: sampler: given twice ('mono' and 'cross'); keep one"),
    (["-m", "sampler=mono,crosss"], "error: sampler: unknown option 'crosss'"),
    (["train.learning_rate=1e-4"], "error: train.learning_rate: unknown key (declared: enabled, seed,"),  # no "+"
    (["-m", "sampler.temprature=1,2"], "error: sampler.temprature: unknown key (declared: ratio, n_pairs"),
    (["result_root=x"], "error: result_root: unknown key (declared: schema_version, paths,"),
])
def test_unknown_presets_and_conflicting_overrides(tmp_path, args, message):
    res = subprocess.run([sys.executable, "-m", "hybrid_sweep", *args, f"results_root={tmp_path}"], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 2
    assert res.stderr.strip().splitlines() == [res.stderr.strip()] and res.stderr.startswith(message)
    assert not any(tmp_path.iterdir())


def test_unwritable_results_root_is_one_line(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    res = subprocess.run([sys.executable, "-m", "hybrid_sweep", f"results_root={blocker / 'sub'}",
                          "train.max_steps=1"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert res.returncode == 2
    assert res.stderr.strip().splitlines()[-1].startswith(f"error: results_root: cannot write to {blocker / 'sub'}")


def test_missing_data_root_is_one_line(tmp_path):
    res = _run(f"output_dir={tmp_path / 'ev'}", "eval=xquad_r", f"paths.data_root={tmp_path / 'nowhere'}")
    assert res.returncode == 2
    assert res.stderr.strip().splitlines() == [res.stderr.strip()] and "file not found (data root" in res.stderr
    assert not (tmp_path / "ev" / "metrics.parquet").exists()
