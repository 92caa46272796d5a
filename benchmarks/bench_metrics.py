"""Metric computation for XQuAD-R from one score matrix vs pytrec_eval on the same runs.

Embeddings are random (dim 384, the speed does not depend on their quality). Ours: every pool of all
three settings (11 mono, 110 cross, 11 multi). pytrec_eval needs a full-ranking run dict per pool; it is
timed on all 11 mono pools, 11 of the 110 cross pools and 1 of the 11 multi pools (building the run dict
from the same scores, plus evaluating), values compared on each, and its total for all pools is
extrapolated per pool.
"""

from __future__ import annotations

import numpy as np
import pytrec_eval
import torch

from benchmarks.common import benchmark, machine, parser, timer
from hybrid_sweep.evaluation.evaluator import evaluate_embeddings


def pytrec_pool(pool, q_emb, c_emb, qids, cids):
    scores = (q_emb[torch.from_numpy(pool.queries)] @ c_emb[torch.from_numpy(pool.candidates)].T).numpy()
    docs = cids[pool.candidates]
    run = {qids[q]: dict(zip(docs, row.tolist())) for q, row in zip(pool.queries, scores)}
    qrels = {qids[q]: {cids[i]: 1 for i in r} for q, r in zip(pool.queries, pool.relevant)}
    res = pytrec_eval.RelevanceEvaluator(qrels, {"map", "recip_rank"}).evaluate(run)
    return np.array([res[qids[q]]["map"] for q in pool.queries])


def main(argv=None):
    args = parser(__doc__).parse_args(argv)
    bench = benchmark(args.smoke)
    g = torch.Generator().manual_seed(0)
    q_emb = torch.nn.functional.normalize(torch.randn(len(bench.all_questions()), 384, generator=g), dim=1)
    c_emb = torch.nn.functional.normalize(torch.randn(len(bench.all_candidates()), 384, generator=g), dim=1)
    qids = np.array([q.qid for q in bench.all_questions()], dtype=object)
    cids = np.array([c.cid for c in bench.all_candidates()], dtype=object)
    t: dict[str, float] = {}
    with timer(t, "ours"):
        out = evaluate_embeddings(bench, q_emb, c_emb, settings=("mono", "cross", "multi"))
    pq = out.per_query
    sample = {"mono": bench.pools("mono"), "cross": bench.pools("cross")[::10], "multi": bench.pools("multi")[:1]}
    totals = {s: len(bench.pools(s)) for s in sample}  # XQuAD-R: 11 mono, 110 cross, 11 multi
    est, worst = 0.0, 0.0
    for setting, pools in sample.items():
        for pool in pools:
            with timer(t, setting):
                ref = pytrec_pool(pool, q_emb, c_emb, qids, cids)
            ours = pq[(pq.setting == setting) & (pq.query_lang == pool.query_lang) & (pq.doc_lang == pool.doc_lang)]
            worst = max(worst, float(np.abs(ours.ap.to_numpy() - ref).max()))
        est += t[setting] / len(pools) * totals[setting]
    print(f"machine: {machine()}")
    print(f"ours, all {sum(totals.values())} pools of {bench.name}, every metric: {t['ours']:.2f} s")
    for s in sample:
        print(f"pytrec_eval {s}: {t[s]:.2f} s for {len(sample[s])} of {totals[s]} pools (map + recip_rank only)")
    print(f"pytrec_eval extrapolated to all pools: {est:.1f} s -> speed-up {est / t['ours']:.1f}x")
    print(f"max |AP ours - AP pytrec_eval| on the sampled pools: {worst:.2e}")
    return {"ours_s": t["ours"], "pytrec_eval_s": est, "max_ap_diff": worst, "pools": sum(totals.values())}


if __name__ == "__main__":
    main()
