"""A sweep run evaluates retrieval presets next to the pooled benchmarks (runs/worker.py), and results
gain them as `benchmark` values with the same columns."""

import pandas as pd

from tests.retrieval_fixtures import write_beir
from tests.test_sweeps import QUICK, app


def test_a_run_adds_flores_and_a_beir_folder(tmp_path, data_root):
    docs = [(f"d{i}", "", f"alpha{i} text") for i in range(12)]
    folder = write_beir(tmp_path / "toy", docs, [(f"q{i}", f"alpha{i}") for i in range(5)],
                        {"test": [(f"q{i}", f"d{i}", 1) for i in range(5)]})
    res = app(*QUICK, "+eval@evals.flores=flores", "evals.flores.languages=[eng_Latn,deu_Latn,yor_Latn]",
              "+eval@evals.toy=beir", f"evals.toy.path={folder}", f"paths.data_root={data_root}",
              root=tmp_path / "out")
    assert res.returncode == 0, res.log[-3000:]
    results = pd.read_parquet(tmp_path / "out" / "results.parquet")
    assert set(results.benchmark) >= {"flores", "toy"} and len(set(results.benchmark)) == 3
    assert results.depth.notna().all()
    flores = results[results.benchmark == "flores"]
    assert set(flores.setting) == {"cross", "multi"} and set(flores.query_lang) == {"eng_Latn", "deu_Latn", "yor_Latn", "avg"}
    (run,) = [p for p in (tmp_path / "out" / "runs").iterdir() if p.is_dir()]  # beside runs/store.json
    (groups_file,) = run.glob("eval/flores/*/language_groups.parquet")  # eval/<entry>/<eval key>/
    groups = pd.read_parquet(groups_file)
    assert set(groups[groups.grouping == "seen"].group) == {"unseen"}  # trained on the synthetic languages
