"""RQ2's batch mix as a mixture design (hybrid_sweep/analysis/mixture.py): with a fabricated truth where only
the mixed share matters, the marginal slopes on the shares (the former analysis) show mono and cross
"effects"; the mixture fit does not."""

from __future__ import annotations

import numpy as np
import pandas as pd

from hybrid_sweep.analysis.mixture import compositional_axes, mixture_table
from hybrid_sweep.analysis.stats import ols_slope

MIXES = {"mono": (1, 0, 0), "m75_c25": (0.75, 0.25, 0), "hybrid": (0.5, 0.5, 0), "m25_c75": (0.25, 0.75, 0),
         "cross": (0, 1, 0), "mixed": (0, 0, 1), "thirds": (0.34, 0.33, 0.33)}
SHARES = ["ratio_mono", "ratio_cross", "ratio_mixed"]


def mix_results(rng, seeds: int = 3, mixed_effect: float = 0.03, run_sd: float = 0.006) -> pd.DataFrame:
    """Macro-average rows of the seven mixes of conf/sweep/mix_ratio.yaml; truth: value = .5 + mixed_effect ·
    mixed share, a seed effect shared by every mix, and run noise."""
    seed_effect = rng.normal(0, run_sd, seeds)
    rows = []
    for label, (m, c, x) in MIXES.items():
        for s in range(seeds):
            rows.append({"benchmark": "bench", "setting": "mono", "metric": "map", "query_lang": "avg", "doc_lang": "avg",
                         "run_id": f"{label}-{s}", "sampler": label, "ratio_mono": m, "ratio_cross": c, "ratio_mixed": x,
                         "seed": s, "value": 0.5 + mixed_effect * x + seed_effect[s] + rng.normal(0, run_sd)})
    zero_shot = {"benchmark": "bench", "setting": "mono", "metric": "map", "query_lang": "avg", "doc_lang": "avg",
                 "run_id": "zs", "sampler": "zero-shot", "ratio_mono": np.nan, "ratio_cross": np.nan,
                 "ratio_mixed": np.nan, "seed": None, "value": 0.4}
    return pd.DataFrame([*rows, zero_shot])


def test_only_the_mixed_share_matters_no_spurious_mono_or_cross_effect():
    spurious, found, wrong = 0, 0, 0
    for trial in range(40):
        results = mix_results(np.random.default_rng(trial))
        assert compositional_axes(results, [*SHARES, "n_pairs"]) == SHARES
        table = mixture_table(results, SHARES).set_index("swap")
        wrong += table.loc["ratio_mono − ratio_cross", "p"] < 0.05
        found += (table.loc["ratio_cross − ratio_mixed", "p"] < 0.05) and table.loc["ratio_cross − ratio_mixed", "estimate"] < 0
        runs = results.dropna(subset=SHARES)
        marginal = [ols_slope(runs[a], runs.value, log=False)["p"] for a in ("ratio_mono", "ratio_cross")]
        spurious += min(marginal) < 0.05
    assert wrong <= 5  # mono vs cross: a true null (5 % of 40 = 2 expected)
    assert found >= 30  # the mixed share's effect is found
    assert spurious >= 20  # the former marginal slopes report mono / cross effects that do not exist
    table = mixture_table(mix_results(np.random.default_rng(0), mixed_effect=0.0), SHARES)
    assert set(table.swap) == {"ratio_mono − ratio_cross", "ratio_mono − ratio_mixed", "ratio_cross − ratio_mixed"}
    assert table.test.str.startswith("paired t on per-seed contrast values").all()


def test_shares_that_do_not_sum_to_one_are_not_a_mixture():
    results = mix_results(np.random.default_rng(1))
    results["ratio_mixed"] = results.ratio_mixed / 2
    assert compositional_axes(results, SHARES) == []
    assert compositional_axes(results, ["ratio_mono"]) == []
