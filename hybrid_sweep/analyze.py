"""``python -m hybrid_sweep.analyze <results_root>``: tables, figures, paired tests and report.md."""

from __future__ import annotations

import sys
from pathlib import Path


def main(argv=None) -> None:
    args = argv if argv is not None else sys.argv[1:]
    if len(args) != 1:
        print("usage: python -m hybrid_sweep.analyze <results_root>", file=sys.stderr)
        sys.exit(2)
    root = Path(args[0])
    if not (root / "results.parquet").exists():
        print(f"error: {root}: no results.parquet (run a sweep, or python -m hybrid_sweep.collect {root})",
              file=sys.stderr)
        sys.exit(2)
    from hybrid_sweep.analysis.report import analyze

    print(f"report: {analyze(root).resolve()}")


if __name__ == "__main__":
    main()
