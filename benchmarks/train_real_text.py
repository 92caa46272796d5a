"""Training throughput on real text: one padded forward (``train.max_tokens=null``) against length-sorted
micro-batches (``train.max_tokens=N``), side by side in one process (used by ``bench_train --real-text``).

Rows: MLQA-R through the real sampler, as the real-data presets draw them (conf/sweep/real_rq1.yaml: all 21
unordered pairs, hybrid batches, one hard negative); encoder me5_small_q4 at the presets' 4 layers and max
length 64. Two recipes are built from the same config but ``train.max_tokens`` (same initial weights); every
step's batch is tokenised once and handed to both, which step in alternating order (so a noisy neighbour
slows both alike). The timed part is the trainer's own ``step`` + ``update`` (forward, backward, clipping,
fused AdamW, schedule), examples/s from the median step (the mean is kept too: neighbours' bursts on the
shared machine make single steps several times slower); tokenisation is not timed (the trainer does it
in the prefetch thread). Dropout is off so that the two loss curves must agree to fp tolerance.
``--smoke``: the tiny encoder on synthetic rows.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path

from hybrid_sweep.training import trainer
from hybrid_sweep.training.microbatch import join, plan_for
from tests.conftest import compose, shared_data_root

REAL = ("data=mlqa_r", "encoder=me5_small_q4", "encoder.layers=4", "encoder.max_length=64", "train=paper",
        "sampler.pair_kind=unordered", "sampler.pair_draw=per_seed", "sampler.mono_languages=all",
        "sampler.n_pairs=21", "train.lr=1e-4", "train.warmup=2")
SMOKE = ("encoder.tiny.hidden=32", "encoder.tiny.intermediate=64")
COMMON = ("encoder.progress=false", "encoder.device=cpu", "train.dropout=0", "train.eval_every=0",
          "train.val_batches=0")


def real_overrides() -> tuple:
    root = shared_data_root()
    if root is None:
        raise SystemExit("MLQA-R not found: set HYBRID_SWEEP_DATA (the folder holding lareqa/mlqa-r)")
    return (*REAL, f"paths.data_root={root}")


def recipe(overrides: tuple, batch: int, steps: int, max_tokens: int | None, out: Path) -> trainer.Recipe:
    cfg = compose(*overrides, *COMMON, f"train.batch_size={batch}", f"train.max_steps={steps}",
                  f"train.max_tokens={'null' if max_tokens is None else max_tokens}", config_name="train")
    return trainer.Recipe(cfg, out).setup()


def token_counts(prepared, max_tokens: int | None) -> tuple[int, int]:
    """(real tokens, processed token positions) of one step's inputs under this plan."""
    q, p, n = prepared.inputs
    real = processed = 0
    for x in (q, join(p, n)):
        real += sum(x.lengths)
        processed += sum(len(g) * max(x.lengths[i] for i in g) for g in plan_for(x, max_tokens))
    return real, processed


def compare(overrides: tuple, batch: int, max_tokens: int, steps: int, warmup: int = 1) -> dict:
    """Before (one padded forward) and after (``max_tokens``) on the same batches, alternating."""
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        runs = {"before": recipe(overrides, batch, warmup + steps, None, Path(tmp) / "a"),
                "after": recipe(overrides, batch, warmup + steps, max_tokens, Path(tmp) / "b")}
        times = {k: [] for k in runs}
        losses = {k: [] for k in runs}
        tokens = {k: [0, 0] for k in runs}
        for s in range(warmup + steps):
            prepared = runs["before"].prepare(runs["before"].sampler.batch_at(s))
            order = ["before", "after"] if s % 2 == 0 else ["after", "before"]
            for name in order:
                r = runs[name]
                start = time.perf_counter()
                loss = r.step(prepared)
                r.update()
                took = time.perf_counter() - start
                losses[name].append(loss.item())
                if s >= warmup:
                    times[name].append(took)
                    real, processed = token_counts(prepared, r.t.max_tokens)
                    tokens[name][0] += real
                    tokens[name][1] += processed
    ex_s = {k: batch / statistics.median(times[k]) for k in runs}  # the median: robust to a neighbour's burst
    mean_ex_s = {k: steps * batch / sum(times[k]) for k in runs}
    best_ex_s = {k: batch / min(times[k]) for k in runs}
    rel = max(abs(a - b) / abs(a) for a, b in zip(losses["before"], losses["after"]))
    return {"batch": batch, "max_tokens": max_tokens, "steps": steps,
            "before_ex_s": ex_s["before"], "after_ex_s": ex_s["after"], "speedup": ex_s["after"] / ex_s["before"],
            "before_ex_s_mean": mean_ex_s["before"], "after_ex_s_mean": mean_ex_s["after"],
            "before_ex_s_best": best_ex_s["before"], "after_ex_s_best": best_ex_s["after"],
            "before_padding": 1 - tokens["before"][0] / tokens["before"][1],
            "after_padding": 1 - tokens["after"][0] / tokens["after"][1],
            "loss_curve_max_rel_diff": rel, "losses_before": losses["before"], "losses_after": losses["after"],
            "loadavg_1m": [round(load_before[0], 2), round(os.getloadavg()[0], 2)]}


def table(rows: list[dict]) -> str:
    out = ["| batch | max_tokens | examples/s before (median / best / mean step) | after (median / best / mean) "
           "| speed-up (median) | padding before | padding after | loss curve max rel. diff "
           "| load avg (1 min, start / end) |",
           "|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        before = f"{r['before_ex_s']:.1f} / {r['before_ex_s_best']:.1f} / {r['before_ex_s_mean']:.1f}"
        after = f"{r['after_ex_s']:.1f} / {r['after_ex_s_best']:.1f} / {r['after_ex_s_mean']:.1f}"
        out.append(f"| {r['batch']} | {r['max_tokens']} | {before} | {after} | "
                   f"{r['speedup']:.2f}x | {100 * r['before_padding']:.0f} % | {100 * r['after_padding']:.1f} % | "
                   f"{r['loss_curve_max_rel_diff']:.1e} | {r['loadavg_1m'][0]} / {r['loadavg_1m'][1]} |")
    return "\n".join(out)
