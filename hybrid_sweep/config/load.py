"""Load a composed config into its typed schema, once, before anything is written: defaults filled,
types checked (``OmegaConf`` structured configs), unknown keys refused in every section (an evaluation
entry and a training source typed by their kind), every field's value check and every stage's
``check`` run. Errors are one ``ConfigError`` naming the full dotted key."""

from __future__ import annotations

import copy
import re
import dataclasses
from functools import lru_cache
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import ConfigKeyError, OmegaConfBaseException

from hybrid_sweep.config.checks import label
from hybrid_sweep.config.eval_kinds import KINDS as EVAL_SCHEMAS
from hybrid_sweep.config.marks import is_open, kind_class, mark, section_type
from hybrid_sweep.config.sources import KINDS as SOURCE_SCHEMAS
from hybrid_sweep.config.stages import AppConfig, EvaluateAppConfig, TrainAppConfig
from hybrid_sweep.errors import ConfigError

SCHEMAS = {"config": AppConfig, "train": TrainAppConfig, "evaluate": EvaluateAppConfig}


def register() -> None:
    """Put the schemas in Hydra's ConfigStore (``schema/<primary config>`` and ``schema/<section>``), so
    ``compose("schema/config")`` shows every declared default."""
    cs = ConfigStore.instance()
    for name, cls in SCHEMAS.items():
        cs.store(group="schema", name=name, node=cls)
    for f in dataclasses.fields(AppConfig):
        cls = section_type(f) or mark(f, "items")
        if cls is not None:
            cs.store(group="schema", name=f"section_{f.name}", node=cls)
    for kind, cls in EVAL_SCHEMAS.items():  # each evaluation kind and training-source kind
        cs.store(group="schema", name=f"eval_{kind}", node=cls)
    for kind, cls in SOURCE_SCHEMAS.items():
        cs.store(group="schema", name=f"source_{kind}", node=cls)


def _join(key: str, name: str) -> str:
    return f"{key}.{name}" if key and name else key or name


@lru_cache(maxsize=None)
def _template(cls: type) -> DictConfig:
    return OmegaConf.structured(cls)


def _rekeyed(err: ConfigError, key: str) -> ConfigError:
    return ConfigError(_join(key, err.key), str(err).split(": ", 1)[1])


def _merge_error(err: OmegaConfBaseException, node: DictConfig, key: str) -> ConfigError:
    """One ConfigError naming the full dotted key: an unknown key with the keys declared there, or the
    type error's first line."""
    inner = getattr(err, "full_key", "") or ""
    if isinstance(err, ConfigKeyError):
        return ConfigError(_join(key, inner), f"unknown key (declared: {_declared_at(node, inner)})")
    return ConfigError(_join(key, inner), str(getattr(err, "msg", err)).splitlines()[0])


def _typed(cls: type, value: Any, key: str) -> DictConfig:
    """``value`` typed by ``cls`` (by the kind's dataclass where ``cls`` is a family of kinds)."""
    if isinstance(value, DictConfig | ListConfig):
        value = OmegaConf.to_container(value, resolve=True)
    try:
        cls = kind_class(cls, value)
    except ConfigError as err:
        raise _rekeyed(err, key) from None
    if value is not None and not isinstance(value, dict):
        raise ConfigError(key, f"a mapping of {cls.__name__} keys, got {value!r}")
    node = copy.deepcopy(_template(cls))
    if is_open(cls):
        OmegaConf.set_struct(node, False)
    try:
        node.merge_with(value if value is not None else {})
    except OmegaConfBaseException as err:
        raise _merge_error(err, node, key) from None
    _type_kinds(node, key)
    return node


def _type_kinds(node: DictConfig, key: str) -> None:
    """Type every ``kinds`` field below ``node`` (training sources, ``data.dev``) in place."""
    for f in dataclasses.fields(OmegaConf.get_type(node)):
        if OmegaConf.is_missing(node, f.name):
            continue  # reported once everything is typed
        value, sub = node[f.name], section_type(f)
        if value is None:
            continue
        if mark(f, "kinds") is not None:
            at = _join(key, f.name)
            if isinstance(value, ListConfig):
                node[f.name] = [_typed(mark(f, "kinds"), v, f"{at}.{i}") for i, v in enumerate(value)]
            else:
                node[f.name] = _typed(mark(f, "kinds"), value, at)
        elif sub is not None and isinstance(value, DictConfig):
            _type_kinds(value, _join(key, f.name))


def _children(node: DictConfig, f: dataclasses.Field, key: str):
    """(dotted key, typed node) of the dataclass nodes a field holds: a section, the entries of an
    ``items`` field, the typed values of a ``kinds`` field."""
    value, at = node[f.name], _join(key, f.name)
    if value is None:
        return
    if mark(f, "items") is not None:
        yield from ((f"{at}.{k}", v) for k, v in value.items())
    elif mark(f, "kinds") is not None:
        yield from (((f"{at}.{i}", v) for i, v in enumerate(value)) if isinstance(value, ListConfig) else [(at, value)])
    elif section_type(f) is not None:
        yield at, value


def _field_checks(node: DictConfig, key: str, active=lambda f: True, paths: bool = True) -> None:
    """Every field's declared value check (``setting(check=...)``) in every (active) section; ``paths``:
    also the checks that depend on this machine (files that must exist)."""
    for f in dataclasses.fields(OmegaConf.get_type(node)):
        if not active(f):
            continue  # a switched-off stage (zero-shot: no training) is neither checked nor hashed
        check = mark(f, "check")
        if check is not None and (paths or not check.local):
            check(_join(key, f.name), node[f.name])
        for at, child in _children(node, f, key):
            _field_checks(child, at, paths=paths)


def _check(node: DictConfig, key: str, active=lambda f: True) -> None:
    """Each (active) nested section's ``check``, then the node's own (its own dataclass: an evaluation
    entry's kind, a source's kind)."""
    cls = OmegaConf.get_type(node)
    for f in dataclasses.fields(cls):
        if active(f):
            for at, child in _children(node, f, key):
                _check(child, at)
    if hasattr(cls, "check"):
        cls.check(node, key)


def load_entry(value, key: str = "eval", family: type | None = None) -> DictConfig:
    """One evaluation entry (or a node of another kind family) typed and checked on its own, errors
    naming ``key``: what the loaders run on a config that did not come through :func:`load`."""
    from hybrid_sweep.config.eval_kinds import EvalConfig

    node = _typed(family or EvalConfig, value, key)
    missing = sorted(OmegaConf.missing_keys(node))
    if missing:
        raise ConfigError(_join(key, re.sub(r"\[(\d+)\]", r".\1", missing[0])), "required and not set")
    _field_checks(node, key)
    _check(node, key)
    return node


def typed_section(node, cls: type, key: str) -> DictConfig:
    """``node`` typed as the section ``cls`` and checked, its declared defaults filled in; a node typed so
    already (what :func:`load` returns) is returned as it is. A stage reads its section through this, so
    no stage restates a default, whoever built the config (a run's loaded config.yaml, a CLI, a test)."""
    kind = OmegaConf.get_type(node) if isinstance(node, DictConfig) else None
    if isinstance(kind, type) and issubclass(kind, cls):
        return node
    return load_entry(node, key, cls)


def typed_sections(cfg: DictConfig, schema: type = AppConfig) -> DictConfig:
    """``cfg`` with each of its sections typed by ``schema`` (:func:`typed_section`); a section it lacks is
    added with its declared defaults where it has no required key. ``cfg`` itself when already typed."""
    sections = [(f.name, section_type(f)) for f in dataclasses.fields(schema) if section_type(f) is not None]
    if OmegaConf.get_type(cfg) is schema or all(  # typed already (a view this made): no second copy
            name in cfg and isinstance(cfg[name], DictConfig) and isinstance(OmegaConf.get_type(cfg[name]), type)
            and issubclass(OmegaConf.get_type(cfg[name]), cls) for name, cls in sections):
        return cfg
    view = cfg.copy()
    OmegaConf.set_struct(view, False)
    for name, cls in sections:
        if name in cfg and cfg[name] is not None:
            view[name] = typed_section(cfg[name], cls, name)
        elif not OmegaConf.missing_keys(_template(cls)):
            view[name] = copy.deepcopy(_template(cls))
    return view


def active(node: DictConfig, f: dataclasses.Field) -> bool:
    """A section counts unless one of its ``active_when`` switches is off (zero-shot: no training)."""
    return all(bool(OmegaConf.select(node, path, default=True)) for path in f.metadata.get("active_when", ()))


def undeclared(key: str, schema: type | str = AppConfig) -> str | None:
    """For a command-line override ``key=value`` (no ``+``): the fields declared where the dotted key
    leaves the schema, or None when the key is declared (or lies in an open section or a named entry)."""
    cls = SCHEMAS[schema] if isinstance(schema, str) else schema
    for part in key.split("."):
        if cls is None or is_open(cls) or hasattr(cls, "schema_for") or not dataclasses.is_dataclass(cls):
            return None  # an entry typed by its kind: checked once composed
        fields = {f.name: f for f in dataclasses.fields(cls)}
        if part not in fields:
            return ", ".join(fields)
        cls = None if mark(fields[part], "items") is not None else section_type(fields[part])
    return None


def _declared_at(node: DictConfig, key: str) -> str:
    parent = OmegaConf.select(node, key.rpartition(".")[0]) if "." in key else node
    cls = OmegaConf.get_type(parent) if isinstance(parent, DictConfig) else None
    return ", ".join(f.name for f in dataclasses.fields(cls)) if cls and dataclasses.is_dataclass(cls) else "?"


def load(cfg, schema: type | str = AppConfig, *, paths: bool = True) -> DictConfig:
    """The typed, validated config (a DictConfig of the schema, interpolations resolved). ``paths=False``
    skips the checks that depend on this machine (configured files exist): for a stored run's config
    read elsewhere (collect, analysis), whose data may live on another machine."""
    from hybrid_sweep.config.secrets import check_no_secrets

    cls = SCHEMAS[schema] if isinstance(schema, str) else schema
    data = OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else dict(cfg)
    data.pop("hydra", None)
    check_no_secrets(data)
    out = copy.deepcopy(_template(cls))
    fields = dataclasses.fields(cls)
    for f in fields:
        sub = section_type(f)
        if sub is not None and is_open(sub):
            OmegaConf.set_struct(out[f.name], False)
    # typed apart: entries of an ``items`` field, sections whose dataclass depends on their kind
    apart = {f.name: f for f in fields if mark(f, "items") is not None
             or (section_type(f) is not None and hasattr(section_type(f), "schema_for"))}
    taken = {name: data.pop(name) for name in apart if name in data}
    try:
        out.merge_with(data)  # one in-place merge: types checked, unknown keys refused, defaults kept
    except OmegaConfBaseException as err:
        raise _merge_error(err, out, "") from None
    for name, value in taken.items():
        f = apart[name]
        if mark(f, "items") is not None:
            if not isinstance(value, dict | type(None)):
                raise ConfigError(name, f"a mapping of named entries, got {value!r}")
            out[name] = {k: _typed(mark(f, "items"), v, f"{name}.{k}") for k, v in (value or {}).items()}
            for k in out[name]:
                label(f"{name}.{k}", k)  # the entry's folder name
        else:
            out[name] = _typed(section_type(f), value, name)
    _type_kinds(out, "")
    missing = sorted(OmegaConf.missing_keys(out))
    if missing:
        raise ConfigError(re.sub(r"\[(\d+)\]", r".\1", missing[0]), "required and not set")  # sources[0] -> sources.0
    _field_checks(out, "", lambda f: active(out, f), paths)
    _check(out, "", lambda f: active(out, f))
    return out
