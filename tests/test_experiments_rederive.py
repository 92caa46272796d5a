"""Every number an experiment write-up quotes is re-derived from the tables committed next to it, with the
project's analysis code (issue 19, "Write-ups anyone can re-derive"). The README keeps its numbers in a
``<!-- numbers: {...} -->`` block; this test recomputes each from ``tables/`` and checks that the prose
shows exactly those values, so editing a number in the README (or in the block) fails here."""

import json
import re
from pathlib import Path

import pandas as pd
import pytest

from hybrid_sweep.analysis.study_report import declared_study, study_section
from hybrid_sweep.analysis.tables import axis_info, per_query_frame, summary
from tests.conftest import ROOT

LANGUAGE_PAIRS = ROOT / "experiments" / "language_pairs"
DECIMAL = re.compile(r"(?<![\w.])-?\d*\.\d+(?![\w.]*\d)")


def readme_parts(folder: Path) -> tuple[str, dict]:
    """(the README without its numbers block, with − as -, the block's JSON)."""
    text = (folder / "README.md").read_text(encoding="utf-8")
    m = re.search(r"<!-- numbers[^\n]*\n(.*?)\n-->", text, re.S)
    assert m, f"{folder.name}/README.md has no <!-- numbers ... --> block"
    body = (text[:m.start()] + text[m.end():]).replace("\u2212", "-")
    return body, json.loads(m.group(1))


@pytest.fixture(scope="module")
def derived(tmp_path_factory) -> dict:
    """The language_pairs numbers as the report computes them, from the committed tables only."""
    root = LANGUAGE_PAIRS / "tables"
    results = pd.read_parquet(root / "results.parquet")
    runs = pd.read_parquet(root / "runs.parquet")
    study, info = declared_study(root), axis_info(root, results)
    per_query, missing = per_query_frame(root, results, list(info.axes))
    assert study is not None and not missing  # the declaration and every run's query rows are committed
    out = tmp_path_factory.mktemp("analysis")
    _, primary = study_section(out, results, per_query, study, info.log)
    plan = pd.read_csv(out / "seeds_plan.csv").iloc[0]
    secondary = pd.read_csv(out / "secondary_1.csv").set_index("setting")
    maps = summary(results, "map", list(info.axes)).pivot(index="n_pairs", columns="setting", values="mean")
    rank = summary(results, "rank_distance", list(info.axes)).set_index("n_pairs")["mean"]
    return {"primary": primary.iloc[0], "plan": plan, "secondary": secondary, "map": maps, "rank": rank,
            "runs": runs, "seeds": int(results.seed.nunique())}


def _fmt(value: float, digits: int) -> str:
    return f"{value:.{digits}f}"


def test_language_pairs_readme_numbers_rederive_from_its_tables(derived):
    verify_language_pairs(*readme_parts(LANGUAGE_PAIRS), derived)


def verify_language_pairs(body: str, numbers: dict, derived: dict) -> None:
    """Assert that the block's numbers are the tables' and that the prose quotes exactly them."""
    quoted = set(numbers["given"])

    def check(got: float, spec, where: str) -> None:
        value, digits = spec
        assert _fmt(got, digits) == _fmt(value, digits), f"{where}: README {value}, tables give {got}"
        quoted.add(_fmt(value, digits))

    p = derived["primary"]
    assert (p.level, p.setting, bool(p.significant)) == ("question", "cross", True)
    for key, spec in numbers["primary"].items():
        check(float(p[key]), spec, f"primary {key}")
    for key, spec in numbers["plan"].items():
        check(float(derived["plan"][key]), spec, f"seeds plan {key}")
    for setting, row in numbers["secondary"].items():
        for key, spec in row.items():
            check(float(derived["secondary"].loc[setting, key]), spec, f"secondary {setting} {key}")
    levels = numbers["levels"]
    assert list(derived["map"].index) == levels
    for i, level in enumerate(levels):
        cells = [_fmt(derived["map"].loc[level, s], 3) for s in ("mono", "cross", "multi")]
        assert cells == [_fmt(numbers["map"][s][i], 3) for s in ("mono", "cross", "multi")], level
        rank = _fmt(derived["rank"].loc[level], 0)
        assert rank == str(numbers["rank_distance"][i]), level
        assert f"| {level} | {' | '.join(cells)} | {rank} |" in body, f"table row n_pairs={level}"
        quoted.update(cells)
    assert numbers["seeds"] == derived["seeds"] == 3
    assert numbers["clusters"] == int(p.clusters) and f"{p.clusters} question" in body
    assert numbers["train_s"] == round(derived["runs"].train_s.sum())
    assert f"train_s in runs.parquet sums to {numbers['train_s']} s" in body
    assert f"**{int(derived['plan'].seeds_needed)}** seeds needed" in body
    # the primary sentence, as written
    assert (f"+{_fmt(p.estimate, 4)} per doubling of the number of language pairs, 95 % CI\n"
            f"[{_fmt(p.lo, 4)}, {_fmt(p.hi, 4)}], Holm-adjusted p {_fmt(p.p_adj, 4)}") in body
    # the drawn single pair of each seed
    runs = derived["runs"]
    for seed, row in runs[runs.n_pairs == 1].set_index("seed").pairs.items():
        x, y = sorted(row.split(",")[0].split("-"))
        assert f"{x}–{y} for seed {seed}" in body
    # every decimal number in the prose is one of the re-derived (or declared-setting) values
    stray = [tok for tok in DECIMAL.findall(body) if tok not in quoted and tok.lstrip("-") not in quoted]
    assert not stray, f"numbers in the README that no table gives: {stray}"


@pytest.mark.parametrize("edit", ["prose", "block", "table", "stray"])
def test_a_changed_number_in_the_readme_is_caught(derived, edit):
    """The check is not vacuous: one number changed in the prose, the block or the table fails it."""
    body, numbers = readme_parts(LANGUAGE_PAIRS)
    p = derived["primary"]
    if edit == "prose":
        body = body.replace(_fmt(p.lo, 4), _fmt(p.lo + 0.001, 4), 1)
    elif edit == "block":
        numbers = json.loads(json.dumps(numbers))
        numbers["secondary"]["multi"]["p_adj"][0] += 0.01
    elif edit == "table":
        body = body.replace("| 8 | 0.746 |", "| 8 | 0.747 |", 1)
    else:
        body += "\nA new claim: mAP 0.999.\n"
    with pytest.raises(AssertionError):
        verify_language_pairs(body, numbers, derived)
