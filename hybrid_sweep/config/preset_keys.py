"""Before Hydra composes: an override of a key that the chosen preset does not have (``logger.mode=x``
with ``logger=none``, ``encoder.layers=2`` with ``encoder=tiny``) is one line naming the key and the presets
that do have it, instead of Hydra's multi-line "Could not override". Read from conf/ as Hydra would
(each preset with its ``defaults`` chain); where a sweep or another primary config could change what is
chosen, nothing is said and Hydra decides."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import yaml

from hybrid_sweep.errors import ConfigError

_ABSENT, _UNKNOWN = object(), object()


@lru_cache(maxsize=None)
def _preset(folder: str, option: str) -> dict | None:
    """The preset's keys merged over its defaults chain (same group); None where that cannot be read."""
    path = Path(folder) / f"{option}.yaml"
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError):
        return None
    if not isinstance(raw, dict):
        return None
    merged: dict = {}
    for entry in raw.pop("defaults", None) or []:
        if entry == "_self_":
            continue
        parent = _preset(folder, entry) if isinstance(entry, str) else None
        if parent is None:
            return None
        _merge(merged, parent)
    _merge(merged, raw)
    return merged


def _merge(into: dict, new: dict) -> None:
    for k, v in new.items():
        if isinstance(v, dict) and isinstance(into.get(k), dict):
            _merge(into[k], v)
        else:
            into[k] = v


def _lookup(node, parts: list[str]):
    """_ABSENT when the dotted path leaves the preset's keys; _UNKNOWN where a value of the preset is
    not a mapping (null, an interpolation) and so cannot tell."""
    for part in parts:
        if isinstance(node, dict):
            if part not in node:
                return _ABSENT
            node = node[part]
        elif isinstance(node, list):
            if not part.isdigit():
                return _UNKNOWN
            if int(part) >= len(node):
                return _ABSENT
            node = node[int(part)]
        else:
            return _UNKNOWN
    return node


def _chosen(conf: Path, config_name: str, argv: list[str]) -> dict[str, tuple[str, list[str]]] | None:
    """Package -> (group, options) as the command line and the primary config's defaults choose them."""
    try:
        primary = yaml.safe_load((conf / f"{config_name}.yaml").read_text()) or {}
    except (OSError, yaml.YAMLError):
        return None
    chosen: dict[str, tuple[str, list[str]]] = {}
    for entry in primary.get("defaults") or []:
        if isinstance(entry, dict) and len(entry) == 1:
            (key, value), = entry.items()
            if isinstance(value, str) and not key.startswith("override"):
                group, _, package = key.partition("@")
                chosen[package or group] = (group, [value])
    for arg in argv:
        key, _, value = arg.partition("=")
        bare = key.lstrip("+~")
        group, _, package = bare.partition("@")
        if "." in group or group.startswith("hydra") or not (conf / group).is_dir():
            continue
        if key.startswith("~") or value in ("", "null"):
            chosen.pop(package or group, None)
        else:
            chosen[package or group] = (group, value.split(","))
    return chosen


def check_preset_keys(argv: list[str], conf: Path, config_name: str) -> None:
    """Raise a ConfigError for a ``group.key=value`` override whose preset lacks the key."""
    if any(a.startswith(("--config", "-cn", "-cp", "-cd", "+sweep", "sweep=")) for a in argv):
        return  # another primary config or a sweep's own defaults: Hydra knows, we do not
    overrides = [a for a in argv if "=" in a and not a.startswith(("-", "+", "~"))]
    if not overrides:
        return
    chosen = _chosen(conf, config_name, argv)
    if chosen is None:
        return
    for arg in overrides:
        key = arg.split("=", 1)[0]
        package = max((p for p in chosen if key.startswith(p + ".")), key=len, default=None)
        if package is None:
            continue
        group, options = chosen[package]
        rest = key[len(package) + 1:].split(".")
        for option in options:
            found = _preset(str(conf / group), option)
            if found is None or _lookup(found, rest) is not _ABSENT:
                continue
            having = [p.stem for p in sorted((conf / group).glob("*.yaml")) if _has(conf / group, p.stem, rest)]
            where = f"presets that have it: {', '.join(having)}" if having else "no preset has it"
            raise ConfigError(key, f"the {group} preset {option!r} has no such setting ({where})")


def _has(folder: Path, option: str, rest: list[str]) -> bool:
    """A complete preset (not a shared base such as base.yaml) that has the key."""
    found = _preset(str(folder), option)
    return found is not None and found.get("name") not in (None, "???") and _lookup(found, rest) is not _ABSENT
