"""Full XQuAD-R evaluation, one encoding pass vs per-pair re-encoding (as per-pair tools do).

Ours: encode each unique query and candidate once, then score all 132 pools. Per-pair: for each pool
(11 mono, 110 cross, 11 multi) encode that pool's queries and candidates again, then score; the scoring
code is shared, so the per-pair time is (sum of per-pool encoding) + (our scoring time).
Encoder: the tiny preset (random 2-layer BERT, CPU). A real encoder spends more per text, which only
widens the gap.
"""

from __future__ import annotations

from benchmarks.common import benchmark, encoder_config, machine, parser, timer
from hybrid_sweep.cli import quiet_libraries
from hybrid_sweep.encoders import build_encoder
from hybrid_sweep.evaluation.evaluator import evaluate_embeddings


def main(argv=None):
    args = parser(__doc__).parse_args(argv)
    quiet_libraries()
    bench = benchmark(args.smoke)
    questions, candidates = bench.all_questions(), bench.all_candidates()
    q_texts, c_texts = [q.text for q in questions], [c.text for c in candidates]
    cfg = encoder_config("encoder=tiny", "encoder.progress=false", "encoder.device=cpu")  # with the base settings
    encoder = build_encoder(cfg, q_texts + c_texts)
    t: dict[str, float] = {}
    with timer(t, "encode_once"):
        q_emb, c_emb = encoder.encode(q_texts, "query"), encoder.encode(c_texts, "passage")
    with timer(t, "score"):
        evaluate_embeddings(bench, q_emb, c_emb, settings=("mono", "cross", "multi"))
    n_texts = 0
    for setting in ("mono", "cross", "multi"):
        for pool in bench.pools(setting):
            with timer(t, "encode_per_pair"):
                encoder.encode([q_texts[i] for i in pool.queries], "query")
                encoder.encode([c_texts[i] for i in pool.candidates], "passage")
            n_texts += len(pool.queries) + len(pool.candidates)
    ours = t["encode_once"] + t["score"]
    per_pair = t["encode_per_pair"] + t["score"]
    print(f"machine: {machine()}")
    print(f"ours: encode {len(q_texts) + len(c_texts)} texts once {t['encode_once']:.1f} s + score {t['score']:.1f} s = {ours:.1f} s")
    print(f"per-pair: encode {n_texts} texts {t['encode_per_pair']:.1f} s + score {t['score']:.1f} s = {per_pair:.1f} s")
    print(f"speed-up {per_pair / ours:.1f}x")
    return {"ours_s": ours, "per_pair_s": per_pair, "texts_once": len(q_texts) + len(c_texts), "texts_per_pair": n_texts}


if __name__ == "__main__":
    main()
