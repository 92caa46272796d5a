"""LAReQA pooled benchmarks (XQuAD-R, MLQA-R, the synthetic sandbox) through the one evaluation engine.

The pools (setting x query language x doc language, method.md §4) become a generic task
(``data.benchmark.as_retrieval_task``: one corpus and one query table per language) and go through
``task_evaluator.evaluate_task_embeddings``, every pool ranked fully: the same tie rule, metrics, rows
and files as any other benchmark. What is LAReQA's own here: every question and every candidate is
encoded in one call each (the embeddings split per language afterwards), and its row set — no
precision@k, which a pool with one relevant answer per language makes a copy of recall@k.
"""

from __future__ import annotations

from pathlib import Path

import torch

from hybrid_sweep.data.benchmark import Benchmark, as_retrieval_task, candidate_texts  # noqa: F401 (re-exported)
from hybrid_sweep.evaluation.rows import EvalOutput, with_max_length
from hybrid_sweep.evaluation.task_evaluator import evaluate_task_embeddings

POOL_METRICS = ("map", "mrr", "recall@1", "recall@5", "recall@10", "recall@100",
                "success@1", "success@5", "success@10", "ndcg@10")


def evaluate_encoder(bench: Benchmark, encoder, candidate_text: str = "sentence", **kwargs) -> EvalOutput:
    """Encode the benchmark's questions ("query: ") and candidates ("passage: ") and evaluate them."""
    q_emb = encoder.encode([q.text for q in bench.all_questions()], "query", desc=f"{bench.name} queries")
    c_emb = encoder.encode(candidate_texts(bench, candidate_text), "passage", desc=f"{bench.name} candidates")
    kwargs.setdefault("device", encoder.device)
    return with_max_length(evaluate_embeddings(bench, q_emb, c_emb, candidate_text=candidate_text, **kwargs),
                           getattr(encoder.model, "max_seq_length", None))


def evaluate_embeddings(bench: Benchmark, q_emb: torch.Tensor, c_emb: torch.Tensor,
                        settings=("mono", "cross", "multi"), run_depth: int | None = 100,
                        output_dir: Path | None = None, write_runs=("mono", "multi"), tag: str = "hybrid_sweep",
                        block: int = 1024, device=None, candidate_text: str = "sentence") -> EvalOutput:
    """Rows of every pool of ``settings`` from embeddings of ``bench.all_questions()`` (``q_emb``) and
    ``bench.all_candidates()`` (``c_emb``), in that order. Run files (to ``run_depth``; None = the whole
    pool) for the settings in ``write_runs``; qrels files for every pool (both under ``output_dir``)."""
    task = as_retrieval_task(bench, settings, candidate_text, metrics=POOL_METRICS)
    q = _split(q_emb, [len(t) for t in task.query_sets.values()], task.query_sets)
    d = _split(c_emb, [len(t) for t in task.corpora.values()], task.corpora)
    return evaluate_task_embeddings(task, q, d, run_depth=run_depth, full_rank_max=None, output_dir=output_dir,
                                    write_runs=tuple(write_runs or ()), tag=tag, block=block,
                                    device=c_emb.device if device is None else device)


def _split(emb: torch.Tensor, sizes: list[int], keys) -> dict:
    if sum(sizes) != len(emb):
        raise ValueError(f"{len(emb)} embeddings for {sum(sizes)} texts")
    return dict(zip(keys, torch.split(torch.as_tensor(emb), sizes)))
