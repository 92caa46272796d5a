"""Every bad input of the catalogue (tests/bad_input_catalogue.py) through the real CLIs: exit 2, exactly one
line on stderr, ``error: <field or file>: <first words>``, nothing written where results go, nothing marked
complete. The rows run in one driver process (~1 s each instead of ~5 s as separate processes); a few also
run as separate processes, which must answer the same. docs/reliability.md's table is the catalogue's."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from fnmatch import fnmatch
from pathlib import Path

import pytest

from tests.bad_input_catalogue import DOC, ROWS, TOLERATED, Row, doc_table, render_table
from tests.bad_input_driver import run_as_process
from tests.bad_input_setups import FINISHED, OFFLINE
from tests.conftest import ROOT

@pytest.fixture(scope="module")
def env(tmp_path_factory) -> dict:
    """Offline, with an empty Hugging Face cache: a row fails the same whatever this machine has downloaded."""
    return {**os.environ, **OFFLINE, "OMP_NUM_THREADS": "1", "HF_HOME": str(tmp_path_factory.mktemp("hf_home"))}


@pytest.fixture(scope="module")
def driven(tmp_path_factory, env) -> tuple[Path, dict]:
    """Every row, run once by the in-process driver (one Python process)."""
    base = tmp_path_factory.mktemp("catalogue")
    out = base / "results.json"
    res = subprocess.run([sys.executable, "-m", "tests.bad_input_driver", str(base / "rows"), str(out)], cwd=ROOT,
                         env=env, capture_output=True, text=True, timeout=1200)
    assert res.returncode == 0 and out.exists(), (res.stdout + res.stderr)[-3000:]
    return base / "rows", json.loads(out.read_text())


def check(row: Row, tmp: Path, result: dict) -> None:
    """The row's contract: exit 2, one line naming the field or file, nothing written, nothing marked."""
    lines = result["stderr"].strip().splitlines()
    assert result["rc"] == 2, result["stderr"][-3000:]
    assert len(lines) == 1, result["stderr"][-3000:]
    assert re.match(row.expected(tmp), lines[0]), (lines[0], row.expected(tmp))
    before, after = result["before"], result["after"]
    changed = sorted(f for f in after if before.get(f) != after[f])
    allowed = (*TOLERATED, *row.writes)
    assert [f for f in changed if not any(fnmatch(f, p) for p in allowed)] == []
    assert [f for f in changed if f.startswith(("root/", "out/")) and Path(f).name == "DONE"] == []
    if "out" not in result["existed"]:
        assert not (tmp / "out").exists()  # the output folder appears only once the input is valid
    if not row.writes and "root/runs" not in result["existed"]:
        assert not (tmp / "root" / "runs").exists()  # no run started


def _param(row: Row):
    marks = [pytest.mark.xfail(strict=True, reason=row.xfail)] if row.xfail else []
    return pytest.param(row, id=row.id, marks=marks)


@pytest.mark.parametrize("row", [_param(r) for r in ROWS])
def test_a_bad_input_is_one_line_before_any_work(row, driven):
    base, results = driven
    check(row, base / row.id, results[row.id])


SEPARATE = [r for r in ROWS if r.subprocess]


@pytest.fixture(scope="module")
def separate(tmp_path_factory, driven, env) -> tuple[Path, dict]:
    """The rows marked ``subprocess`` as their own ``python -m`` processes (two at a time)."""
    base = tmp_path_factory.mktemp("separate")
    shutil.copytree(driven[0] / FINISHED, base / FINISHED)  # the finished root the driver built, not a second one
    with ThreadPoolExecutor(2) as pool:
        results = dict(zip([r.id for r in SEPARATE], pool.map(lambda r: run_as_process(r, base, env), SEPARATE)))
    return base, results


@pytest.mark.parametrize("row", SEPARATE, ids=[r.id for r in SEPARATE])
def test_a_separate_process_answers_as_the_driver_does(row, driven, separate):
    (base, results), (sep_base, sep_results) = driven, separate
    ours, theirs = results[row.id], sep_results[row.id]
    assert theirs["rc"] == ours["rc"]
    assert (theirs["stderr"].replace(str(sep_base / row.id), "<tmp>").strip().splitlines()[-2:]
            == ours["stderr"].replace(str(base / row.id), "<tmp>").strip().splitlines()[-2:])
    def new(result):  # Hydra's log folders are named by the time, cache entries by a hash of the file's path
        return sorted(re.sub("[0-9a-f]{16,}", "<hash>", f) for f in set(result["after"]) - set(result["before"])
                      if not fnmatch(f, "root/hydra/*"))

    assert new(theirs) == new(ours)


def test_the_catalogue_is_large_and_its_ids_unique():
    assert len(ROWS) >= 50
    assert len({r.id for r in ROWS}) == len(ROWS)
    clis = {r.cli for r in ROWS}
    assert clis == {"hybrid_sweep", "hybrid_sweep.train", "hybrid_sweep.evaluate", "hybrid_sweep.collect",
                    "hybrid_sweep.evaluate_root"}
    assert len(SEPARATE) >= 5 and {r.cli for r in SEPARATE} >= {"hybrid_sweep", "hybrid_sweep.train",
                                                               "hybrid_sweep.evaluate", "hybrid_sweep.collect"}


def test_the_reliability_table_is_the_catalogue():
    """Regenerate with ``python -m tests.bad_input_catalogue --doc``."""
    assert doc_table(DOC.read_text()) == render_table()


# --- a key the chosen preset lacks, checked before Hydra (hybrid_sweep/config/preset_keys.py) -------------
CONF = ROOT / "conf"


def _leaves(node, prefix=""):
    if isinstance(node, dict) and node:
        for k, v in node.items():
            yield from _leaves(v, f"{prefix}.{k}" if prefix else str(k))
    elif isinstance(node, list) and node:
        for i, v in enumerate(node):
            yield from _leaves(v, f"{prefix}.{i}")
    else:
        yield prefix


def test_every_key_of_every_preset_may_be_overridden():
    """No false alarm: each leaf key of each preset (with its defaults chain) passes with that preset chosen."""
    from hybrid_sweep.config.preset_keys import _preset, check_preset_keys

    checked = 0
    for folder in sorted(p for p in CONF.iterdir() if p.is_dir() and p.name not in ("hydra", "sweep")):
        for option in sorted(p.stem for p in folder.glob("*.yaml")):
            for leaf in _leaves(_preset(str(folder), option) or {}):
                check_preset_keys([f"{folder.name}={option}", f"{folder.name}.{leaf}=1"], CONF, "config")
                checked += 1
    assert checked > 300


@pytest.mark.parametrize("argv, key", [
    (["encoder=tiny,me5_small_q4", "encoder.layers=2"], "encoder.layers"),  # a sweep: the tiny job would fail
    (["+eval@evals.toy=synthetic", "evals.toy.path=x"], "evals.toy.path"),
    (["data.sources.3.path=x"], "data.sources.3.path"),
])
def test_a_key_the_chosen_preset_lacks_is_named(argv, key):
    from hybrid_sweep.config.preset_keys import check_preset_keys
    from hybrid_sweep.errors import ConfigError

    with pytest.raises(ConfigError, match=rf"^{re.escape(key)}: the \w+ preset '\w+' has no such setting"):
        check_preset_keys(argv, CONF, "config")


@pytest.mark.parametrize("argv", [
    ["encoder=me5_small_q4", "encoder.layers=2"],
    ["+sweep=encoders", "encoder.layers=2"],  # a sweep's own defaults may choose the preset: Hydra decides
    ["~eval@evals.synthetic", "+eval@evals.synthetic=beir", "evals.synthetic.path=x"],
    ["train.lr=1", "results_root=x", "hydra.run.dir=x", "resources.threads=2"],
])
def test_keys_the_preset_has_or_cannot_tell_pass(argv):
    from hybrid_sweep.config.preset_keys import check_preset_keys

    check_preset_keys(argv, CONF, "config")
