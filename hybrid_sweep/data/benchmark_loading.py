"""Build the evaluation benchmark named by the ``eval`` config."""

from __future__ import annotations

from pathlib import Path

from hybrid_sweep.config.eval_kinds import EVAL_KINDS, FORMATS  # noqa: F401  (the kind lists, defined once)
from hybrid_sweep.data.benchmark import Benchmark
from hybrid_sweep.data.download import data_root, ensure_lareqa_file
from hybrid_sweep.data.lareqa import LAREQA_BENCHMARKS, load_lareqa
from hybrid_sweep.data.synthetic import synthetic_benchmark
from hybrid_sweep.errors import ConfigError


def validate_eval_config(ev):
    """The entry typed and checked by its kind's schema (config/eval_kinds.py); errors name ``eval.*``.
    A config loaded by ``config.load`` passes; this guards direct calls of the loaders."""
    from hybrid_sweep.config.load import load_entry

    return load_entry(ev, "eval")


def check_eval_languages(cfg) -> None:
    """Before anything runs: a pooled entry's ``languages`` that its benchmark cannot hold (the synthetic
    languages, a LAReQA benchmark's published ones) is the one line the loader would give after training,
    naming the entry (``evals.<name>.languages``). Other kinds need their files read to know."""
    codes = [str(lang["code"]) for lang in cfg.synthetic.languages] if "synthetic" in cfg else []
    for name, ev in (cfg.get("evals") or {}).items():
        if ev.kind != "pooled" or ev.languages in (None, "all"):
            continue
        available = codes if ev.benchmark == "synthetic" else list(LAREQA_BENCHMARKS.get(ev.benchmark, ("", ()))[1])
        unknown = [lang for lang in ev.languages if lang not in available]
        if available and unknown:
            raise ConfigError(f"evals.{name}.languages", f"{ev.benchmark} has no language {unknown[0]!r}; "
                                                         f"available: {', '.join(available)}")


def load_eval_benchmark(ev, paths, synthetic=None) -> Benchmark:
    ev = validate_eval_config(ev)
    langs = None if ev.languages in (None, "all") else list(ev.languages)
    if ev.benchmark == "synthetic":
        if synthetic is None:
            raise ConfigError("synthetic", "the synthetic benchmark needs the 'synthetic' config group")
        bench = synthetic_benchmark(dict(synthetic), ev.split, langs)
    elif ev.benchmark in LAREQA_BENCHMARKS:
        folder, published = LAREQA_BENCHMARKS[ev.benchmark]
        root, user_supplied = data_root(paths.get("data_root"))
        unknown = [lang for lang in langs or [] if lang not in published]
        if unknown:
            raise ConfigError("eval.languages", f"{ev.benchmark} has no language {unknown[0]!r}; available: {', '.join(published)}")
        for lang in langs or published:
            ensure_lareqa_file(root, folder, lang, user_supplied)
        bench = load_lareqa(ev.benchmark, root / "lareqa" / folder, langs)
    else:
        raise ConfigError("eval.benchmark", f"unknown benchmark {ev.benchmark!r}; one of synthetic, {', '.join(LAREQA_BENCHMARKS)}")
    return bench.subset(ev.subset.articles)


# --- generic retrieval tasks (eval.kind = retrieval | flores) -----------------------------------------
validate_task_config = validate_eval_config  # one schema for every kind


def _short(name: str) -> str:
    return str(name).rstrip("/").split("/")[-1]


def load_retrieval_tasks(ev, paths) -> list:
    """The RetrievalTasks an ``eval`` entry of kind retrieval / flores names (several for a dataset list)."""
    from hybrid_sweep.data.beir_format import load_beir_folder
    from hybrid_sweep.data.flores_benchmark import load_flores
    from hybrid_sweep.data.hf_retrieval import load_mteb_task
    from hybrid_sweep.data.trec_format import load_trec_task

    ev = validate_task_config(ev)
    langs = ev.languages
    langs = None if langs is None else (langs if isinstance(langs, str) else list(langs))
    if ev.kind == "flores":
        root, _ = data_root(paths.get("data_root"))
        return [load_flores(root / "sib200", ev.split, langs, tuple(ev.settings), ev.benchmark or "flores")]
    langs = None if langs == "all" else langs  # every language of the task (FLORES alone tells all from null)
    max_length, lang = ev.max_length, ev.lang
    if ev.format == "trec":
        t = ev.trec
        return [load_trec_task(ev.benchmark or "trec", t.corpus, t.topics, t.qrels, lang, max_length)]
    sources = [ev.path] if ev.path else ev.dataset
    sources = [sources] if isinstance(sources, str) else list(sources)
    tasks = []
    for src in sources:
        name = ev.benchmark if len(sources) == 1 and ev.benchmark else _short(src)
        is_beir = ev.format == "beir" or (ev.format == "auto" and (Path(src) / "corpus.jsonl").exists())
        if is_beir:
            tasks.append(load_beir_folder(src, ev.split, name, lang, max_length))
        else:
            tasks.append(load_mteb_task(name, str(src), ev.split, langs, lang, ev.revision, max_length))
    return tasks
