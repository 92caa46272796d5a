"""Evaluate any RetrievalTask: encode each table once, search every pool, metrics as trec_eval gives them.

Per pool, documents are put in tie order (doc id descending) so that "smaller index first" on equal
scores is trec_eval's rule. A pool of at most ``full_rank_max`` documents is scored fully in query
blocks: the rank of every relevant document is exact, so AP and RR are over the whole pool and rank
distance is defined (``depth = "full"``). A larger pool goes through the exact top-k search
(``evaluation.topk``) to depth k = max(run_depth, 100): the metrics are then those of trec_eval on the
returned run (``depth = "top<k>"``) and rank distance is not reported. Run files stream per block.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from hybrid_sweep.data.retrieval_task import RetrievalTask, TaskPool
from hybrid_sweep.errors import DataError
from hybrid_sweep.evaluation.cutoff_metrics import NOT_RETURNED, RECALL_KS, graded_metrics
from hybrid_sweep.evaluation.evaluator import EvalOutput, macro_rows
from hybrid_sweep.evaluation.ranking import relevant_ranks, tie_order, topk_tie_rule
from hybrid_sweep.evaluation.search import score_blocks
from hybrid_sweep.evaluation.topk import iter_topk
from hybrid_sweep.evaluation.trec_io import streaming_run, write_qrels

log = logging.getLogger(__name__)

TASK_METRICS = ("map", "mrr", "recall@1", "recall@5", "recall@10", "recall@100", "precision@1", "precision@5",
                "precision@10", "success@1", "success@5", "success@10", "ndcg@10")
MULTI_POOL = "all"
COLUMNS = ["benchmark", "setting", "query_lang", "doc_lang", "metric", "value", "n_queries", "n_skipped", "depth"]


def encode_task(task: RetrievalTask, encoder, store_root: Path | None = None) -> tuple[dict, dict]:
    """Embeddings of every query set ("query: ") and corpus ("passage: "), each table encoded once.
    With ``store_root``, corpora go through the on-disk embedding store (fp16, memory-mapped, shared by
    every run and setting that evaluates the same model on the same corpus)."""
    old = encoder.model.max_seq_length
    if task.max_length is not None:
        encoder.model.max_seq_length = int(task.max_length)
    try:
        q = {k: encoder.encode(t.texts, "query", desc=f"{task.name} {k} queries") for k, t in task.query_sets.items()}
        d = {k: _corpus_embeddings(task, k, encoder, store_root) for k in task.corpora}
    finally:
        encoder.model.max_seq_length = old
    return q, d


def _corpus_embeddings(task: RetrievalTask, key, encoder, store_root: Path | None):
    texts = task.corpora[key].passages()
    if store_root is None:
        return encoder.encode(texts, "passage", desc=f"{task.name} {key} corpus")
    from hybrid_sweep.evaluation.embedding_store import EmbeddingStore, corpus_fingerprint, encoder_fingerprint

    store = EmbeddingStore(store_root)
    fp = corpus_fingerprint(task.corpora[key].ids, texts)
    return store.embeddings(encoder_fingerprint(encoder), fp, len(texts),
                            lambda a, b: encoder.encode(texts[a:b], "passage", desc=f"{task.name} {key} corpus"))


def evaluate_task(task: RetrievalTask, encoder, store_root: Path | None = None, **kwargs) -> EvalOutput:
    q, d = encode_task(task, encoder, store_root)
    kwargs.setdefault("device", encoder.device)
    return evaluate_task_embeddings(task, q, d, **kwargs)


def evaluate_task_embeddings(task: RetrievalTask, q_emb: dict, d_emb: dict, *, run_depth: int | None = 100,
                             full_rank_max: int = 50_000, output_dir: Path | None = None, write_runs=True,
                             tag: str = "hybrid_sweep", block: int = 1024, device="cpu") -> EvalOutput:
    """``write_runs``: True / False, or the settings whose run files are written (as for LAReQA)."""
    rows, per_query = [], []
    for pool in task.pools:
        want_run = output_dir is not None and (write_runs is True or (write_runs and pool.setting in write_runs))
        res = _evaluate_pool(task, pool, q_emb, d_emb, run_depth, full_rank_max, output_dir if want_run else None,
                             tag, block, device)
        if res is None:
            continue
        rows.extend(res["rows"])
        per_query.append(res["per_query"])
        if output_dir is not None:
            write_qrels(Path(output_dir) / "qrels" / f"{_stem(task, pool)}.qrels",
                        {q: pool.qrels[q] for q in res["per_query"]["query_id"]})
    metrics = pd.DataFrame(rows, columns=COLUMNS)
    metrics = pd.concat([metrics, macro_rows(metrics)], ignore_index=True)
    return EvalOutput(metrics, _per_query_frame(per_query))


def _per_query_frame(parts: list[dict]) -> pd.DataFrame:
    """One DataFrame from every pool's columns (a DataFrame per pool costs ~0.1 MB each: 4 GB for FLORES'
    42,025 pools); a scalar is that pool's value for every query. A column that is scalar in every pool is
    repeated once over all pools, not expanded per pool (240 MB less at 10,000 FLORES pools)."""
    if not parts:
        return pd.DataFrame()
    sizes = [len(p["query_id"]) for p in parts]
    columns = {}
    for name in parts[0]:
        values = [p[name] for p in parts]
        if all(np.isscalar(v) or v is None for v in values):
            columns[name] = np.repeat(np.asarray(values, dtype=object if isinstance(values[0], str) else None), sizes)
        else:
            columns[name] = np.concatenate([np.full(n, v) if np.isscalar(v) else np.asarray(v)
                                            for v, n in zip(values, sizes)])
    return pd.DataFrame(columns)


def _stem(task: RetrievalTask, pool: TaskPool) -> str:
    return f"{task.name}/{pool.setting}/{pool.query_lang}-{pool.doc_lang}"


def _pool_docs(task: RetrievalTask, pool: TaskPool, d_emb: dict):
    ids = [i for c in pool.corpora for i in task.corpora[c].ids]
    order = tie_order(ids)
    ids_sorted = np.asarray(ids, dtype=object)[order]
    if len(set(ids)) != len(ids):
        raise DataError(task.name, f"pool {pool.query_lang}-{pool.doc_lang}: a document id appears in two corpora")
    docs = torch.cat([torch.as_tensor(d_emb[c]) for c in pool.corpora])[torch.from_numpy(order)]
    return ids_sorted, docs


def _evaluate_pool(task, pool, q_emb, d_emb, run_depth, full_rank_max, run_dir, tag, block, device):
    table = task.query_sets[pool.queries]
    judged = [i for i, qid in enumerate(table.ids) if qid in pool.qrels]
    kept = [i for i in judged if any(g > 0 for g in pool.qrels[table.ids[i]].values())]
    n_skipped = len(judged) - len(kept)
    where = f"{task.name} {pool.setting} {pool.query_lang}-{pool.doc_lang}"
    if not kept:
        log.warning("%s: every query skipped (no relevant document)", where)
        return None
    ids_sorted, docs = _pool_docs(task, pool, d_emb)
    nd = len(ids_sorted)
    position = {d: j for j, d in enumerate(ids_sorted)}
    rel = [[(position[d], g) for d, g in pool.qrels[table.ids[i]].items() if g > 0] for i in kept]
    n_rel = np.array([len(r) for r in rel], dtype=np.int64)
    width = int(n_rel.max())
    rel_cols = np.full((len(kept), width), -1, dtype=np.int64)
    grades = np.zeros((len(kept), width), dtype=np.float64)
    for i, r in enumerate(rel):
        rel_cols[i, : len(r)] = [c for c, _ in r]
        grades[i, : len(r)] = [g for _, g in r]
    queries = torch.as_tensor(q_emb[pool.queries])[torch.as_tensor(kept, dtype=torch.int64)]
    qids = np.asarray(table.ids, dtype=object)[kept]
    full = nd <= full_rank_max
    k = min(max(run_depth or 0, max(RECALL_KS)), nd)
    run_k = min(run_depth or nd, nd) if full else min(run_depth or k, k)
    ranks = np.empty_like(rel_cols)
    path = Path(run_dir) / "runs" / f"{_stem(task, pool)}.trec" if run_dir is not None else None
    with (streaming_run(path, tag) if path else _no_run()) as write:
        if full:
            docs_dev = docs.to(device, torch.float32)
            for rows, scores in score_blocks(queries, docs_dev, block):
                ranks[rows] = relevant_ranks(scores, torch.from_numpy(rel_cols[rows])).numpy()
                if write:
                    vals, top = topk_tie_rule(scores, run_k)
                    write(qids[rows], ids_sorted[top.numpy()], vals.numpy())
        else:
            for start, vals, top in iter_topk(queries, docs, k, device=device, query_block=block):
                part = rel_cols[start: start + len(top)]
                hit = top[:, :, None] == part[:, None, :]  # (b, k, r)
                found = hit.any(1)
                ranks[start: start + len(top)] = np.where(found, hit.argmax(1) + 1, NOT_RETURNED)
                if write:
                    write(qids[start: start + len(top)], ids_sorted[top[:, :run_k]], vals[:, :run_k])
    ranks = np.where(rel_cols >= 0, ranks, NOT_RETURNED)
    m = graded_metrics(ranks, grades, n_rel, nd if full else k)
    depth = "full" if full else f"top{k}"
    names = TASK_METRICS
    multi = pool.setting == "multi"
    rd = m["rank_distance"]
    out_rows = [(task.name, pool.setting, pool.query_lang, pool.doc_lang, name, float(np.mean(m[name])),
                 len(kept), n_skipped, depth) for name in names]
    if multi and full:
        counted = ~np.isnan(rd)
        if counted.any():
            out_rows.append((task.name, pool.setting, pool.query_lang, pool.doc_lang, "rank_distance",
                             float(rd[counted].mean()), int(counted.sum()), n_skipped, depth))
        out_rows.append((task.name, pool.setting, pool.query_lang, pool.doc_lang, "rank_distance_excluded",
                         float((~counted).sum()), len(kept), n_skipped, depth))
    pq = {  # columns; scalars stand for the whole pool (see _per_query_frame)
        "benchmark": task.name, "setting": pool.setting, "query_id": qids,
        "group": np.asarray([table.group_of(i) for i in kept], dtype=object), "query_lang": pool.query_lang,
        "doc_lang": pool.doc_lang, "ap": m["map"], "rr": m["mrr"], "first_rank": m["first_rank"],
        "rank_distance": rd if (multi and full) else np.nan, "same_lang@10": np.nan,
        "ndcg@10": m["ndcg@10"], "recall@100": m["recall@100"],
    }
    return {"rows": out_rows, "per_query": pq}


class _no_run:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False
