"""Run bad-input catalogue rows (tests/bad_input_catalogue.py) in this one process:

    python -m tests.bad_input_driver <base folder> <results.json> [row ids]

Each row gets ``<base>/<id>``, its setup, then ``python -m <cli> <argv>`` as ``runpy`` runs it (``sys.argv``
set, Hydra's global state cleared, descriptor 2 and ``sys.stderr`` captured); ~1 s a row instead of ~5 s
as a separate process. ``run_as_process`` runs a row as its own process, to show the two agree.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # `python -m tests.bad_input_driver` from anywhere

from tests.bad_input_catalogue import ROWS, Row  # noqa: E402
from tests.bad_input_setups import OFFLINE  # noqa: E402


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``folder``: relative path -> (size, mtime_ns)."""
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in folder.rglob("*") if p.is_file()}


def existing(tmp: Path) -> list[str]:
    """Which of the folders a refused input must not create were there before (made by the setup)."""
    return [p for p in ("out", "root/runs") if (tmp / p).exists()]


def _reset_hydra() -> None:
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig

    GlobalHydra.instance().clear()
    HydraConfig.instance().cfg = None


def run_in_process(row: Row, tmp: Path, capture) -> dict:
    """Run ``python -m <row.cli> <argv>`` in this process: the exit code and what it wrote to stderr."""
    import runpy
    import traceback

    argv, saved_env, saved_cwd, saved_argv = row.argv(tmp), dict(os.environ), os.getcwd(), sys.argv
    start = capture.flush_size()
    os.environ.update(OFFLINE)
    os.chdir(tmp)
    sys.argv = [row.cli.replace(".", "/") + ".py", *argv]
    code = 0
    try:
        _reset_hydra()
        runpy.run_module(row.cli if row.cli != "hybrid_sweep" else "hybrid_sweep.__main__", run_name="__main__",
                         alter_sys=True)
    except SystemExit as err:
        code = err.code if isinstance(err.code, int) else (0 if err.code is None else 1)
        if isinstance(err.code, str):
            print(err.code, file=sys.stderr)
    except BaseException:  # noqa: BLE001 - an uncaught traceback is what the row reports
        traceback.print_exc()
        code = 1
    finally:
        os.chdir(saved_cwd)
        sys.argv = saved_argv
        os.environ.clear()
        os.environ.update(saved_env)
    return {"rc": code, "stderr": capture.read_from(start)}


class Capture:
    """Descriptor 2 and ``sys.stderr`` appended to one file (C libraries and Python alike); each row
    reads what it added. Descriptor 1 and ``sys.stdout`` go to another (not checked)."""

    def __init__(self, folder: Path):
        self.err = open(folder / "stderr.txt", "a", buffering=1, encoding="utf-8", errors="replace")
        self.out = open(folder / "stdout.txt", "a", buffering=1, encoding="utf-8", errors="replace")
        os.dup2(self.err.fileno(), 2)
        os.dup2(self.out.fileno(), 1)
        sys.stderr, sys.stdout = self.err, self.out

    def flush_size(self) -> int:
        for f in (sys.stderr, sys.stdout, sys.__stderr__, sys.__stdout__):
            try:
                f.flush()
            except (ValueError, OSError):
                pass
        return os.fstat(self.err.fileno()).st_size

    def read_from(self, start: int) -> str:
        end = self.flush_size()
        with open(self.err.name, "rb") as f:
            f.seek(start)
            return f.read(end - start).decode("utf-8", "replace")


def prepare(row: Row, base: Path) -> Path:
    tmp = base / row.id
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    if row.setup is not None:
        row.setup(tmp)
    return tmp


def drive(base: Path, ids: list[str] | None = None) -> dict[str, dict]:
    """Prepare and run the rows (all, or those named) in this process; the result of each."""
    import hybrid_sweep.config  # noqa: F401  (imports shared by every CLI, once)

    base.mkdir(parents=True, exist_ok=True)
    capture = Capture(base)
    results = {}
    for row in ROWS:
        if ids and row.id not in ids:
            continue
        try:
            tmp = prepare(row, base)
        except Exception as err:  # noqa: BLE001 - reported by the row's test
            results[row.id] = {"rc": None, "stderr": f"setup failed: {err!r}", "before": {}, "after": {}, "existed": []}
            continue
        before, existed, start = snapshot(tmp), existing(tmp), time.perf_counter()
        results[row.id] = {**run_in_process(row, tmp, capture), "before": before, "after": snapshot(tmp),
                           "existed": existed, "seconds": round(time.perf_counter() - start, 2)}
    return results


def run_as_process(row: Row, base: Path, env: dict | None = None) -> dict:
    """The same row as its own ``python -m`` process (a fresh folder under ``base``)."""
    tmp = prepare(row, base)
    before, existed = snapshot(tmp), existing(tmp)
    res = subprocess.run([sys.executable, "-m", row.cli, *row.argv(tmp)], cwd=tmp, capture_output=True, text=True,
                         env={**os.environ, **OFFLINE, **(env or {})}, timeout=300)
    return {"rc": res.returncode, "stderr": res.stderr, "before": before, "after": snapshot(tmp), "existed": existed}


if __name__ == "__main__":
    base_dir, out_file, *named = sys.argv[1:]
    Path(out_file).write_text(json.dumps(drive(Path(base_dir), named or None)))
