"""Options that had no test: early stopping (``train.patience``) and LAReQA's sentence-with-context
candidates (``eval.candidate_text=sentence_context``)."""

import json
import zlib

import numpy as np

from hybrid_sweep.evaluation.evaluator import evaluate_encoder
from hybrid_sweep.training import trainer
from tests.conftest import compose, make_lareqa_doc

FAST = ("encoder.progress=false", "train.batch_size=16", "train.val_batches=1", "encoder.tiny.hidden=32",
        "encoder.tiny.intermediate=64")


def test_patience_stops_after_that_many_evaluations_without_improvement_and_keeps_the_best(tmp_path):
    # a learning rate far too high: the validation loss stops improving within a few evaluations
    cfg = compose(*FAST, "train.max_steps=40", "train.eval_every=1", "train.save_every=100", "train.lr=0.5",
                  "train.warmup=0", "train.patience=2", config_name="train")
    summary = trainer.train(cfg, tmp_path)
    log = [json.loads(line) for line in (tmp_path / "train_log.jsonl").read_text().splitlines()]
    vals = [(r["step"] + 1, r["val_loss"]) for r in log if "val_loss" in r]
    assert summary["stopped_early"] and summary["steps"] < 40
    best_step, best = min(vals, key=lambda v: v[1])
    assert summary["best_step"] == best_step and abs(summary["best_val_loss"] - best) < 1e-9
    after = [v for s, v in vals if s > best_step]
    assert len(after) == 2 and all(v >= best for v in after)  # exactly `patience` evaluations without improvement
    assert summary["steps"] == vals[-1][0]  # it stopped at that evaluation


class RecordingEncoder:
    """Embeds each text by a hash of its words (deterministic), and remembers what it was given."""

    name, model = "recording", None

    def __init__(self):
        import torch

        self.device, self.texts = torch.device("cpu"), {}

    def encode(self, texts, kind, desc=None, **_):
        import torch

        self.texts[kind] = list(texts)
        out = np.zeros((len(texts), 64), dtype=np.float32)
        for i, t in enumerate(texts):
            for w in t.lower().replace("\n", " ").split():
                out[i, zlib.crc32(w.strip("?.").encode()) % 64] += 1.0
        out /= np.linalg.norm(out, axis=1, keepdims=True) + 1e-9
        return torch.from_numpy(out)


def test_sentence_context_candidates_carry_their_paragraph(tmp_path):
    from hybrid_sweep.data.benchmark import Benchmark
    from hybrid_sweep.data.lareqa import parse_lareqa

    paragraphs = [["Alpha one.", "Beta two."], ["Gamma three.", "Delta four."]]
    questions = [(0, 0, "q1", "alpha?"), (1, 1, "q2", "delta?")]
    docs = {lang: make_lareqa_doc(paragraphs, questions) for lang in ("en", "de")}
    bench = Benchmark("fixture", {lang: parse_lareqa(doc, lang, f"{lang}.json") for lang, doc in docs.items()})
    outs = {}
    for mode in ("sentence", "sentence_context"):
        enc = RecordingEncoder()
        outs[mode] = evaluate_encoder(bench, enc, candidate_text=mode, settings=("mono",), run_depth=None,
                                      output_dir=None, write_runs=(), tag="t", block=64).metrics
        cands = enc.texts["passage"]
        if mode == "sentence":
            assert "Beta two." in cands and not any("\n" in c for c in cands)
        else:  # each sentence followed by its whole paragraph, as LAReQA's own code builds candidates
            assert "Beta two.\nAlpha one. Beta two." in cands and all("\n" in c for c in cands)
    for mode, m in outs.items():  # both evaluate every language
        assert set(m.query_lang) == {"en", "de", "avg"}, mode
