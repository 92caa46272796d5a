"""Hugging Face ``datasets`` repositories in the MTEB retrieval layout, read with ``datasets.load_dataset``.

Configs, as mteb 2.x's RetrievalDatasetLoader looks for them (docs/retrieval_tasks.md):

    part     monolingual            per-language subset S
    corpus   corpus                 S-corpus
    queries  queries (or query)     S-queries
    qrels    default, else qrels    S-qrels

Split: the requested split where the config has it, else the config's only split (BEIR-style ``corpus``
/ ``queries`` split names); for qrels the requested split must exist (mteb would fall back to a
single other split, which would silently evaluate the wrong judgements). Columns: ``id`` or ``_id``, ``text``, optional ``title``; qrels ``query-id``,
``corpus-id``, ``score`` (read as an integer grade). ``path`` is a hub name or a local folder holding
the same layout (``README.md`` with a ``configs:`` section, files ``<config>/<split>-*.parquet``).
"""

from __future__ import annotations

from pathlib import Path

from hybrid_sweep.data.retrieval_task import (DocTable, QueryTable, RetrievalTask, build_qrels, check_unique,
                                               merge_tasks, mono_task)
from hybrid_sweep.errors import DataError
from hybrid_sweep.io import safe_part

OFFLINE_HINT = ("offline? download it where you have internet and pass eval.path=<local copy in the same "
                "layout> (or set HF_DATASETS_OFFLINE=1 with it in the HF_HOME cache)")


def _datasets():
    import datasets

    datasets.logging.set_verbosity_error()
    datasets.disable_progress_bars()
    return datasets


def _call(path: str, what, *args, **kwargs):
    """Run a ``datasets`` call; a failure to reach or find the dataset is one DataError naming it."""
    datasets = _datasets()
    try:
        return what(path, *args, **kwargs)
    except (ConnectionError, TimeoutError, FileNotFoundError, datasets.exceptions.DatasetNotFoundError) as err:
        local = Path(path).exists()
        hint = "" if local else f"; {OFFLINE_HINT}"
        raise DataError(path, f"cannot load dataset ({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}){hint}") from None
    except OSError as err:  # huggingface_hub raises OSError subclasses for network failures
        raise DataError(path, f"cannot load dataset ({type(err).__name__}){'' if Path(path).exists() else '; ' + OFFLINE_HINT}") from None


def _pick_split(dd, requested: str, where: str, exact: bool = False):
    if requested in dd:
        return dd[requested]
    if len(dd) == 1 and not exact:
        return next(iter(dd.values()))
    raise DataError(where, f"no split {requested!r} (eval.split); splits: {', '.join(dd)}")


def _load_config(path: str, config: str, split: str, revision: str | None, exact: bool = False):
    dd = _call(path, _datasets().load_dataset, config, revision=revision)
    return _pick_split(dd, split, f"{path} config {config!r}", exact)


def _id_column(ds, where: str) -> str:
    for col in ("id", "_id"):
        if col in ds.column_names:
            return col
    raise DataError(where, f"no 'id' or '_id' column (columns: {', '.join(ds.column_names)})")


def _need(ds, cols, where):
    missing = [c for c in cols if c not in ds.column_names]
    if missing:
        raise DataError(where, f"missing column {missing[0]!r} (columns: {', '.join(ds.column_names)})")


def _configs(path: str, revision: str | None) -> list[str]:
    return list(_call(path, _datasets().get_dataset_config_names, revision=revision))


def _config_names(configs: list[str], subset: str | None) -> tuple[str, str, str]:
    if subset is None:
        queries = "queries" if "queries" in configs else "query"
        qrels = "default" if "default" in configs else "qrels"
        return "corpus", queries, qrels
    queries = f"{subset}-queries" if f"{subset}-queries" in configs else "query"
    return f"{subset}-corpus", queries, f"{subset}-qrels"


def load_mteb_subset(path: str, split: str, subset: str | None, lang: str, revision: str | None = None,
                     configs: list[str] | None = None, name: str | None = None) -> RetrievalTask:
    """One (subset, split) of a repository in the MTEB layout as a one-pool task."""
    configs = configs if configs is not None else _configs(path, revision)
    c_name, q_name, r_name = _config_names(configs, subset)
    for cfg in (c_name, q_name, r_name):
        if cfg not in configs:
            raise DataError(path, f"no config {cfg!r} (eval.languages / layout); configs: {', '.join(sorted(configs))}")
    corpus_ds = _load_config(path, c_name, split, revision)
    queries_ds = _load_config(path, q_name, split, revision)
    qrels_ds = _load_config(path, r_name, split, revision, exact=True)  # the split is the qrels' split
    where = f"{path} {c_name}"
    idc = _id_column(corpus_ds, where)
    _need(corpus_ds, ["text"], where)
    doc_ids = [str(x) for x in corpus_ds[idc]]
    if not doc_ids:
        raise DataError(where, "no documents (an empty corpus cannot be evaluated)")
    check_unique(doc_ids, where)
    titles = [t or "" for t in corpus_ds["title"]] if "title" in corpus_ds.column_names else None
    corpus = DocTable(doc_ids, [t or "" for t in corpus_ds["text"]], titles if titles and any(titles) else None, lang)
    where = f"{path} {q_name}"
    idq = _id_column(queries_ds, where)
    _need(queries_ds, ["text"], where)
    queries = QueryTable([str(x) for x in queries_ds[idq]], list(queries_ds["text"]), lang)
    check_unique(queries.ids, where)
    where = f"{path} {r_name}"
    _need(qrels_ds, ["query-id", "corpus-id", "score"], where)
    if len(qrels_ds) == 0:
        raise DataError(where, f"no judgements in split {split!r} (an empty split cannot be evaluated)")
    rows = zip(qrels_ds["query-id"], qrels_ds["corpus-id"], qrels_ds["score"], range(1, len(qrels_ds) + 1))
    # row numbers count data rows of the split (there is no line in a parquet file)
    qrels = build_qrels(((str(q), str(d), s, n) for q, d, s, n in rows), set(queries.ids), set(doc_ids),
                        f"{where} row")
    return mono_task(name or path, corpus, queries, qrels, lang)


def load_mteb_task(name: str, path: str, split: str, subsets: list[str] | None, lang: str = "en",
                   revision: str | None = None, max_length: int | None = None) -> RetrievalTask:
    """Every requested per-language subset (``subsets``), or the monolingual layout (``None``). The name
    and languages name output files, so they are checked first (``io.safe_part``)."""
    name, lang = safe_part(name, "eval.benchmark"), safe_part(lang, "eval.lang")
    for s in subsets or ():
        safe_part(s, "eval.languages")
    configs = _configs(path, revision)
    if subsets is None:
        task = load_mteb_subset(path, split, None, lang, revision, configs, name)
    else:
        task = merge_tasks(name, [load_mteb_subset(path, split, s, s, revision, configs, name) for s in subsets])
    task.max_length = max_length
    return task
