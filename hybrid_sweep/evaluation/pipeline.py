"""The evaluation pipeline behind ``python -m hybrid_sweep.evaluate`` and a sweep's evaluation stage:
load the benchmark named by ``eval``, build the encoder (unless given), evaluate it and write the results.

Writes into ``output_dir``: runs/ and qrels/ (TREC), per_query.parquet, language_groups.parquet (by
resource class, seen / unseen), metrics.csv, config.yaml (the resolved config) and, last,
metrics.parquet: its presence means the evaluation finished.

Under torchrun (a ``plan`` from ``evaluation.sharded.rank_group``), every rank encodes its share of each
corpus that goes through the embedding store; rank 0 evaluates and writes, the other ranks write nothing
and get None back.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from omegaconf import DictConfig, OmegaConf

from hybrid_sweep.data.benchmark_loading import load_eval_benchmark, load_retrieval_tasks
from hybrid_sweep.errors import ConfigError

if TYPE_CHECKING:  # torch / sentence-transformers load lazily so config errors surface fast
    import pandas as pd

    from hybrid_sweep.encoders import Encoder
    from hybrid_sweep.evaluation.rows import EvalOutput

log = logging.getLogger(__name__)
SUMMARY_METRICS = ["map", "mrr", "recall@10", "ndcg@10", "rank_distance", "same_lang@10"]


def run_evaluation(cfg: DictConfig, output_dir: Path | None = None, encoder: Encoder | None = None,
                   train_languages=None, store_root: Path | None = None, plan=None) -> EvalOutput | None:
    """Load the benchmark, build the encoder (unless given), evaluate, and write results.

    ``eval.kind`` picks the path: ``pooled`` (LAReQA / synthetic pools), ``retrieval`` (corpus, queries,
    qrels: BEIR / MTEB-layout / TREC) or ``flores``. ``train_languages`` (the run's fine-tuning languages,
    None for zero-shot) labels languages seen / unseen in ``language_groups.parquet``; ``mteb`` runs MTEB
    tasks through the bridge. ``store_root``: the embedding store's folder, used where
    ``eval.embedding_store`` is true (default ``<output_dir>/embeddings``). ``plan``: this rank's
    share of a sharded encoding (None in one process); ranks other than 0 return None.
    """
    cfg = typed_eval(cfg)
    kind = cfg.eval.kind
    if plan is not None and plan.rank != 0:
        if _uses_store(cfg.eval):
            _tasks(cfg, output_dir, encoder, _store_root(store_root, output_dir), plan)
        return None
    if kind == "pooled":
        out, enc_name = _pooled(cfg, output_dir, encoder)
    elif kind == "mteb":
        out, enc_name = _mteb(cfg, output_dir, encoder)
    else:
        store = _store_root(store_root, output_dir) if _uses_store(cfg.eval) else None
        out, enc_name = _tasks(cfg, output_dir, encoder, store, plan if store is not None else None)
    if output_dir is not None:
        from hybrid_sweep.evaluation.language_groups import language_groups
        from hybrid_sweep.io import write_csv, write_parquet, write_text

        write_parquet(output_dir / "per_query.parquet", out.per_query)
        write_parquet(output_dir / "language_groups.parquet", language_groups(out.metrics, train_languages))
        write_csv(output_dir / "metrics.csv", out.metrics)
        write_text(output_dir / "config.yaml", OmegaConf.to_yaml(cfg, resolve=True))
        write_parquet(output_dir / "metrics.parquet", out.metrics)  # written last: marks completion
    return out


def typed_eval(cfg: DictConfig) -> DictConfig:
    """``cfg`` with its ``eval`` entry typed by its kind (``config.eval_kinds``) and checked; a config whose
    entry is typed already (``config.load``) is returned as it is."""
    from hybrid_sweep.config.eval_kinds import EvalConfig
    from hybrid_sweep.config.load import load_entry

    kind = OmegaConf.get_type(cfg.eval) if isinstance(cfg.eval, DictConfig) else None
    if isinstance(kind, type) and issubclass(kind, EvalConfig):
        return cfg
    view = cfg.copy()
    OmegaConf.set_struct(view, False)
    view.eval = load_entry(OmegaConf.to_container(cfg.eval, resolve=True) if isinstance(cfg.eval, DictConfig)
                           else cfg.eval, "eval")
    return view


def _uses_store(entry: DictConfig) -> bool:
    """The kinds with corpora (retrieval, flores) can put them in the embedding store."""
    return "embedding_store" in entry and bool(entry.embedding_store)


def _store_root(store_root, output_dir):
    return Path(output_dir) / "embeddings" if store_root is None and output_dir is not None else store_root


def _build(cfg, encoder, texts_fn):
    from hybrid_sweep.encoders import build_encoder

    if encoder is not None:
        return encoder
    with tempfile.TemporaryDirectory(prefix="hybrid_sweep_encoder_") as tmp:
        return build_encoder(cfg.encoder, texts_fn(), Path(tmp))


def _pooled(cfg, output_dir, encoder):
    bench = load_eval_benchmark(cfg.eval, cfg.paths, cfg.get("synthetic"))  # validates before heavy imports
    from hybrid_sweep.data.benchmark import candidate_texts
    from hybrid_sweep.evaluation.evaluator import evaluate_encoder

    log.info("%s: %d languages, %d queries, %d candidates", bench.name, len(bench.langs),
             len(bench.all_questions()), len(bench.all_candidates()))
    encoder = _build(cfg, encoder, lambda: [q.text for q in bench.all_questions()]
                     + candidate_texts(bench, cfg.eval.candidate_text))
    out = evaluate_encoder(
        bench, encoder, candidate_text=cfg.eval.candidate_text, settings=tuple(cfg.eval.settings),
        run_depth=cfg.eval.run_depth, output_dir=output_dir, write_runs=tuple(cfg.eval.write_runs or ()),
        tag=encoder.name, block=cfg.eval.block_size,
    )
    return out, encoder.name


def _mteb(cfg, output_dir, encoder):
    if output_dir is None:
        raise ConfigError("output_dir", "eval=mteb needs an output folder for MTEB's result files")
    import pandas as pd

    from hybrid_sweep.evaluation.mteb_bridge import evaluate_mteb
    from hybrid_sweep.evaluation.rows import EvalOutput, with_max_length
    from hybrid_sweep.evaluation.task_evaluator import at_length, resolve_length

    encoder = _build(cfg, encoder, lambda: [])
    length = resolve_length(cfg.eval.max_length, encoder)  # default: the model's own limit, as MTEB encodes
    with at_length(encoder, length):
        out = EvalOutput(evaluate_mteb(cfg.eval, encoder, output_dir), pd.DataFrame())
    return with_max_length(out, length), encoder.name


def _tasks(cfg, output_dir, encoder, store_root=None, plan=None):
    tasks = load_retrieval_tasks(cfg.eval, cfg.paths)  # validates before heavy imports
    import pandas as pd

    from hybrid_sweep.evaluation.rows import EvalOutput
    from hybrid_sweep.evaluation.task_evaluator import evaluate_task

    for t in tasks:
        log.info("%s: %d pools, %d queries, %d documents", t.name, len(t.pools),
                 sum(len(q) for q in t.query_sets.values()), sum(len(c) for c in t.corpora.values()))
    encoder = _build(cfg, encoder, lambda: [x for t in tasks for q in t.query_sets.values() for x in q.texts]
                     + [x for t in tasks for c in t.corpora.values() for x in c.passages()])
    if plan is not None and plan.rank != 0:  # this rank's shards of every corpus, nothing else
        from hybrid_sweep.evaluation.task_evaluator import encode_task

        for t in tasks:
            encode_task(t, encoder, store_root, plan)
        return None
    outs = [evaluate_task(t, encoder, store_root, run_depth=cfg.eval.run_depth, full_rank_max=cfg.eval.full_rank_max,
                          output_dir=output_dir, write_runs=tuple(cfg.eval.write_runs or ()), tag=encoder.name,
                          block=cfg.eval.block_size, search_dtype=cfg.eval.search_dtype, plan=plan) for t in tasks]
    return EvalOutput(pd.concat([o.metrics for o in outs], ignore_index=True),
                      pd.concat([o.per_query for o in outs], ignore_index=True)), encoder.name


def summary_table(metrics: pd.DataFrame) -> str:
    avg = metrics[(metrics.query_lang == "avg") & metrics.metric.isin(SUMMARY_METRICS)]
    table = avg.pivot_table(index=["benchmark", "setting"], columns="metric", values="value", sort=False)
    return table[[m for m in SUMMARY_METRICS if m in table.columns]].round(4).to_string()
