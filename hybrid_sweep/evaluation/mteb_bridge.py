"""The MTEB bridge: our encoder as an ``mteb`` 2.x model, and MTEB scores as our tidy metric rows.

``MTEBEncoder(encoder)`` implements MTEB's encoder protocol (``encode(inputs, *, task_metadata, hf_split,
hf_subset, prompt_type)``, where ``inputs`` is a DataLoader of batches whose ``"text"`` holds the texts;
documents arrive as title + text joined by MTEB). Query prompts get our query prefix, document prompts
our passage prefix; tasks without a prompt type (STS, classification, ...) get ``symmetric_kind``'s
prefix (``query`` as E5 recommends for symmetric tasks). So ``mteb.evaluate(MTEBEncoder(enc), tasks)``
runs any MTEB task on any checkpoint. ``evaluate_mteb`` does that from an ``eval=mteb`` config and
converts the scores to rows of the evaluator's long table.
"""

from __future__ import annotations

import dataclasses
import importlib
import math
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd

from hybrid_sweep.config.eval_kinds import MtebEvalConfig
from hybrid_sweep.errors import ConfigError, DataError, HybridSweepError
from hybrid_sweep.results_schema import ROW_COLUMNS as COLUMNS

try:
    import mteb
    from mteb.models.abs_encoder import AbsEncoder
    from mteb.models.model_meta import ModelMeta, ScoringFunction
    from mteb.types import PromptType
except ImportError as err:  # pragma: no cover - depends on the environment
    raise HybridSweepError("eval=mteb needs the optional mteb package: pip install 'hybrid_sweep[mteb]'") from err

# MTEB metric names -> the trec_eval names the evaluator uses (others keep MTEB's name)
TREC_NAMES = (("ndcg_at_", "ndcg_cut_"), ("recall_at_", "recall_"), ("precision_at_", "P_"), ("map_at_", "map_cut_"),
              ("mrr_at_", "recip_rank_cut_"))


class MTEBEncoder(AbsEncoder):
    """A ``hybrid_sweep.encoders.Encoder`` behind MTEB's encoder protocol."""

    def __init__(self, encoder, name: str | None = None, revision: str | None = None, symmetric_kind: str = "query"):
        if symmetric_kind not in ("query", "passage"):
            raise ConfigError("eval.symmetric_kind", f"must be query or passage (got {symmetric_kind!r})")
        self.encoder = encoder
        self.symmetric_kind = symmetric_kind
        self.n_queries: Counter = Counter()  # query texts encoded per (task, subset, split)
        if revision is None:
            from hybrid_sweep.evaluation.embedding_store import encoder_fingerprint

            revision = encoder_fingerprint(encoder)  # a checkpoint's weights and prefixes, not a git revision
        model = encoder.model
        name = name or encoder.name
        get_dim = getattr(model, "get_embedding_dimension", None) or getattr(model, "get_sentence_embedding_dimension", None)
        dim = get_dim() if get_dim else None
        self.mteb_model_meta = ModelMeta.create_empty({
            "name": name if "/" in name else f"hybrid_sweep/{name}",
            "revision": revision,
            "embed_dim": dim,
            "max_tokens": getattr(model, "max_seq_length", None),
            "n_parameters": sum(p.numel() for p in model.parameters()),
            "similarity_fn_name": ScoringFunction.COSINE if encoder.normalize else ScoringFunction.DOT_PRODUCT,
            "framework": ["PyTorch", "Sentence Transformers"],
            "open_weights": True,
        })

    def encode(self, inputs, *, task_metadata, hf_split: str, hf_subset: str, prompt_type=None, **kwargs):
        texts = [text for batch in inputs for text in batch["text"]]
        if prompt_type == PromptType.query:
            kind = "query"
            self.n_queries[(task_metadata.name, hf_subset, hf_split)] += len(texts)
        elif prompt_type == PromptType.document:
            kind = "passage"
        else:
            kind = self.symmetric_kind
        return self.encoder.encode(texts, kind, desc=f"{task_metadata.name} {kind}s").numpy()


def resolve_tasks(names) -> list:
    """MTEB task objects from names (``mteb.get_tasks``) or ``module:Class`` paths (one's own tasks)."""
    if not names:
        raise ConfigError("eval.tasks", "list at least one MTEB task name (e.g. eval.tasks=[NanoNFCorpusRetrieval])")
    tasks, by_name = [], []
    for entry in names:
        if not isinstance(entry, str):
            tasks.append(entry)  # already a task object
        elif ":" in entry:
            module, _, cls = entry.partition(":")
            try:
                tasks.append(getattr(importlib.import_module(module), cls)())
            except (ImportError, AttributeError) as err:
                raise ConfigError("eval.tasks", f"cannot import task class {entry!r}: {err}") from err
        else:
            by_name.append(entry)
    if by_name:
        try:
            tasks.extend(mteb.get_tasks(tasks=by_name))
        except KeyError as err:
            raise ConfigError("eval.tasks", f"unknown MTEB task: {err}") from err
    return tasks


def score_rows(model_result, n_queries: Counter | None = None, depth: int | None = None,
               metrics: list[str] | None = None) -> pd.DataFrame:
    """MTEB's results as long rows: benchmark = task name, setting = split, languages from the subset;
    plus macro rows (query_lang = avg) over the subsets of a task and split."""
    rows = []
    for task_result in model_result.task_results:
        task = task_result.task_name
        for split, subsets in task_result.scores.items():
            for scores in subsets:
                subset = scores.get("hf_subset", "default")
                langs = [lang.split("-")[0] for lang in scores.get("languages") or []] or [subset]
                n = (n_queries or {}).get((task, subset, split), 0)
                for metric, value in scores.items():
                    if not _is_number(value):
                        continue
                    name = trec_name(metric)
                    if metrics is not None and metric not in metrics and name not in metrics:
                        continue
                    rows.append((task, split, langs[0], langs[-1], name, float(value), n, 0, depth))
    frame = pd.DataFrame(rows, columns=COLUMNS)
    per_task = frame.groupby(["benchmark", "setting", "metric"], sort=False)
    macro = per_task.agg(value=("value", "mean"), n_queries=("n_queries", "sum"), n_skipped=("n_skipped", "sum"),
                         depth=("depth", "first"), n_subsets=("value", "size")).reset_index()
    macro = macro[macro["n_subsets"] > 1].drop(columns="n_subsets").assign(query_lang="avg", doc_lang="avg")
    return pd.concat([frame, macro[COLUMNS]], ignore_index=True)


OFFLINE_HINT = ("run once with internet and the same HF_HOME to cache it (offline runs then read the cache), "
                "or evaluate a local copy with eval=beir eval.path=<folder>")


def _load_error(err: OSError, tasks) -> Exception:
    """One line for a task whose data cannot be reached (offline, no cached copy), naming the task and
    what to set; a full disk as ``io.storage_error`` words it; anything else unchanged."""
    from hybrid_sweep.io import storage_error

    disk = storage_error(err)
    if disk is not None:
        return disk
    text = str(err).splitlines()[0][:200] if str(err) else type(err).__name__
    for task in tasks:
        path = (getattr(task.metadata, "dataset", None) or {}).get("path")
        if path and (path in str(err) or len(tasks) == 1):
            return DataError(f"MTEB task {task.metadata.name} ({path})",
                             f"cannot load its data ({type(err).__name__}: {text}); {OFFLINE_HINT}")
    if isinstance(err, (ConnectionError, TimeoutError)):
        names = ", ".join(t.metadata.name for t in tasks)
        return DataError(f"MTEB tasks {names}", f"cannot load their data ({type(err).__name__}: {text}); {OFFLINE_HINT}")
    return err


def trec_name(metric: str) -> str:
    for prefix, trec in TREC_NAMES:
        if metric.startswith(prefix) and metric[len(prefix):].isdigit():
            return trec + metric[len(prefix):]
    return metric


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


_DEFAULTS = {f.name: f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
             for f in dataclasses.fields(MtebEvalConfig)}


def evaluate_mteb(eval_cfg, encoder, out_dir) -> pd.DataFrame:
    """Run ``eval_cfg.tasks`` through ``mteb.evaluate`` with our encoder; MTEB's own result files land
    in ``<out_dir>/mteb`` (its result cache: a rerun of the same checkpoint reuses them); returns the
    scores as long metric rows (see :func:`score_rows`)."""
    given = dict(eval_cfg) if not hasattr(eval_cfg, "items") else {k: eval_cfg[k] for k in eval_cfg}
    cfg = {**_DEFAULTS, **given}  # the declared defaults (config/eval_kinds.py); task objects pass as they are
    tasks = resolve_tasks(list(cfg["tasks"] or []))
    languages, splits = cfg["languages"], cfg["splits"]
    for key, value in (("eval.languages", languages), ("eval.splits", splits)):
        if value is not None and (isinstance(value, str) or not all(isinstance(v, str) for v in value)):
            raise ConfigError(key, f"a list of names or null for all (got {value!r})")
    if languages:  # ISO 639-3, optionally with script: eng, eng-Latn
        tasks = [t.filter_languages(list(languages)) for t in tasks]
    if splits:
        tasks = [t.filter_eval_splits(list(splits)) for t in tasks]
    metrics = cfg["metrics"]
    if metrics is not None and (isinstance(metrics, str) or not all(isinstance(m, str) for m in metrics)):
        raise ConfigError("eval.metrics", f"a list of metric names or null for all (got {metrics!r})")
    model = MTEBEncoder(encoder, name=cfg["model_name"], symmetric_kind=cfg["symmetric_kind"])
    out_dir = Path(out_dir)
    fresh = [d for d in (out_dir, out_dir / "mteb") if not d.exists()]  # removed again if a load fails
    try:
        result = mteb.evaluate(model, tasks, cache=mteb.ResultCache(out_dir / "mteb"),
                               overwrite_strategy=cfg["overwrite"],
                               encode_kwargs={"batch_size": int(cfg["batch_size"]),
                                              "show_progress_bar": bool(cfg["progress"])},
                               show_progress_bar=bool(cfg["progress"]))
    except OSError as err:  # ConnectionError, TimeoutError, FileNotFoundError (hub / datasets), disk errors
        for folder in reversed(fresh):  # nothing half-written: the folders this call created, if still empty
            if folder.is_dir() and not any(p.is_file() for p in folder.rglob("*")):
                shutil.rmtree(folder, ignore_errors=True)
        raise _load_error(err, tasks) from None
    depth = max((getattr(t, "_top_k", 0) or 0 for t in tasks), default=0) or None
    rows = score_rows(result, model.n_queries, depth, list(metrics) if metrics is not None else None)
    rows["max_length"] = pd.array([getattr(encoder.model, "max_seq_length", None)] * len(rows), dtype="Int64")
    return rows
