"""The evaluation engine: any RetrievalTask (BEIR / MTEB-layout / TREC folders, FLORES, and the LAReQA
pools of XQuAD-R, MLQA-R and the sandbox through ``data.benchmark.as_retrieval_task``) → metric rows as
trec_eval gives them, per-query rows, TREC run and qrels files.

Each table is encoded once. Per pool, each document's position in tie order (doc id descending) is its tie
key, so that "smaller key first" on equal scores is trec_eval's rule; the embeddings stay in stored order
(a memory-mapped store is searched in place, never copied: only a pool ranked fully is gathered, <=
full_rank_max rows). A pool of at most ``full_rank_max`` documents (every pool when it is None, as for
LAReQA) is scored fully in query blocks: the rank of every relevant document is exact, so AP and RR are
over the whole pool and rank distance is defined (``depth = "full"``). A larger pool goes through the
exact top-k search (``evaluation.topk``) to depth k = max(run_depth, 100): the metrics are then those of
trec_eval on the returned run (``depth = "top<k>"``) and rank distance is not reported. Run files
stream per block. A multilingual pool that holds the query language's own corpus also reports
``same_lang@10``, the share of the top 10 in the query's language (the LAReQA language-bias measure).
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from hybrid_sweep.data.retrieval_task import RetrievalTask, TaskPool
from hybrid_sweep.encoders.encoder import native_max_length  # noqa: F401 (re-exported)
from hybrid_sweep.errors import ConfigError, DataError
from hybrid_sweep.faults import fault_point
from hybrid_sweep.evaluation.cutoff_metrics import NOT_RETURNED, RECALL_KS, graded_metrics
from hybrid_sweep.evaluation.rows import FULL, EvalOutput, macro_rows, metric_rows, with_max_length
from hybrid_sweep.evaluation.ranking import relevant_ranks, tie_order, topk_tie_rule
from hybrid_sweep.evaluation.search import score_blocks
from hybrid_sweep.evaluation.topk import ConcatRows, iter_topk
from hybrid_sweep.evaluation.trec_io import pool_file, streaming_run, write_qrels
from hybrid_sweep.results_schema import ROW_COLUMNS

log = logging.getLogger(__name__)

TASK_METRICS = ("map", "mrr", "recall@1", "recall@5", "recall@10", "recall@100", "precision@1", "precision@5",
                "precision@10", "success@1", "success@5", "success@10", "ndcg@10")
SAME_LANG_K = 10


def encoding_length(task: RetrievalTask, encoder) -> int | None:
    """The max tokens the task is encoded at: ``task.max_length`` as given, ``"model"`` = the model's own
    limit (how MTEB encodes), None = the encoder's (its preset's ``max_length``)."""
    return resolve_length(task.max_length, encoder)


@contextmanager
def at_length(encoder, length: int | None):
    """The encoder encodes at ``length`` tokens inside the block (None: as it is), its own length after."""
    old = encoder.model.max_seq_length
    if length is not None:
        encoder.model.max_seq_length = int(length)
    try:
        yield
    finally:
        encoder.model.max_seq_length = old


def resolve_length(setting, encoder) -> int | None:
    """An ``eval.max_length`` value as tokens: a number, ``"model"`` (the model's position table), None
    (the encoder's current length)."""
    current = getattr(encoder.model, "max_seq_length", None)
    if setting is None:
        return current
    if setting == "model":
        return native_max_length(encoder.model) or current
    if isinstance(setting, bool) or not isinstance(setting, int) or setting < 1:
        raise ConfigError("eval.max_length", f"a number of tokens >= 1, model or null (got {setting!r})")
    return setting


def encode_task(task: RetrievalTask, encoder, store_root: Path | None = None, plan=None) -> tuple[dict, dict]:
    """Embeddings of every query set ("query: ") and corpus ("passage: "), each table encoded once, at
    :func:`encoding_length` tokens. With ``store_root``, corpora go through the on-disk embedding store
    (fp16, memory-mapped, shared by every run and setting that evaluates the same model on the same
    corpus; the max length is part of its key). With a ``plan`` (``evaluation.sharded``) a rank other
    than 0 only stores its shards of each corpus and gets empty dicts back."""
    with at_length(encoder, encoding_length(task, encoder)):
        if plan is not None and plan.rank != 0:
            for k in task.corpora if store_root is not None else ():
                _corpus_embeddings(task, k, encoder, store_root, plan)
            return {}, {}
        q = {k: encoder.encode(t.texts, "query", desc=f"{task.name} {k} queries") for k, t in task.query_sets.items()}
        d = {k: _corpus_embeddings(task, k, encoder, store_root, plan) for k in task.corpora}
    return q, d


def _corpus_embeddings(task: RetrievalTask, key, encoder, store_root: Path | None, plan=None):
    texts = task.corpora[key].passages()
    if store_root is None:
        return encoder.encode(texts, "passage", desc=f"{task.name} {key} corpus")
    from hybrid_sweep.evaluation.embedding_store import (EmbeddingStore, corpus_fingerprint, encoder_fingerprint,
                                                         shard_rows_for)

    store = EmbeddingStore(store_root)
    fp = corpus_fingerprint(task.corpora[key].ids, texts)
    return store.embeddings(encoder_fingerprint(encoder), fp, len(texts),
                            lambda a, b: encoder.encode(texts[a:b], "passage", desc=f"{task.name} {key} corpus"),
                            shard_rows=shard_rows_for(len(texts)), plan=plan)


def evaluate_task(task: RetrievalTask, encoder, store_root: Path | None = None, plan=None, **kwargs) -> EvalOutput:
    """Encode (:func:`encode_task`; rank 0 of a ``plan``) and evaluate; the rows record the max length used."""
    q, d = encode_task(task, encoder, store_root, plan)
    kwargs.setdefault("device", encoder.device)
    out = evaluate_task_embeddings(task, q, d, **kwargs)
    return with_max_length(out, encoding_length(task, encoder))


def evaluate_task_embeddings(task: RetrievalTask, q_emb: dict, d_emb: dict, *, run_depth: int | None = 100,
                             full_rank_max: int | None = 50_000, output_dir: Path | None = None, write_runs=True,
                             tag: str = "hybrid_sweep", block: int = 1024, device="cpu",
                             search_dtype: str = "float32") -> EvalOutput:
    """``q_emb`` / ``d_emb``: embeddings per query set / corpus key (tensors, arrays or memory-mapped
    stores). ``write_runs``: True / False, or the settings whose run files are written (as for LAReQA).
    ``full_rank_max`` None: every pool is ranked fully. ``search_dtype``: the precision top-k pools pick
    their candidates in before the fp32 re-score (``topk.exact_topk``'s ``compute_dtype``)."""
    rows, per_query = [], []
    for pool in task.pools:
        want_run = output_dir is not None and (write_runs is True or (write_runs and pool.setting in write_runs))
        res = _evaluate_pool(task, pool, q_emb, d_emb, run_depth, full_rank_max, output_dir if want_run else None,
                             tag, block, device, search_dtype)
        if res is None:
            continue
        rows.extend(res["rows"])
        per_query.append(res["per_query"])
        if output_dir is not None:
            write_qrels(pool_file(output_dir, "qrels", *_stem(task, pool)),
                        {q: pool.qrels[q] for q in res["per_query"]["query_id"]})
            fault_point("during_eval")  # some pools' files written, metrics not yet
    metrics = pd.DataFrame(rows, columns=ROW_COLUMNS)
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


def _stem(task: RetrievalTask, pool: TaskPool) -> tuple:
    return task.name, pool.setting, pool.query_lang, pool.doc_lang  # checked by trec_io.pool_file


def _pool_ids(task: RetrievalTask, pool: TaskPool) -> list[str]:
    """The pool's document ids in stored order (a single corpus: its own list, not a copy)."""
    if len(pool.corpora) == 1:
        return task.corpora[pool.corpora[0]].ids
    return [i for c in pool.corpora for i in task.corpora[c].ids]


def _tie_key(task: RetrievalTask, pool: TaskPool, ids: list[str]) -> np.ndarray:
    """Position of every stored document in tie order (doc id descending); one DataError on a repeat."""
    order = tie_order(ids)
    for a, b in zip(order[:-1], order[1:]):
        if ids[a] == ids[b]:
            raise DataError(task.name, f"pool {pool.query_lang}-{pool.doc_lang}: document id {ids[a]!r} appears "
                                       "twice in the pool's corpora")
    key = np.empty(len(ids), dtype=np.int64)
    key[order] = np.arange(len(ids), dtype=np.int64)
    return key


def _pool_rows(pool: TaskPool, d_emb: dict):
    """The pool's embeddings in stored order, searched in place: a memory-mapped store is not copied."""
    if len(pool.corpora) == 1:
        return d_emb[pool.corpora[0]]
    return ConcatRows([d_emb[c] for c in pool.corpora])


def _evaluate_pool(task, pool, q_emb, d_emb, run_depth, full_rank_max, run_dir, tag, block, device, search_dtype):
    table = task.query_sets[pool.queries]
    judged = [i for i, qid in enumerate(table.ids) if qid in pool.qrels]
    kept = [i for i in judged if any(g > 0 for g in pool.qrels[table.ids[i]].values())]
    n_skipped = len(judged) - len(kept)
    where = f"{task.name} {pool.setting} {pool.query_lang}-{pool.doc_lang}"
    if not kept:
        log.warning("%s: every query skipped (no relevant document)", where)
        return None
    ids = _pool_ids(task, pool)
    key = _tie_key(task, pool, ids)
    nd = len(ids)
    wanted = {d for i in kept for d, g in pool.qrels[table.ids[i]].items() if g > 0}
    stored = {d: j for j, d in enumerate(ids) if d in wanted}  # judged documents only, not a 1M-entry dict
    rel = [[(stored[d], g) for d, g in pool.qrels[table.ids[i]].items() if g > 0] for i in kept]
    n_rel = np.array([len(r) for r in rel], dtype=np.int64)
    width = int(n_rel.max())
    rel_rows = np.full((len(kept), width), -1, dtype=np.int64)  # stored row of each relevant document
    grades = np.zeros((len(kept), width), dtype=np.float64)
    for i, r in enumerate(rel):
        rel_rows[i, : len(r)] = [c for c, _ in r]
        grades[i, : len(r)] = [g for _, g in r]
    queries = torch.as_tensor(q_emb[pool.queries])[torch.as_tensor(kept, dtype=torch.int64)]
    qids = np.asarray(table.ids, dtype=object)[kept]
    full = full_rank_max is None or nd <= full_rank_max
    own_lang = _own_language_rows(task, pool)
    same_lang = [] if own_lang is not None else None
    k = min(max(run_depth or 0, max(RECALL_KS)), nd)
    run_k = min(run_depth or nd, nd) if full else min(run_depth or k, k)
    ranks = np.empty_like(rel_rows)
    path = pool_file(run_dir, "runs", *_stem(task, pool)) if run_dir is not None else None
    with (streaming_run(path, tag) if path else _no_run()) as write:
        if full:  # a pool small enough to score whole: its columns in tie order (a copy of <= full_rank_max rows)
            order = np.argsort(key)
            ids_sorted = np.asarray(ids, dtype=object)[order]
            rel_cols = np.where(rel_rows >= 0, key[np.maximum(rel_rows, 0)], -1)
            docs_dev = torch.as_tensor(np.asarray(_pool_rows(pool, d_emb)[order])).to(device, torch.float32)
            for rows, scores in score_blocks(queries, docs_dev, block):
                ranks[rows] = relevant_ranks(scores, torch.from_numpy(rel_cols[rows])).numpy()
                if write or same_lang is not None:
                    vals, top = topk_tie_rule(scores, max(run_k if write else 0, SAME_LANG_K if own_lang is not None else 0))
                    top = top.numpy()
                    if same_lang is not None:
                        same_lang.append(own_lang[order[top[:, :SAME_LANG_K]]].mean(1))
                    if write:
                        write(qids[rows], ids_sorted[top[:, :run_k]], vals[:, :run_k].numpy())
        else:  # the store searched in place, in stored order, with the tie order as the tie key
            id_array = np.asarray(ids, dtype=object) if write else None
            for start, vals, top in iter_topk(queries, _pool_rows(pool, d_emb), k, device=device, query_block=block,
                                              tie_key=key, compute_dtype=search_dtype):
                part = rel_rows[start: start + len(top)]
                hit = top[:, :, None] == part[:, None, :]  # (b, k, r)
                found = hit.any(1)
                ranks[start: start + len(top)] = np.where(found, hit.argmax(1) + 1, NOT_RETURNED)
                if same_lang is not None:
                    same_lang.append(own_lang[top[:, :SAME_LANG_K]].mean(1))
                if write:
                    write(qids[start: start + len(top)], id_array[top[:, :run_k]], vals[:, :run_k])
    ranks = np.where(rel_rows >= 0, ranks, NOT_RETURNED)
    m = graded_metrics(ranks, grades, n_rel, nd if full else k)
    depth = FULL if full else f"top{k}"
    multi = pool.setting == "multi"
    rd = m["rank_distance"]
    same = {"same_lang@10": np.concatenate(same_lang)} if same_lang else None
    out_rows = metric_rows((task.name, pool.setting, pool.query_lang, pool.doc_lang), m, task.metrics or TASK_METRICS,
                           len(kept), n_skipped, depth, rd if (multi and full) else None, same)
    pq = {  # columns; scalars stand for the whole pool (see _per_query_frame)
        "benchmark": task.name, "setting": pool.setting, "query_id": qids,
        "group": np.asarray([table.group_of(i) for i in kept], dtype=object), "query_lang": pool.query_lang,
        "doc_lang": pool.doc_lang, "ap": m["map"], "rr": m["mrr"],
        "first_rank": m["first_rank"].astype(np.int64) if full else m["first_rank"],  # exact when ranked fully
        "rank_distance": rd if (multi and full) else np.nan,
        "same_lang@10": same["same_lang@10"] if same else np.nan,
        "ndcg@10": m["ndcg@10"], "recall@100": m["recall@100"],
    }
    return {"rows": out_rows, "per_query": pq}


def _own_language_rows(task: RetrievalTask, pool: TaskPool) -> np.ndarray | None:
    """For a multilingual pool that holds the query language's corpus: per stored row, 1.0 where the
    document is in the query's language (for ``same_lang@10``); else None."""
    if pool.setting != "multi" or not any(task.corpora[c].lang == pool.query_lang for c in pool.corpora):
        return None
    return np.concatenate([np.full(len(task.corpora[c]), float(task.corpora[c].lang == pool.query_lang))
                           for c in pool.corpora])


class _no_run:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False
