"""A study's declared question (``study:`` in a sweep preset; docs/statistics.md "Declared studies").

The primary hypothesis is stated before the first look: which axis, which contrast of its levels, on which
benchmark, settings, metric and (optionally) query languages, which test and direction. The report leads
with its answer, adjusted over the primary family only (every pair x setting x language group the primary
names); everything else in the report is exploratory. ``seeds_fixed`` is the number of seeds per condition
fixed before the first look: more seeds in the root than that is a second look unless ``looks`` declares a
group-sequential design.

Plain dataclasses with OmegaConf-supported types only (the app config embeds ``StudyConfig`` as a section
that is not part of the run id); ``study_from_dict`` validates a resolved declaration (the plain dict
collect writes into results.parquet's metadata under ``"study"``)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from hybrid_sweep.errors import ConfigError

CONTRASTS = ("trend", "vs_reference", "pairs")
TESTS = ("auto", "question", "run")
ALTERNATIVES = ("two-sided", "greater", "less")
SPENDING = ("obrien_fleming", "pocock")


@dataclass
class HypothesisConfig:
    """One hypothesis (or one family: its pairs x settings x language groups)."""

    name: str = ""  # label in the report (default: built from the fields)
    axis: str = "???"  # results column whose levels are compared (e.g. n_pairs, sampler, pretrain_low_resource)
    contrast: str = "trend"  # trend (slope over the axis) | vs_reference (each level − reference) | pairs (A − B)
    reference: Any = None  # vs_reference: the level the others are compared with
    levels: Optional[List[Any]] = None  # trend / vs_reference: the levels included (None: all in the results)
    pairs: Optional[List[Any]] = None  # pairs: [[A, B], ...], each tested as A − B
    scale: str = "auto"  # trend: log2 | linear | auto (the axis' scale from results.parquet's metadata)
    benchmark: Optional[str] = None  # None: the only benchmark in the results
    settings: List[str] = field(default_factory=lambda: ["mono"])  # one test per setting
    metric: str = "map"
    languages: Optional[List[str]] = None  # endpoint over these query languages only (None: the macro average)
    language_groups: Optional[Dict[str, List[str]]] = None  # one endpoint per named group of query languages
    group_by: Optional[str] = None  # "joshi": one endpoint per Joshi class of the query languages present
    test: str = "auto"  # auto (question level where per-query rows exist, else run level) | question | run
    alternative: str = "two-sided"  # two-sided | greater | less (A − B, or the slope)


@dataclass
class LooksConfig:
    """A group-sequential design: the seeds per condition at each planned look and the alpha-spending
    function (Lan–DeMets); each look is tested at the alpha its spending adds (conservative)."""

    seeds: List[int] = field(default_factory=list)
    spending: str = "obrien_fleming"


@dataclass
class StudyConfig:
    primary: Optional[HypothesisConfig] = None
    secondary: List[HypothesisConfig] = field(default_factory=list)
    seeds_fixed: Optional[int] = None  # seeds per condition fixed before the first look
    looks: Optional[LooksConfig] = None
    alpha: float = 0.05


def study_from_dict(raw: Any) -> StudyConfig | None:
    """A ``StudyConfig`` from a plain dict (results metadata, or a test), validated; None for no declaration
    or one without a primary hypothesis. Bad values raise one ``ConfigError`` naming the key."""
    if raw is None:
        return None
    if dataclasses.is_dataclass(raw):
        raw = dataclasses.asdict(raw)
    if not isinstance(raw, dict):
        raise ConfigError("study", f"expected a mapping, got {type(raw).__name__}")
    _unknown(raw, StudyConfig, "study")
    primary = _hypothesis(raw["primary"], "study.primary") if raw.get("primary") else None
    secondary = [_hypothesis(h, f"study.secondary[{i}]") for i, h in enumerate(raw.get("secondary") or [])]
    looks = raw.get("looks")
    if looks:
        _unknown(looks, LooksConfig, "study.looks")
        looks = LooksConfig(seeds=[int(s) for s in looks.get("seeds") or []], spending=looks.get("spending", "obrien_fleming"))
        if looks.spending not in SPENDING:
            raise ConfigError("study.looks.spending", f"one of {SPENDING}, not {looks.spending!r}")
        if len(looks.seeds) < 2 or looks.seeds != sorted(set(looks.seeds)) or looks.seeds[0] < 2:
            raise ConfigError("study.looks.seeds", f"increasing seeds per condition at >= 2 looks, got {looks.seeds}")
    seeds = raw.get("seeds_fixed")
    if seeds is not None and (not isinstance(seeds, int) or seeds < 2):
        raise ConfigError("study.seeds_fixed", f"an integer >= 2, not {seeds!r}")
    alpha = float(raw.get("alpha", 0.05))
    if not 0 < alpha < 1:
        raise ConfigError("study.alpha", f"in (0, 1), not {alpha}")
    if primary is None:
        return None
    return StudyConfig(primary, secondary, seeds, looks or None, alpha)


def _unknown(raw: dict, cls: type, key: str) -> None:
    extra = set(raw) - {f.name for f in dataclasses.fields(cls)}
    if extra:
        raise ConfigError(key, f"unknown keys {sorted(extra)}")


def _hypothesis(raw: Any, key: str) -> HypothesisConfig:
    if not isinstance(raw, dict):
        raise ConfigError(key, f"expected a mapping, got {type(raw).__name__}")
    _unknown(raw, HypothesisConfig, key)
    h = HypothesisConfig(**{k: v for k, v in raw.items() if v is not None or k in ("reference", "benchmark")})
    if not h.axis or h.axis == "???":
        raise ConfigError(f"{key}.axis", "required: the results column whose levels are compared")
    for name, allowed in (("contrast", CONTRASTS), ("test", TESTS), ("alternative", ALTERNATIVES),
                          ("scale", ("auto", "log2", "linear"))):
        if getattr(h, name) not in allowed:
            raise ConfigError(f"{key}.{name}", f"one of {allowed}, not {getattr(h, name)!r}")
    if h.contrast == "vs_reference" and h.reference is None:
        raise ConfigError(f"{key}.reference", "vs_reference needs the reference level")
    if h.contrast == "pairs" and (not h.pairs or any(not isinstance(p, (list, tuple)) or len(p) != 2 for p in h.pairs)):
        raise ConfigError(f"{key}.pairs", "pairs needs a list of [A, B] level pairs")
    if sum(x is not None for x in (h.languages, h.language_groups, h.group_by)) > 1:
        raise ConfigError(f"{key}.languages", "give at most one of languages, language_groups, group_by")
    if h.group_by not in (None, "joshi"):
        raise ConfigError(f"{key}.group_by", f"only 'joshi' is known, not {h.group_by!r}")
    h.reference = None if h.reference is None else level_key(h.reference)
    h.levels = None if h.levels is None else [level_key(v) for v in h.levels]
    h.pairs = None if h.pairs is None else [[level_key(a), level_key(b)] for a, b in h.pairs]
    h.settings = list(h.settings)
    return h


def level_key(value: Any) -> str:
    """An axis level as text, as the declaration and the results both spell it: 1, 1.0 and "1" -> "1"."""
    if isinstance(value, bool):
        return str(value)
    try:
        f = float(value)
    except (TypeError, ValueError):
        return str(value)
    return str(int(f)) if f.is_integer() else repr(f)
