"""How a config field is declared: ``setting(default, ...)`` is a dataclass field whose metadata says
whether the field changes results (``run_id``), whether it is a column of the results table
(``axis``, with its ``scale``), and whether it is a repetition rather than a condition (the seed).
Everything else (the run id, the stage-cache keys, collect's condition keys, the axis columns and
their scales) is derived from these marks by :mod:`hybrid_sweep.config.derive`."""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from typing import Any, Callable

SCALES = ("category", "linear", "log")  # log: fitted against log2(axis) in scaling figures
ALWAYS_HASHED = object()  # ``absent`` left unset: the field is in the run id whatever its value


def setting(default: Any = "???", *, factory: Callable[[], Any] | None = None, run_id: bool = True,
            axis: str | None = None, scale: str = "category", inactive: Any = None, repetition: bool = False,
            cache_key: bool | None = None, items: type | None = None, absent: Any = ALWAYS_HASHED,
            check: Any = None, kinds: type | None = None, doc: str = "") -> Any:
    """A declared config field (default "???": required, set by a preset).

    run_id      the value changes results: part of the run id (and of every stage-cache key)
    axis        column name in results.parquet / runs.parquet (None: not a column)
    scale       category | linear | log: how analysis treats the axis
    inactive    the axis value when the field's section is switched off (a zero-shot run has no seed)
    repetition  the field repeats a condition (the seed): not a condition key in analysis
    cache_key   override of ``run_id`` for the stage-cache key (None: same as run_id)
    items       for a Dict[str, Any] of sections: the dataclass of each item (evals)
    absent      for a field added after runs exist: the value that does what the code did before the
                field existed; at that value the field is left out of the run id and stage-cache keys, so
                the runs already on disk keep their ids (tests/test_run_id_stability.py)
    check       a value check (``config.checks``: ``positive``, ``at_least(1)``, ``one_of(...)``), run by
                ``config.load`` on every section, active or not; null values are not checked
    kinds       the value (a node, or each element of a list) is typed by ``kind_class(kinds, value)``
                (a training source by its ``kind``); hashed as the typed value, every field filled in
    active_when (section fields, in metadata) dotted bool fields that must all be true for the section
                to count; an inactive section is left out of the run id and its axes take ``inactive``
    """
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {SCALES}")
    meta = {"run_id": run_id, "axis": axis, "scale": scale, "inactive": inactive, "repetition": repetition,
            "cache_key": run_id if cache_key is None else cache_key, "items": items, "absent": absent,
            "check": check, "kinds": kinds, "doc": doc}
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def section(cls: type, *, run_id: bool = True, active_when: tuple[str, ...] = (), doc: str = "") -> Any:
    """A nested stage config (a dataclass) as a field of the app config."""
    meta = {"run_id": run_id, "axis": None, "scale": "category", "inactive": None, "repetition": False,
            "cache_key": run_id, "items": None, "doc": doc, "active_when": active_when}
    return dataclasses.field(default_factory=cls, metadata=meta)


@dataclass(frozen=True)
class DerivedAxis:
    """An axis column computed from a section (e.g. the batch-mix label from the ratio). ``compute``
    gets the section node and the run's extra facts (``train_summary``)."""

    name: str
    compute: Callable[[Any, dict], Any]
    scale: str = "category"
    inactive: Any = None


def mark(f: dataclasses.Field, key: str, default: Any = None) -> Any:
    return f.metadata.get(key, default) if key != "run_id" else f.metadata.get("run_id", True)


def section_type(f: dataclasses.Field) -> type | None:
    """The dataclass of a nested-section field (``Optional[...]`` too: encoder.tiny), else None."""
    t = f.type
    if typing.get_origin(t) is typing.Union:
        args = [a for a in typing.get_args(t) if a is not type(None)]
        t = args[0] if len(args) == 1 else None
    return t if isinstance(t, type) and dataclasses.is_dataclass(t) else None


def is_open(cls: type) -> bool:
    """Open sections accept keys they do not declare (kind-specific keys of evaluation benchmarks and
    training sources); such keys count for the run id and are never axes."""
    return bool(getattr(cls, "OPEN", False))


def kind_class(cls: type, value: Any) -> type:
    """The dataclass that types ``value`` where ``cls`` is a family of kinds (``cls.schema_for``: an
    evaluation entry or a training source by its ``kind``), else ``cls``."""
    pick = getattr(cls, "schema_for", None)
    return pick(value) if pick is not None else cls
