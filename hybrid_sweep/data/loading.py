"""Build the evaluation benchmark named by the ``eval`` config."""

from __future__ import annotations

from hybrid_sweep.data.benchmark import SETTINGS, Benchmark
from hybrid_sweep.data.download import data_root, ensure_lareqa_file
from hybrid_sweep.data.lareqa import LAREQA_BENCHMARKS, load_lareqa
from hybrid_sweep.data.synthetic import synthetic_benchmark
from hybrid_sweep.errors import ConfigError


def validate_eval_config(ev) -> None:
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
    if langs is not None and len(langs) == 0:
        raise ConfigError("eval.languages", "empty list; use null for all languages")


def load_eval_benchmark(ev, paths, synthetic=None) -> Benchmark:
    validate_eval_config(ev)
    langs = list(ev.languages) if ev.get("languages") is not None else None
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
