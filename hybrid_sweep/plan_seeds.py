"""``python -m hybrid_sweep.plan_seeds``: seeds per level for a target power under the declared primary test.

From a pilot results root (its declared primary hypothesis; variance components estimated from it):

    python -m hybrid_sweep.plan_seeds <results_root> --effect 0.01 [--power 0.8] [--alpha 0.05] [--family K]

or from stated variance components (sd of the per-seed contrast values, e.g. of the per-seed differences;
optionally the condition x question sd and the number of questions):

    python -m hybrid_sweep.plan_seeds --sd-run 0.008 [--sd-question 0.05 --questions 80] --effect 0.01 --family 8

Prints the seeds per level needed and the minimum detectable effect at ``--seeds`` (or the root's seeds).
Model and check against simulation: hybrid_sweep/analysis/planner.py, tests/test_planner.py."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m hybrid_sweep.plan_seeds", description=__doc__.split("\n")[0])
    p.add_argument("root", nargs="?", help="pilot results root (with results.parquet and a declared study)")
    p.add_argument("--effect", type=float, help="effect to detect (default: the pilot's estimate)")
    p.add_argument("--power", type=float, default=0.8)
    p.add_argument("--alpha", type=float, default=0.05)
    p.add_argument("--family", type=int, help="tests in the primary family (default: the declaration's, else 1)")
    p.add_argument("--alternative", default="two-sided", choices=["two-sided", "greater", "less"])
    p.add_argument("--sd-run", type=float, help="sd of the per-seed contrast values (e.g. per-seed differences)")
    p.add_argument("--sd-question", type=float, default=0.0, help="condition x question effect sd")
    p.add_argument("--questions", type=int, default=0, help="question clusters in the benchmark")
    p.add_argument("--seeds", type=int, default=3, help="seeds per level for the minimum detectable effect")
    return p


def main(argv=None) -> None:
    args = _parser().parse_args(argv)
    from hybrid_sweep.analysis.planner import minimum_detectable_effect, plan_table, seeds_needed

    if not 0 < args.power < 1 or not 0 < args.alpha < 1:
        _fail("--power and --alpha must lie in (0, 1)")
    if args.root is None:
        if args.sd_run is None or args.effect is None:
            _fail("give a pilot results root, or --sd-run and --effect")
        if args.sd_run <= 0 or args.effect <= 0 or (args.sd_question > 0 and args.questions < 2):
            _fail("--sd-run and --effect must be > 0; --sd-question needs --questions >= 2")
        cluster_var = 2 * args.sd_question ** 2 / args.questions if args.sd_question > 0 else 0.0
        k = args.family or 1
        q = max(args.questions, 2)
        n = seeds_needed(args.effect, args.sd_run, cluster_var, args.power, args.alpha, k, args.alternative, clusters=q)
        mde = minimum_detectable_effect(args.seeds, args.sd_run, cluster_var, args.power, args.alpha, k, args.alternative, q)
        print(f"seeds per level for power {args.power} at effect {args.effect} (alpha {args.alpha}, family {k}): "
              f"{n if n is not None else 'none suffices (question-level variance caps the power)'}")
        print(f"minimum detectable effect with {args.seeds} seeds: {mde:.5g}")
        return
    root = Path(args.root)
    if not (root / "results.parquet").exists():
        _fail(f"{root}: no results.parquet")
    import pandas as pd

    from hybrid_sweep.analysis.primary import hypothesis_table
    from hybrid_sweep.analysis.study_report import declared_study
    from hybrid_sweep.analysis.tables import axis_info, per_query_frame
    from hybrid_sweep.errors import HybridSweepError

    try:
        study = declared_study(root)
        if study is None:
            _fail(f"{root}: results.parquet declares no primary hypothesis (study.primary in the sweep preset)")
        results = pd.read_parquet(root / "results.parquet")
        info = axis_info(root, results)
        per_query, _ = per_query_frame(root, results, list(dict.fromkeys([*info.axes, study.primary.axis])))
        table, notes = hypothesis_table(results, study.primary, per_query, args.alpha, info.log)
    except HybridSweepError as e:
        _fail(str(e))
    if table.p.notna().sum() == 0:
        _fail("the pilot has no tested primary contrast: " + "; ".join(notes or ["fewer than 3 runs a level?"]))
    plan = plan_table(table.dropna(subset=["p"]), args.power, args.effect, args.alpha, args.family)
    print(plan.round(6).to_string(index=False))


def _fail(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


if __name__ == "__main__":
    main()
