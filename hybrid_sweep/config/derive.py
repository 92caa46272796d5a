"""Everything derived from the field marks of the typed configs (``marks.setting``): no key list is
kept by hand anywhere else.

- ``semantic_config``: the fields that change the fine-tuned weights (``run_id``), minus switched-off
  sections: what the run id (the checkpoint key) hashes (runs/store.py);
- ``eval_identity``: what one evaluation entry adds to that (its key within a run);
- ``cache_identity``: what a stage cache depends on (pre-training: its own ``cache_key`` fields, the
  sections it ``DEPENDS_ON`` and its resolved languages);
- ``axis_specs`` / ``axis_values``: the axis columns of the results tables, their scale and values;
- ``is_condition_override``: whether a command-line override defines a condition (collect's ``variant``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable

from omegaconf import DictConfig, ListConfig, OmegaConf

from hybrid_sweep.config.marks import ALWAYS_HASHED, DerivedAxis, is_open, kind_class, mark, section_type
from hybrid_sweep.config.stages import AppConfig


def _typed(cfg, schema: type = AppConfig) -> DictConfig:
    if isinstance(cfg, DictConfig) and OmegaConf.get_type(cfg) is schema:
        return cfg
    from hybrid_sweep.config.load import load

    return load(cfg, schema)


def _plain(value: Any) -> Any:
    return OmegaConf.to_container(value, resolve=True) if isinstance(value, DictConfig | ListConfig) else value


@lru_cache(maxsize=None)
def _marked(cls: type, which: str) -> tuple:
    """(name, nested section or None, items class or None, marked, absent value) per field."""
    return tuple((f.name, section_type(f), mark(f, "items"), bool(mark(f, which)), mark(f, "absent", ALWAYS_HASHED))
                 for f in dataclasses.fields(cls))


def _fields_of(cls: type, node, which: str) -> dict:
    """The marked fields of one section (a plain dict; recursing into nested sections), plus undeclared
    keys of an open section (they count: an unknown key may change results)."""
    node = _plain(node)
    cls = kind_class(cls, node)  # an evaluation entry: its kind's dataclass
    out = {}
    specs = _marked(cls, which)
    for name, sub, items, marked, absent in specs:
        if not marked:
            continue
        value = node[name]
        if absent is not ALWAYS_HASHED and value == absent:  # a later field at its old behaviour: ids kept
            continue
        if sub is not None and value is not None:
            out[name] = _fields_of(sub, value, which)
        elif items is not None:
            out[name] = {k: _fields_of(items, v, which) for k, v in (value or {}).items()}
        else:
            out[name] = value
    if is_open(cls):
        declared = {name for name, *_ in specs}
        out.update({k: v for k, v in node.items() if k not in declared})
    return out


def _active(cfg: DictConfig, f: dataclasses.Field) -> bool:
    return all(bool(OmegaConf.select(cfg, p, default=True)) for p in f.metadata.get("active_when", ()))


def semantic_config(cfg, schema: type = AppConfig) -> dict:
    """What the run id hashes: every ``run_id`` field of every active section."""
    cfg = _typed(cfg, schema)
    every = _fields_of(schema, cfg, "run_id")
    return {f.name: every[f.name] for f in dataclasses.fields(schema) if f.name in every and _active(cfg, f)}


def eval_identity(cfg, name: str, schema: type = AppConfig) -> dict:
    """What one evaluation entry's result depends on besides the checkpoint: the entry's ``run_id``
    fields (its kind, benchmark, languages, settings, encoding length, ...). The run id never holds
    them, so adding, removing or changing an entry never trains again."""
    cfg = _typed(cfg, schema)
    items = next(mark(f, "items") for f in dataclasses.fields(schema) if f.name == "evals")
    return _fields_of(items, cfg.evals[name], "run_id")


def cache_identity(cfg, stage: str, schema: type = AppConfig) -> dict:
    """What a cached stage's output depends on: its own ``cache_key`` fields, the run-id fields of the
    sections it ``DEPENDS_ON``, and what it resolves (``cache_extra``)."""
    cfg = _typed(cfg, schema)
    cls = section_type(next(f for f in dataclasses.fields(schema) if f.name == stage))
    deps = {name: _fields_of(section_type(next(f for f in dataclasses.fields(schema) if f.name == name)), cfg[name],
                             "run_id") for name in getattr(cls, "DEPENDS_ON", ())}
    own = _fields_of(cls, cfg[stage], "cache_key")
    if hasattr(cls, "cache_extra"):
        own.update(cls.cache_extra(cfg[stage]))
    return {**deps, stage: own}


@dataclass(frozen=True)
class AxisSpec:
    name: str
    section: str                      # top-level section (for active_when)
    path: str | None                  # dotted path of a declared field, None for a derived axis
    scale: str
    inactive: Any
    repetition: bool = False
    compute: Callable | None = None   # derived axes: (section node, extra) -> value

    @property
    def numeric(self) -> bool:
        return self.scale in ("linear", "log")


def _axes_of(cls: type, prefix: str, section: str) -> list[AxisSpec]:
    out = []
    for f in dataclasses.fields(cls):
        sub = section_type(f)
        if sub is not None:
            out += _axes_of(sub, f"{prefix}{f.name}.", section or f.name)
        elif mark(f, "axis"):
            out.append(AxisSpec(mark(f, "axis"), section or f.name, prefix + f.name, mark(f, "scale"),
                                mark(f, "inactive"), mark(f, "repetition")))
    for d in getattr(cls, "AXES", ()):
        if isinstance(d, DerivedAxis):
            out.append(AxisSpec(d.name, section, prefix.rstrip(".") or None, d.scale, d.inactive, compute=d.compute))
    return out


@lru_cache(maxsize=None)
def axis_specs(schema: type = AppConfig) -> tuple[AxisSpec, ...]:
    """Every axis column in schema order (sections in field order, derived axes after their section's fields)."""
    specs = tuple(_axes_of(schema, "", ""))
    names = [s.name for s in specs]
    if len(names) != len(set(names)):
        raise ValueError(f"axis names declared twice: {sorted({n for n in names if names.count(n) > 1})}")
    return specs


def axis_values(cfg, train_summary: dict | None = None, schema: type = AppConfig) -> dict:
    """The axis columns of one run, from its config (and train_summary.json for data-dependent ones)."""
    cfg = _typed(cfg, schema)
    fields = {f.name: f for f in dataclasses.fields(schema)}
    extra = {"train_summary": train_summary or {}}
    out = {}
    for spec in axis_specs(schema):
        if not _active(cfg, fields[spec.section]):
            out[spec.name] = spec.inactive
        elif spec.compute is not None:
            out[spec.name] = spec.compute(OmegaConf.select(cfg, spec.path), extra)
        else:
            out[spec.name] = _plain(OmegaConf.select(cfg, spec.path))
    return out


def _field_at(schema: type, path: list[str]) -> list[dataclasses.Field] | None:
    """The fields along a dotted path (None past an undeclared key of an open section)."""
    chain, cls = [], schema
    while path and cls is not None:
        f = next((f for f in dataclasses.fields(cls) if f.name == path[0]), None)
        if f is None:
            return chain or None
        chain.append(f)
        path = path[1:]
        if mark(f, "items") is not None:
            cls, path = mark(f, "items"), path[1:]  # skip the entry's name
        else:
            cls = section_type(f)
    return chain


def is_condition_override(override: str, schema: type = AppConfig) -> bool:
    """Whether ``key=value`` from a run's command line sets a result-changing, non-repetition field
    (``train.seed`` is a repetition; ``results_root``, ``logger=...``, ``hydra.*`` change nothing)."""
    key = override.split("=", 1)[0].lstrip("+~")
    if key.startswith("hydra"):
        return False
    group, _, package = key.partition("@")
    if package:
        key = package
    elif group in getattr(schema, "GROUP_TARGETS", {}) and "." not in group:
        key = schema.GROUP_TARGETS[group]
    chain = _field_at(schema, key.split("."))
    if chain is None:
        return True  # undeclared: it may change results
    return all(mark(f, "run_id") and not mark(f, "repetition") for f in chain)
