"""Load a composed config into its typed schema, once, before anything is written: defaults filled,
types checked (``OmegaConf`` structured configs), unknown keys refused outside the open sections, and
every stage's ``check`` run. Errors are one ``ConfigError`` naming the dotted key."""

from __future__ import annotations

import copy
import dataclasses
from functools import lru_cache
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigKeyError, OmegaConfBaseException

from hybrid_sweep.config.marks import is_open, mark, section_type
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


def _join(key: str, name: str) -> str:
    return f"{key}.{name}" if key else name


@lru_cache(maxsize=None)
def _template(cls: type) -> DictConfig:
    return OmegaConf.structured(cls)


def _typed(cls: type, value: Any, key: str) -> DictConfig:
    node = copy.deepcopy(_template(cls))
    if is_open(cls):
        OmegaConf.set_struct(node, False)
    try:
        return OmegaConf.merge(node, value if value is not None else {})
    except ConfigKeyError as err:
        declared = ", ".join(f.name for f in dataclasses.fields(cls))
        raise ConfigError(_join(key, err.full_key or ""), f"unknown key (declared: {declared})") from None
    except OmegaConfBaseException as err:
        raise ConfigError(_join(key, getattr(err, "full_key", "") or ""),
                          str(getattr(err, "msg", err)).splitlines()[0]) from None


def _check(cls: type, node: DictConfig, key: str, active=lambda f: True) -> None:
    """Each (active) nested section's ``check``, then the class's own."""
    for f in dataclasses.fields(cls):
        sub = section_type(f) or mark(f, "items")
        if sub is None or node[f.name] is None or not active(f):
            continue
        children = node[f.name].items() if mark(f, "items") else [(None, node[f.name])]
        for name, child in children:
            _check(sub, child, _join(_join(key, f.name), name) if name else _join(key, f.name))
    if hasattr(cls, "check"):
        cls.check(node, key)


def active(node: DictConfig, f: dataclasses.Field) -> bool:
    """A section counts unless one of its ``active_when`` switches is off (zero-shot: no training)."""
    return all(bool(OmegaConf.select(node, path, default=True)) for path in f.metadata.get("active_when", ()))


def undeclared(key: str, schema: type | str = AppConfig) -> str | None:
    """For a command-line override ``key=value`` (no ``+``): the fields declared where the dotted key
    leaves the schema, or None when the key is declared (or lies in an open section or a named entry)."""
    cls = SCHEMAS[schema] if isinstance(schema, str) else schema
    for part in key.split("."):
        if cls is None or is_open(cls) or not dataclasses.is_dataclass(cls):
            return None
        fields = {f.name: f for f in dataclasses.fields(cls)}
        if part not in fields:
            return ", ".join(fields)
        cls = None if mark(fields[part], "items") is not None else section_type(fields[part])
    return None


def _declared_at(node: DictConfig, key: str) -> str:
    parent = OmegaConf.select(node, key.rpartition(".")[0]) if "." in key else node
    cls = OmegaConf.get_type(parent) if isinstance(parent, DictConfig) else None
    return ", ".join(f.name for f in dataclasses.fields(cls)) if cls and dataclasses.is_dataclass(cls) else "?"


def load(cfg, schema: type | str = AppConfig) -> DictConfig:
    """The typed, validated config (a DictConfig of the schema, interpolations resolved)."""
    from hybrid_sweep.cli import check_no_secrets

    cls = SCHEMAS[schema] if isinstance(schema, str) else schema
    data = OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else dict(cfg)
    data.pop("hydra", None)
    check_no_secrets(data)
    out = copy.deepcopy(_template(cls))
    item_fields = {f.name: mark(f, "items") for f in dataclasses.fields(cls) if mark(f, "items") is not None}
    for f in dataclasses.fields(cls):
        sub = section_type(f)
        if sub is not None and is_open(sub):
            OmegaConf.set_struct(out[f.name], False)
    items = {name: data.pop(name) for name in item_fields if name in data}
    try:
        out.merge_with(data)  # one in-place merge: types checked, unknown keys refused, defaults kept
    except ConfigKeyError as err:
        key = err.full_key or ""
        raise ConfigError(key, f"unknown key (declared: {_declared_at(out, key)})") from None
    except OmegaConfBaseException as err:
        raise ConfigError(getattr(err, "full_key", "") or "", str(getattr(err, "msg", err)).splitlines()[0]) from None
    for name, entries in items.items():
        out[name] = {k: _typed(item_fields[name], v, f"{name}.{k}") for k, v in (entries or {}).items()}
    missing = sorted(OmegaConf.missing_keys(out))
    if missing:
        raise ConfigError(missing[0], "required and not set")
    _check(cls, out, "", lambda f: active(out, f))
    return out
