"""Evaluate embeddings on a benchmark's pooled settings and produce tidy rows.

Encode every unique query and candidate text once, then for each pool (setting x query language x doc
language) score its queries against its candidates in row blocks, rank the relevant candidates under the
trec_eval tie rule, and turn ranks into metrics. Writes (optionally) TREC run and qrels files.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from hybrid_sweep.data.benchmark import MULTI_POOL, Benchmark, Pool
from hybrid_sweep.encoders.encoder import Encoder
from hybrid_sweep.evaluation.metrics import metrics_from_ranks
from hybrid_sweep.evaluation.ranking import relevant_ranks, tie_order, topk_tie_rule
from hybrid_sweep.evaluation.search import score_blocks
from hybrid_sweep.evaluation.trec_io import pool_file, write_qrels, write_run
from hybrid_sweep.faults import fault_point
from hybrid_sweep.results_schema import ROW_COLUMNS

log = logging.getLogger(__name__)

POOL_METRICS = ("map", "mrr", "recall@1", "recall@5", "recall@10", "recall@100",
                "success@1", "success@5", "success@10", "ndcg@10")
MULTI_METRICS = ("rank_distance", "same_lang@10", "rank_distance_excluded")
# rank_distance (max - min rank of the relevant set) is averaged over the queries with >= 2 relevant
# candidates in the pool; rank_distance_excluded counts the others (a subset can cut a group to one item)
COUNT_METRICS = ("rank_distance_excluded",)  # counts: the macro row sums them
FULL = "full"  # the `depth` column: metrics from the full ranking of the pool
SAME_LANG_K = 10


@dataclass
class EvalOutput:
    metrics: pd.DataFrame  # long: benchmark, setting, query_lang, doc_lang, metric, value, n_queries, n_skipped, depth
    per_query: pd.DataFrame  # benchmark, setting, query_id, group, query_lang, doc_lang, ap, rr, first_rank, ...


def candidate_texts(bench: Benchmark, mode: str) -> list[str]:
    if mode == "sentence":
        return [c.text for c in bench.all_candidates()]
    if mode == "sentence_context":
        return [f"{c.text}\n{c.context}" for c in bench.all_candidates()]
    raise ValueError(f"eval.candidate_text: unknown mode {mode!r}; use 'sentence' or 'sentence_context'")


def evaluate_encoder(bench: Benchmark, encoder: Encoder, candidate_text: str = "sentence", **kwargs) -> EvalOutput:
    q_emb = encoder.encode([q.text for q in bench.all_questions()], "query", desc=f"{bench.name} queries")
    c_emb = encoder.encode(candidate_texts(bench, candidate_text), "passage", desc=f"{bench.name} candidates")
    if encoder.device.type == "cuda":
        q_emb, c_emb = q_emb.to(encoder.device), c_emb.to(encoder.device)
    return with_max_length(evaluate_embeddings(bench, q_emb, c_emb, **kwargs),
                           getattr(encoder.model, "max_seq_length", None))


def with_max_length(out: EvalOutput, max_length: int | None) -> EvalOutput:
    """The metric rows with the encoder's max tokens (``max_length``, nullable integer) as a column."""
    out.metrics["max_length"] = pd.array([max_length] * len(out.metrics), dtype="Int64")
    return out


def evaluate_embeddings(
    bench: Benchmark,
    q_emb: torch.Tensor,
    c_emb: torch.Tensor,
    settings=("mono", "cross", "multi"),
    run_depth: int | None = 100,
    output_dir: Path | None = None,
    write_runs=("mono", "multi"),
    tag: str = "hybrid_sweep",
    block: int = 1024,
) -> EvalOutput:
    questions, candidates = bench.all_questions(), bench.all_candidates()
    qids = np.array([q.qid for q in questions], dtype=object)
    cids = np.array([c.cid for c in candidates], dtype=object)
    cand_lang = torch.from_numpy(bench.candidate_langs())
    lang_index = {lang: i for i, lang in enumerate(bench.langs)}
    tie_cache: dict[str, np.ndarray] = {}
    rows, per_query = [], []
    for setting in settings:
        for pool in bench.pools(setting):
            if pool.doc_lang not in tie_cache:
                tie_cache[pool.doc_lang] = pool.candidates[tie_order(list(cids[pool.candidates]))]
            cols = tie_cache[pool.doc_lang]
            want_run = output_dir is not None and setting in write_runs
            res = _score_pool(pool, q_emb, c_emb, cols, cand_lang, lang_index[pool.query_lang],
                              run_depth if want_run else None, want_run, block)
            per_query.append(_per_query_frame(bench.name, pool, qids, questions, res))
            rows.extend(_pool_rows(bench.name, pool, res))
            if output_dir is not None:
                stem = (bench.name, setting, pool.query_lang, pool.doc_lang)  # checked parts (io.inside)
                write_qrels(pool_file(output_dir, "qrels", *stem),
                            {qids[q]: list(cids[r]) for q, r in zip(pool.queries, pool.relevant)})
                if want_run and res:  # a pool with every query skipped has no run
                    top_scores, top_cols = res["top"]
                    depth = top_cols.shape[1]
                    write_run(pool_file(output_dir, "runs", *stem),
                              np.repeat(qids[pool.queries], depth), cids[cols[top_cols.numpy()]].ravel(),
                              np.tile(np.arange(1, depth + 1), len(pool.queries)), top_scores.numpy().ravel(), tag)
                fault_point("during_eval")  # some pools' files written, metrics not yet
    metrics = pd.DataFrame(rows, columns=ROW_COLUMNS)
    metrics = pd.concat([metrics, macro_rows(metrics)], ignore_index=True)
    pq = pd.concat(per_query, ignore_index=True) if per_query else pd.DataFrame()
    return EvalOutput(metrics, pq)


def _score_pool(pool: Pool, q_emb, c_emb, cols, cand_lang, query_lang_id, run_depth, want_run, block) -> dict:
    n = len(pool.queries)
    if n == 0:
        return {}
    position = np.full(int(cols.max()) + 1 if len(cols) else 0, -1, dtype=np.int64)
    position[cols] = np.arange(len(cols))
    width = max((len(r) for r in pool.relevant), default=1)
    rel_cols = torch.full((n, width), -1, dtype=torch.int64)
    for i, r in enumerate(pool.relevant):
        rel_cols[i, : len(r)] = torch.from_numpy(position[r])
    n_rel = torch.tensor([len(r) for r in pool.relevant], dtype=torch.int64)
    docs = c_emb[torch.from_numpy(cols).to(c_emb.device)]
    multi = pool.doc_lang == MULTI_POOL
    parts: dict[str, list] = {}
    depth = len(cols) if run_depth is None else run_depth
    for rows, scores in score_blocks(q_emb[torch.from_numpy(pool.queries).to(q_emb.device)], docs, block):
        ranks = relevant_ranks(scores, rel_cols[rows])
        for name, values in metrics_from_ranks(ranks, n_rel[rows]).items():
            parts.setdefault(name, []).append(values)
        if multi or want_run:
            k = max(depth if want_run else 0, SAME_LANG_K if multi else 0)
            vals, top = topk_tie_rule(scores, k)
            if multi:
                same = cand_lang[torch.from_numpy(cols)[top[:, :SAME_LANG_K]]] == query_lang_id
                parts.setdefault("same_lang@10", []).append(same.double().mean(1))
            if want_run:
                parts.setdefault("top_scores", []).append(vals[:, :depth])
                parts.setdefault("top_cols", []).append(top[:, :depth])
    res = {k: torch.cat(v) for k, v in parts.items()}
    if want_run:
        res["top"] = (res.pop("top_scores"), res.pop("top_cols"))
    return res


def _per_query_frame(bench_name: str, pool: Pool, qids, questions, res) -> pd.DataFrame:
    if not len(pool.queries):
        return pd.DataFrame()
    multi = pool.doc_lang == MULTI_POOL
    return pd.DataFrame({
        "benchmark": bench_name, "setting": pool.setting,
        "query_id": qids[pool.queries], "group": [questions[i].group for i in pool.queries],
        "query_lang": pool.query_lang, "doc_lang": pool.doc_lang,
        "ap": res["map"].numpy(), "rr": res["mrr"].numpy(), "first_rank": res["first_rank"].numpy().astype(np.int64),
        "rank_distance": _rank_distance(res, pool) if multi else np.nan,
        "same_lang@10": res["same_lang@10"].numpy() if multi else np.nan,
    })


def _pool_rows(bench_name: str, pool: Pool, res) -> list[tuple]:
    n = len(pool.queries)
    if n == 0:
        log.warning("%s %s %s-%s: every query skipped (no relevant candidate in the pool)",
                    bench_name, pool.setting, pool.query_lang, pool.doc_lang)
        return []
    multi = pool.doc_lang == MULTI_POOL
    return metric_rows((bench_name, pool.setting, pool.query_lang, pool.doc_lang),
                       {m: res[m].numpy() for m in POOL_METRICS}, POOL_METRICS, n, pool.n_skipped, FULL,
                       _rank_distance(res, pool) if multi else None,
                       {"same_lang@10": res["same_lang@10"].numpy()} if multi else None)


def metric_rows(key: tuple, values: dict, names, n: int, n_skipped: int, depth: str,
                rank_distance: np.ndarray | None = None, extra: dict | None = None) -> list[tuple]:
    """The metric rows of one pool (``key`` = benchmark, setting, query_lang, doc_lang), shared by both
    evaluators: the mean of each named per-query metric; with ``rank_distance`` (per query, NaN where not
    defined) its mean over the queries it is defined for, then ``extra`` metrics, then the count of
    queries left out of the rank distance (``rank_distance_excluded``)."""
    rows = [(*key, name, float(np.mean(values[name])), n, n_skipped, depth) for name in names]
    if rank_distance is not None:
        counted = ~np.isnan(rank_distance)
        if counted.any():
            rows.append((*key, "rank_distance", float(rank_distance[counted].mean()), int(counted.sum()),
                         n_skipped, depth))
        rows.extend((*key, name, float(np.mean(v)), n, n_skipped, depth) for name, v in (extra or {}).items())
        rows.append((*key, "rank_distance_excluded", float((~counted).sum()), n, n_skipped, depth))
    return rows


def _rank_distance(res, pool: Pool) -> np.ndarray:
    """Per query; NaN where fewer than 2 relevant candidates are in the pool (distance 0 by construction)."""
    n_rel = np.array([len(r) for r in pool.relevant])
    return np.where(n_rel >= 2, res["rank_distance"].numpy(), np.nan)


def macro_rows(metrics: pd.DataFrame) -> pd.DataFrame:
    """Macro average over the pools of each (benchmark, setting, metric): query_lang = 'avg'. Count metrics
    are summed; ``depth`` is the pools' depth, or 'mixed' where they differ."""
    if metrics.empty:
        return metrics
    g = metrics.groupby(["benchmark", "setting", "metric"], sort=False)
    out = g.agg(value=("value", "mean"), total=("value", "sum"), n_queries=("n_queries", "sum"),
                n_skipped=("n_skipped", "sum"), depth=("depth", lambda d: d.iloc[0] if d.nunique() == 1 else "mixed"),
                multi=("doc_lang", lambda d: (d == MULTI_POOL).all())).reset_index()
    out["value"] = np.where(out.metric.isin(COUNT_METRICS), out["total"], out["value"])
    out["query_lang"] = "avg"
    out["doc_lang"] = np.where(out["multi"], MULTI_POOL, "avg")
    return out[metrics.columns]
