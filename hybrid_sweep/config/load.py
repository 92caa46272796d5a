"""Load a composed config into its typed schema, once, before anything is written: defaults filled,
types checked (``OmegaConf`` structured configs), unknown keys refused outside the open sections, and
every stage's ``check`` run. Errors are one ``ConfigError`` naming the dotted key."""

from __future__ import annotations

import dataclasses
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


def _typed(cls: type, value: Any, key: str) -> DictConfig:
    node = OmegaConf.structured(cls)
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
    """Required keys set, then each (active) nested section's ``check``, then the class's own."""
    missing = sorted(OmegaConf.missing_keys(node))
    if missing:
        raise ConfigError(_join(key, missing[0]), "required and not set")
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


def load(cfg, schema: type | str = AppConfig) -> DictConfig:
    """The typed, validated config (a DictConfig of the schema, interpolations resolved)."""
    from hybrid_sweep.cli import check_no_secrets

    cls = SCHEMAS[schema] if isinstance(schema, str) else schema
    data = OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else dict(cfg)
    data.pop("hydra", None)
    check_no_secrets(data)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(unknown[0], f"unknown key (declared: {', '.join(sorted(known))})")
    out = OmegaConf.structured(cls)
    for f in dataclasses.fields(cls):
        if f.name not in data:
            continue
        sub, items = section_type(f), mark(f, "items")
        if sub is not None:
            out[f.name] = _typed(sub, data[f.name], f.name)
        elif items is not None:
            out[f.name] = {name: _typed(items, v, f"{f.name}.{name}") for name, v in (data[f.name] or {}).items()}
        else:
            try:
                out[f.name] = data[f.name]
            except OmegaConfBaseException as err:
                raise ConfigError(f.name, str(getattr(err, "msg", err)).splitlines()[0]) from None
    _check(cls, out, "", lambda f: active(out, f))
    return out
