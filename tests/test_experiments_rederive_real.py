"""Issue 19, "Write-ups anyone can re-derive", for the write-ups beyond experiments/language_pairs: every
number a README quotes is re-derived here from the tables committed next to it, with the project's own
analysis code (the same calls ``python -m hybrid_sweep.analyze`` makes), and the prose is checked to quote
exactly those values (tests/test_experiments_rederive.py is the original of this pattern).

A README keeps its numbers in one ``<!-- numbers ... -->`` JSON block (helpers from the original test):

    {"roots": {"<tables folder, relative to the README>": {
         "seeds": [10, 11, ...],                       # the training seeds present, as run
         "train_s": 1234,                              # sum of runs.parquet train_s (quoted "... sums to 1234 s")
         "clusters": 105,                              # question clusters of the primary test
         "hypotheses": {"primary": [{"row": {"setting": "cross", "group": "macro average"},
                                     "estimate": [0.0123, 4], "lo": [..], "hi": [..], "p_adj": [..],
                                     "significant": false}],
                        "secondary_1": [...], "seeds_plan": [{"row": {...}, "mde": [..], "seeds_needed": [9, 0]}]},
         "tables": [{"axis": "n_pairs", "columns": [["map", "mono", 3], ..., ["rank_distance", "multi", 0]],
                     "labels": {"1": "1"}, "rows": {"1": [0.569, ...]}}]}},
     "planner": [{"args": "--sd-run 0.0024 --effect 0.0027 --seeds 6"}],   # re-run; its output quoted verbatim
     "pilot": ["0.0104"],                              # an earlier pilot's numbers (planner inputs; no tables)
     "given": ["0.05", ".8"]}                          # settings, not results

``hypotheses`` names the CSVs the report's study section writes (primary.csv, secondary_<i>.csv,
seeds_plan.csv), each row picked by the columns in ``row``; ``tables`` rows are the per-level means the
report's tables show (``summary``; with ``"languages": [...]``, the mean over runs of those query languages'
rows, as the primary endpoint computes it; a column's own 4th element does the same for that column), each
checked as a markdown row ``| label | cell | ... |`` (``"benchmark"`` picks one where a root has several).
Every decimal number in the prose must be one of the checked values (or a ``given`` setting)."""

from __future__ import annotations

import contextlib
import copy
import io
import re
import tempfile
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hybrid_sweep.analysis.primary import endpoint_runs
from hybrid_sweep.analysis.study_report import declared_study, study_section
from hybrid_sweep.analysis.tables import axis_info, per_query_frame, summary
from hybrid_sweep.config.study import HypothesisConfig
from tests.conftest import ROOT
from tests.test_experiments_rederive import DECIMAL, readme_parts

EXPERIMENTS = ROOT / "experiments"
# write-ups whose numbers come from committed parquet tables (a README and its tables/ folders)
REDERIVED = tuple(name for name in ("real_rq1", "real_rq2", "real_rq3", "real_rq4", "real_rq5", "studies")
                  if (EXPERIMENTS / name / "README.md").exists()
                  and "<!-- numbers" in (EXPERIMENTS / name / "README.md").read_text(encoding="utf-8"))
MAX_TABLES_BYTES = 5 * 1024 * 1024


def _fmt(value: float, digits: int) -> str:
    out = f"{value:.{digits}f}"
    return out.lstrip("-") if float(out) == 0 else out


@lru_cache(maxsize=None)
def derive(tables: str) -> dict:
    """Everything the checks compare with, computed from one committed tables folder only."""
    root = Path(tables)
    results = pd.read_parquet(root / "results.parquet")
    runs = pd.read_parquet(root / "runs.parquet")
    study, info = declared_study(root), axis_info(root, results)
    assert study is not None, f"{root}: results.parquet declares no study"
    per_query, missing = per_query_frame(root, results, list(dict.fromkeys([*info.axes, study.primary.axis])))
    assert not missing, f"{root}: per-query rows missing for {missing}"
    with tempfile.TemporaryDirectory(prefix="rederive_") as tmp:
        study_section(Path(tmp), results, per_query, study, info.log)
        csvs = {p.stem: pd.read_csv(p) for p in Path(tmp).glob("*.csv")}
    return {"results": results, "runs": runs, "csvs": csvs, "study": study}


def _pick(frame: pd.DataFrame, row: dict, where: str) -> pd.Series:
    mask = pd.Series(True, index=frame.index)
    for key, value in row.items():
        mask &= frame[key].astype(str) == str(value)
    assert mask.sum() == 1, f"{where}: {int(mask.sum())} rows match {row}"
    return frame[mask].iloc[0]


def verify(folder: Path, body: str, numbers: dict) -> None:
    """Assert that the block's numbers are the tables' and that the prose quotes exactly them."""
    quoted = set(numbers.get("given", []))
    for token in numbers.get("pilot", []):  # an earlier pilot's numbers (planner inputs), labelled so in the prose
        assert token in body and "pilot" in body.lower(), f"pilot number {token} not quoted as the pilot's"
        quoted.add(token)

    def check(got: float, spec, where: str) -> str:
        value, digits = spec
        text = _fmt(got, digits)
        assert text == _fmt(value, digits), f"{where}: README {value}, tables give {got}"
        assert text in body, f"{where}: {text} is in the numbers block but not in the prose"
        quoted.add(text)
        return text

    assert numbers.get("roots"), "no tables named in the numbers block"
    for rel, spec in numbers["roots"].items():
        d = derive(str((folder / rel).resolve()))
        results, runs = d["results"], d["runs"]
        assert sorted(int(s) for s in results.seed.unique()) == spec["seeds"], f"{rel}: seeds"
        assert sorted(int(s) for s in runs.seed.unique()) == spec["seeds"], f"{rel}: runs.parquet seeds"
        assert (runs.status == "done").all(), f"{rel}: runs not all done"
        if "train_s" in spec:
            assert round(runs.train_s.sum()) == spec["train_s"], f"{rel}: train_s sum"
            assert f"sums to {spec['train_s']} s" in body, f"{rel}: train_s not quoted"
        for name, rows in spec.get("hypotheses", {}).items():
            assert name in d["csvs"], f"{rel}: the study section wrote no {name}.csv"
            for row_spec in rows:
                got = _pick(d["csvs"][name], row_spec["row"], f"{rel} {name}")
                for key, value in row_spec.items():
                    if key == "row":
                        continue
                    if key == "significant":
                        assert bool(got.significant) is value, f"{rel} {name} {row_spec['row']}: significant"
                    elif got[key] is None or pd.isna(got[key]):
                        assert value is None, f"{rel} {name} {row_spec['row']} {key}: tables give none"
                        quoted.add("none")
                    else:
                        check(float(got[key]), value, f"{rel} {name} {row_spec['row']} {key}")
        if "clusters" in spec:
            assert int(d["csvs"]["primary"].clusters.iloc[0]) == spec["clusters"], f"{rel}: clusters"
        for table in spec.get("tables", []):
            axis = table["axis"]
            columns = [(c[0], c[1], c[2], tuple(c[3]) if len(c) > 3 else tuple(table.get("languages", ())))
                       for c in table["columns"]]
            means = {}  # (metric, setting, languages) -> {level: mean}
            for metric, setting, _, langs in columns:
                if langs:  # mean over runs of those query languages' rows, as a declared endpoint computes it
                    bench = table.get("benchmark") or results.benchmark.unique().item()
                    per_run = endpoint_runs(results, HypothesisConfig(axis=axis, metric=metric), bench, setting, list(langs))
                    means[(metric, setting, langs)] = {str(k): v for k, v in per_run.groupby("condition").value.mean().items()}
                else:
                    s = summary(results, metric, [axis])
                    s = s[(s.setting == setting) & (s.benchmark == table.get("benchmark", s.benchmark))]
                    means[(metric, setting, langs)] = {str(r[axis]): r["mean"] for _, r in s.iterrows()}
            levels = sorted({k for m in means.values() for k in m})
            assert sorted(table["rows"]) == levels, f"{rel} {axis}: levels {levels}"
            for level, cells in table["rows"].items():
                texts = []
                for (metric, setting, digits, langs), value in zip(columns, cells, strict=True):
                    got = means[(metric, setting, langs)][level]
                    texts.append(check(got, [value, digits], f"{rel} {metric} {setting} {langs or ''} {axis}={level}"))
                label = table.get("labels", {}).get(level, level)
                assert f"| {label} | {' | '.join(texts)} |" in body, f"{rel}: table row {axis}={level}"
    for plan in numbers.get("planner", []):
        from hybrid_sweep.plan_seeds import main

        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            main(plan["args"].split())
        assert f"plan_seeds {plan['args']}\n" in body, f"planner command {plan['args']} not quoted"
        for line in buf.getvalue().strip().splitlines():
            assert line in body, f"planner output not quoted verbatim: {line}"
            quoted.update(DECIMAL.findall(line))
        quoted.update(DECIMAL.findall(plan["args"]))
    assert_no_stray(body, quoted, "table")


def assert_no_stray(body: str, quoted: set, source: str) -> None:
    """Every decimal number in the prose is one the check re-derived (or a declared setting)."""
    stray = [tok for tok in DECIMAL.findall(body) if tok not in quoted and tok.lstrip("-") not in quoted]
    assert not stray, f"numbers in the README that no {source} gives: {stray}"


@pytest.mark.parametrize("name", REDERIVED)
def test_readme_numbers_rederive_from_its_tables(name):
    folder = EXPERIMENTS / name
    verify(folder, *readme_parts(folder))


@pytest.mark.parametrize("name", REDERIVED)
def test_committed_tables_are_complete_and_small(name):
    folder = EXPERIMENTS / name
    _, numbers = readme_parts(folder)
    for rel in numbers["roots"]:
        tables = folder / rel
        for table in ("results.parquet", "runs.parquet", "per_query.parquet"):
            assert (tables / table).is_file(), f"{name}/{rel}: {table} not committed"
        size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
        assert size < MAX_TABLES_BYTES, f"{name}: {size} bytes committed"


def _first_primary(numbers: dict) -> tuple[str, str, dict]:
    for rel, spec in numbers["roots"].items():
        for name, rows in spec.get("hypotheses", {}).items():
            for row in rows:
                if isinstance(row.get("estimate"), list):
                    return rel, name, row
    raise AssertionError("no hypothesis estimate in the numbers block")


def _editable_readme(folder: Path) -> tuple[str, dict]:
    """The README's prose and a copy of its numbers block that a test may change."""
    body, numbers = readme_parts(folder)
    return body, copy.deepcopy(numbers)


def _requote(body: str, old: str, new: str) -> str:
    """Every quotation of the number ``old`` in ``body`` replaced by ``new`` (not inside longer numbers)."""
    return re.sub(rf"(?<![\d.]){re.escape(old)}(?!\d)", new, body)


@pytest.mark.parametrize("edit", ["prose", "block", "table", "stray"])
@pytest.mark.parametrize("name", REDERIVED)
def test_a_changed_number_in_the_readme_is_caught(name, edit):
    """The check is not vacuous: one number changed in the prose, the block or a table fails it."""
    folder = EXPERIMENTS / name
    body, numbers = _editable_readme(folder)
    rel, hyp, row = _first_primary(numbers)
    value, digits = row["estimate"]
    if edit == "prose":  # every quotation of the estimate changed by one unit of its last digit
        old = _fmt(value, digits)
        assert old in body
        body = _requote(body, old, _fmt(value + 10 ** -digits, digits))
    elif edit == "block":
        row["estimate"][0] = value + 10 ** -digits
    elif edit == "table":
        tables = [t for spec in numbers["roots"].values() for t in spec.get("tables", [])]
        if not tables:
            pytest.skip("no per-level table in this README")
        level = sorted(tables[0]["rows"])[0]
        cells = tables[0]["rows"][level]
        digits = tables[0]["columns"][0][2]
        old = "| " + " | ".join(_fmt(c, col[2]) for c, col in zip(cells, tables[0]["columns"])) + " |"
        label = tables[0].get("labels", {}).get(level, level)
        new_first = _fmt(cells[0] + 10 ** -digits, digits)
        new = "| " + " | ".join([new_first] + [_fmt(c, col[2]) for c, col in zip(cells[1:], tables[0]["columns"][1:])]) + " |"
        assert f"| {label} {old}" in body
        body = body.replace(f"| {label} {old}", f"| {label} {new}")
    else:
        body += "\nA new claim: mAP 0.999.\n"
    with pytest.raises(AssertionError):
        verify(folder, body, numbers)


# --- write-ups whose tables are committed as CSV copies (experiments/flores_zero_shot) ----------------------
#
# Block: {"csv": {"<id>": [file, {column: value or [values]}, (agg,) value, digits], ...},
#         "rows": ["| markdown row with {<id>} placeholders |", ...], "given": [...],
#         "not_rederivable": [...]}
# An entry picks rows of a CSV next to the README (``_column`` names the column read, default ``value``);
# one row, or ``agg`` (min, max, median, mean) over several; file "=" evaluates a difference "<id> - <id>".
# ``digits`` is a format spec ("4" -> .4f, ",.0f"). ``not_rederivable``: the decimals the prose quotes from
# elsewhere, each marked so in the prose (checked: they are not silently treated as results).

CSV_REDERIVED = ("flores_zero_shot", "zero_shot")


def _format(value: float, digits) -> str:
    spec = f".{digits}f" if isinstance(digits, int) else digits
    out = format(value, spec)
    return out.lstrip("-") if float(out.replace(",", "")) == 0 else out


def csv_values(folder: Path, entries: dict) -> dict:
    got = {}
    for key, entry in entries.items():
        file, where, *rest = entry
        if file == "=":
            a, b = (s.strip() for s in where.split(" - "))
            got[key] = got[a] - got[b]
            continue
        frame = pd.read_csv(folder / file, dtype={"group": str})
        column = where.get("_column", "value")
        mask = pd.Series(True, index=frame.index)
        for col, want in where.items():
            if col != "_column":
                mask &= frame[col].astype(str).isin([str(w) for w in (want if isinstance(want, list) else [want])])
        values = frame.loc[mask, column]
        if len(rest) == 3:
            assert len(values) >= 1, f"{key}: no rows"
            got[key] = float(getattr(values, rest[0])())
        else:
            assert len(values) == 1, f"{key}: {len(values)} rows match {where}"
            got[key] = float(values.iloc[0])
    return got


def verify_csv(folder: Path, body: str, numbers: dict) -> None:
    quoted = set(numbers.get("given", [])) | set(numbers.get("not_rederivable", []))
    got = csv_values(folder, numbers["csv"])
    texts = {}
    for key, entry in numbers["csv"].items():
        value, digits = entry[-2:]
        text = _format(got[key], digits)
        assert text == _format(value, digits), f"{key}: README {value}, the CSVs give {got[key]}"
        assert text in body, f"{key}: {text} is in the numbers block but not in the prose"
        texts[key] = text
        quoted.add(text)
    for row in numbers.get("rows", []):
        assert row.format(**texts) in body, f"row not in the README: {row.format(**texts)}"
    for token in numbers.get("not_rederivable", []):
        assert token in body
    assert_no_stray(body, quoted, "CSV")


@pytest.mark.parametrize("name", CSV_REDERIVED)
def test_csv_readme_numbers_rederive(name):
    folder = EXPERIMENTS / name
    verify_csv(folder, *readme_parts(folder))


@pytest.mark.parametrize("edit", ["prose", "block", "row", "stray"])
@pytest.mark.parametrize("name", CSV_REDERIVED)
def test_a_changed_number_in_a_csv_readme_is_caught(name, edit):
    folder = EXPERIMENTS / name
    body, numbers = _editable_readme(folder)
    key, entry = next(iter(numbers["csv"].items()))
    value, digits = entry[-2:]
    if edit == "prose":
        body = _requote(body, _format(value, digits), _format(value + 0.001, digits))
    elif edit == "block":
        entry[-2] = value + 0.01
    elif edit == "row":  # one cell of the first table row changed, the value still quoted elsewhere
        texts = {k: _format(e[-2], e[-1]) for k, e in numbers["csv"].items()}
        row = numbers["rows"][0]
        cell = re.search(r"\{(\w+)\}", row).group(1)
        changed = dict(texts, **{cell: _format(numbers["csv"][cell][-2] + 0.001, numbers["csv"][cell][-1])})
        body = body.replace(row.format(**texts), row.format(**changed)) + f"\n{texts[cell]}\n"
    else:
        body += "\nA new claim: mAP 0.999.\n"
    with pytest.raises(AssertionError):
        verify_csv(folder, body, numbers)


# The CSV write-ups' macro.csv are derived tables: each is re-derived here from the per-pool metric rows of
# the run(s) committed beside it (metrics.parquet, as the evaluation wrote it), with the evaluator's own
# macro average (evaluation.rows.macro_rows).
PER_RUN = {"zero_shot": ("tables/xquad_r/metrics.parquet", "tables/mlqa_r20/metrics.parquet"),
           "flores_zero_shot": ("tables/flores/metrics.parquet",)}


@pytest.mark.parametrize("name", [n for n in PER_RUN if all((EXPERIMENTS / n / f).exists() for f in PER_RUN[n])])
def test_macro_csv_rederives_from_the_committed_per_pool_rows(name):
    from hybrid_sweep.evaluation.rows import macro_rows
    from hybrid_sweep.results_schema import ROW_COLUMNS

    folder = EXPERIMENTS / name
    pools = pd.concat([pd.read_parquet(folder / f) for f in PER_RUN[name]], ignore_index=True)
    pools = pools[pools.query_lang != "avg"][ROW_COLUMNS]
    assert len(pools) and pools.value.notna().all()
    derived = macro_rows(pools).set_index(["benchmark", "setting", "metric"]).value
    macro = pd.read_csv(folder / "macro.csv").set_index(["benchmark", "setting", "metric"]).value
    assert set(macro.index) <= set(derived.index)
    np.testing.assert_allclose(macro.to_numpy(), derived.loc[macro.index].to_numpy(), rtol=1e-5, atol=1e-6)  # 6 digits in the CSV


def test_every_write_up_is_rederived_by_a_test():
    """Every experiments/<folder> with a README is checked by one of the re-derivation tests (a new
    write-up without a numbers block, or a folder left out of the lists, fails here)."""
    folders = {p.parent.name for p in EXPERIMENTS.glob("*/README.md")}
    covered = set(REDERIVED) | set(CSV_REDERIVED) | {"language_pairs"}  # language_pairs: test_experiments_rederive.py
    assert folders == covered, f"not re-derived: {sorted(folders - covered)}; listed but absent: {sorted(covered - folders)}"


# Each CSV write-up's runs.csv is its per-run table: one row per committed run (tables/<run>/), with what
# the run's own config.yaml and metric rows say (checked here) and its provenance (command, time written,
# the checkout's commit then: recorded, not derivable).
RUN_COLUMNS = ("run", "benchmark", "split", "encoder", "max_length", "subset_articles", "query_languages", "pools",
               "queries")


def run_rows(folder: Path) -> pd.DataFrame:
    """The derivable columns of runs.csv, from each tables/<run>/ folder's config.yaml and parquet tables."""
    from omegaconf import OmegaConf

    rows = []
    for run in sorted(p.parent for p in (folder / "tables").glob("*/config.yaml")):
        cfg = OmegaConf.load(run / "config.yaml")
        metrics, per_query = pd.read_parquet(run / "metrics.parquet"), pd.read_parquet(run / "per_query.parquet")
        pools = metrics[metrics.query_lang != "avg"][["setting", "query_lang", "doc_lang"]].drop_duplicates()
        rows.append({"run": run.name, "benchmark": cfg.eval.benchmark, "split": cfg.eval.split,
                     "encoder": cfg.encoder.name, "max_length": int(cfg.encoder.max_length),
                     "subset_articles": cfg.eval.subset.articles, "query_languages": pools.query_lang.nunique(),
                     "pools": len(pools), "queries": per_query.query_id.nunique()})
    return pd.DataFrame(rows, columns=list(RUN_COLUMNS))


@pytest.mark.parametrize("name", CSV_REDERIVED)
def test_runs_csv_describes_every_committed_run(name):
    folder = EXPERIMENTS / name
    committed = pd.read_csv(folder / "runs.csv")
    assert {"command", "written_utc", "git_commit"} <= set(committed.columns)
    derived = run_rows(folder)
    assert len(derived) and list(committed.run) == list(derived.run)  # every tables/<run>/ and nothing else
    got = committed[list(RUN_COLUMNS)].astype(object).where(committed[list(RUN_COLUMNS)].notna(), None)
    want = derived.astype(object).where(derived.notna(), None)
    assert got.astype(str).values.tolist() == want.astype(str).values.tolist()
