"""Encode throughput: our Encoder.encode vs SentenceTransformer.encode, same model, texts and batch size.

Model: me5_small_q4 (12 layers, CPU). Texts: XQuAD-R questions and candidate sentences from four
languages (the first N of each). Two rounds with the order alternated; each side's faster round counts.
"""

from __future__ import annotations

import time

import torch

from benchmarks.common import benchmark, encoder_config, machine, parser
from hybrid_sweep.cli import quiet_libraries
from hybrid_sweep.encoders import build_encoder


def main(argv=None):
    ap = parser(__doc__)
    ap.add_argument("--questions", type=int, default=150, help="questions per language")
    ap.add_argument("--sentences", type=int, default=75, help="sentences per language")
    ap.add_argument("--batch-size", type=int, default=32)
    args = ap.parse_args(argv)
    quiet_libraries()
    bench = benchmark(args.smoke)
    langs = bench.langs[:4] if args.smoke else ["en", "de", "zh", "ar"]
    if args.smoke:
        args.questions, args.sentences, args.batch_size = 5, 5, 4
    sets = {
        "questions": ([q.text for lang in langs for q in bench.languages[lang].questions[: args.questions]], "query"),
        "sentences": ([c.text for lang in langs for c in bench.languages[lang].candidates[: args.sentences]], "passage"),
    }
    cfg = encoder_config("encoder=tiny" if args.smoke else "encoder=me5_small_q4", "encoder.device=cpu",
                         "encoder.progress=false", f"encoder.batch_size={args.batch_size}")
    enc = build_encoder(cfg, [t for texts, _ in sets.values() for t in texts])  # the tiny model's vocabulary
    enc.encode(sets["questions"][0][:32], "query")
    print(f"machine: {machine()}; batch size {args.batch_size}; max length {cfg.max_length}")
    cosines = {}
    for name, (texts, kind) in sets.items():
        prefix = enc.prefixes[kind]
        best = {"ours": float("inf"), "st": float("inf")}
        for round_ in range(2):  # alternate the order; keep each side's best round
            for side in (("ours", "st") if round_ == 0 else ("st", "ours")):
                t0 = time.perf_counter()
                if side == "ours":
                    ours = enc.encode(texts, kind)
                else:
                    theirs = enc.model.encode([prefix + t for t in texts], batch_size=args.batch_size,
                                              convert_to_tensor=True, normalize_embeddings=True, show_progress_bar=False)
                best[side] = min(best[side], time.perf_counter() - t0)
        cos = torch.nn.functional.cosine_similarity(ours, theirs.cpu()).min().item()
        print(f"{name}: {len(texts)} texts | ours {len(texts) / best['ours']:.1f}/s | SentenceTransformer.encode "
              f"{len(texts) / best['st']:.1f}/s | ours/ST throughput {best['st'] / best['ours']:.2f}x | min cosine {cos:.6f}")
        cosines[name] = cos
    return cosines

if __name__ == "__main__":
    main()
