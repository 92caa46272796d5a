"""Build the evaluation benchmark named by the ``eval`` config."""

from __future__ import annotations

from pathlib import Path

from hybrid_sweep.data.benchmark import SETTINGS, Benchmark
from hybrid_sweep.data.download import data_root, ensure_lareqa_file
from hybrid_sweep.data.lareqa import LAREQA_BENCHMARKS, load_lareqa
from hybrid_sweep.data.synthetic import synthetic_benchmark
from hybrid_sweep.errors import ConfigError


def validate_eval_config(ev) -> None:
    if ev.get("kind") == "mteb":  # the bridge validates its own keys (evaluation/mteb_bridge.py)
        return
    articles = ev.get("subset", {}).get("articles")
    if articles is not None and (not isinstance(articles, int) or articles <= 0):
        raise ConfigError("eval.subset.articles", f"must be a positive integer or null, got {articles!r}")
    settings = list(ev.get("settings") or [])
    if not settings:
        raise ConfigError("eval.settings", "at least one of mono, cross, multi is required")
    for s in settings + list(ev.get("write_runs") or []):
        if s not in SETTINGS:
            raise ConfigError("eval.settings", f"unknown setting {s!r}; one of {', '.join(SETTINGS)}")
    depth = ev.get("run_depth")
    if depth is not None and (not isinstance(depth, int) or depth <= 0):
        raise ConfigError("eval.run_depth", f"must be a positive integer or null (full ranking), got {depth!r}")
    if ev.get("candidate_text", "sentence") not in ("sentence", "sentence_context"):
        raise ConfigError("eval.candidate_text", f"must be 'sentence' or 'sentence_context', got {ev.candidate_text!r}")
    langs = ev.get("languages")
    if langs is not None and not isinstance(langs, str) and len(langs) == 0:
        raise ConfigError("eval.languages", "empty list; use null for all languages")


def load_eval_benchmark(ev, paths, synthetic=None) -> Benchmark:
    validate_eval_config(ev)
    langs = None if ev.get("languages") in (None, "all") else list(ev.languages)
    if ev.benchmark == "synthetic":
        if synthetic is None:
            raise ConfigError("synthetic", "the synthetic benchmark needs the 'synthetic' config group")
        bench = synthetic_benchmark(dict(synthetic), ev.get("split", "test"), langs)
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
    return bench.subset(ev.get("subset", {}).get("articles"))


# --- generic retrieval tasks (eval.kind = retrieval | flores) -----------------------------------------
EVAL_KINDS = ("pooled", "retrieval", "flores")
FORMATS = ("auto", "beir", "mteb", "trec")


def _positive_int(ev, key: str, allow_none: bool = True) -> None:
    value = ev.get(key)
    if value is None and allow_none:
        return
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ConfigError(f"eval.{key}", f"must be a positive integer{' or null' if allow_none else ''}, got {value!r}")


def validate_task_config(ev) -> None:
    kind = ev.get("kind", "pooled")
    if kind not in EVAL_KINDS:
        raise ConfigError("eval.kind", f"unknown kind {kind!r}; one of {', '.join(EVAL_KINDS)}")
    for key in ("run_depth", "max_length"):
        _positive_int(ev, key)
    for key in ("full_rank_max", "block_size"):
        _positive_int(ev, key, allow_none=False)
    if not isinstance(ev.get("split"), str):
        raise ConfigError("eval.split", f"must be a split name, got {ev.get('split')!r}")
    langs = ev.get("languages")
    if langs is not None and not isinstance(langs, str) and len(langs) == 0:
        raise ConfigError("eval.languages", "empty list; use null for the preset's languages")
    for s in list(ev.get("write_runs") or []):
        if s not in SETTINGS:
            raise ConfigError("eval.write_runs", f"unknown setting {s!r}; one of {', '.join(SETTINGS)}")
    if kind == "retrieval":
        if list(ev.get("settings") or []) != ["mono"]:
            raise ConfigError("eval.settings", "retrieval tasks have one setting, mono (each query language against its corpus)")
        if ev.get("format", "auto") not in FORMATS:
            raise ConfigError("eval.format", f"unknown format {ev.format!r}; one of {', '.join(FORMATS)}")
        if ev.get("format") == "trec":
            for key in ("corpus", "topics", "qrels"):
                if not ev.get("trec", {}).get(key):
                    raise ConfigError(f"eval.trec.{key}", "required with eval.format=trec (a file path)")
        elif not ev.get("path") and not ev.get("dataset"):
            raise ConfigError("eval.path", "set eval.path=<local folder> (BEIR or MTEB layout) or eval.dataset=<hub name>")


def _short(name: str) -> str:
    return str(name).rstrip("/").split("/")[-1]


def load_retrieval_tasks(ev, paths) -> list:
    """The RetrievalTasks an ``eval`` entry of kind retrieval / flores names (several for a dataset list)."""
    from hybrid_sweep.data.beir_format import load_beir_folder
    from hybrid_sweep.data.flores_benchmark import load_flores
    from hybrid_sweep.data.hf_retrieval import load_mteb_task
    from hybrid_sweep.data.trec_format import load_trec_task

    validate_task_config(ev)
    langs = ev.get("languages")
    langs = None if langs is None else (langs if isinstance(langs, str) else list(langs))
    if ev.kind == "flores":
        root, _ = data_root(paths.get("data_root"))
        return [load_flores(root / "sib200", ev.split, langs, tuple(ev.settings), ev.get("benchmark") or "flores")]
    langs = None if langs == "all" else langs  # every language of the task (FLORES alone tells all from null)
    max_length, lang = ev.get("max_length"), ev.get("lang") or "en"
    if ev.get("format") == "trec":
        t = ev.trec
        return [load_trec_task(ev.get("benchmark") or "trec", t.corpus, t.topics, t.qrels, lang, max_length)]
    sources = [ev.path] if ev.get("path") else ev.dataset
    sources = [sources] if isinstance(sources, str) else list(sources)
    tasks = []
    for src in sources:
        name = ev.get("benchmark") if len(sources) == 1 and ev.get("benchmark") else _short(src)
        is_beir = ev.get("format", "auto") == "beir" or (
            ev.get("format", "auto") == "auto" and (Path(src) / "corpus.jsonl").exists())
        if is_beir:
            tasks.append(load_beir_folder(src, ev.split, name, lang, max_length))
        else:
            tasks.append(load_mteb_task(name, str(src), ev.split, langs, lang, ev.get("revision"), max_length))
    return tasks
