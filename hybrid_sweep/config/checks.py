"""Declarative value checks for config fields (``setting(0.05, check=positive)``).

A check knows its rule and one value it refuses (``bad``), so the schema test can walk every checked
field with a bad value without a hand-kept list. ``config.load`` runs each field's check; a null value
is never checked (``Optional`` fields say null is allowed, OmegaConf refuses null elsewhere)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from hybrid_sweep.errors import ConfigError

MAX_LENGTH = 8192  # tokens: above this a max_length is a mistake (the model's own limit is checked at load)
LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")  # becomes part of a file name: no separators, no ..


@dataclass(frozen=True)
class Check:
    test: Callable[[Any], bool]
    rule: str            # completes "must be ...", or a whole message with {value} / {name}
    bad: Any             # a value the check refuses (the schema tests use it)
    message: Any = ""    # a template with {value} / {name}, or a function (value, name) -> text
    local: bool = False  # depends on this machine (a path that must exist): skipped for stored configs

    def __call__(self, key: str, value: Any) -> None:
        if value is None:
            return
        try:
            ok = self.test(value)
        except (TypeError, ValueError):
            ok = False
        if not ok:
            name = key.rsplit(".", 1)[-1]
            if callable(self.message):
                text = self.message(value, name)
            else:
                text = (self.message.format(value=value, name=name) if self.message
                        else f"must be {self.rule}, got {value!r}")
            raise ConfigError(key, text)


def at_least(n: int) -> Check:
    return Check(lambda v: v >= n, "a positive integer" if n == 1 else f">= {n}", n - 1)


positive = Check(lambda v: v > 0, "> 0", 0)
non_negative = at_least(0)


def in_range(lo: float, hi: float, *, lo_open: bool = False, hi_open: bool = False) -> Check:
    """lo..hi, each end closed unless said open."""
    rule = f"in {'(' if lo_open else '['}{lo}, {hi}{')' if hi_open else ']'}"
    return Check(lambda v: (v > lo if lo_open else v >= lo) and (v < hi if hi_open else v <= hi), rule,
                 hi if hi_open else hi + 1)


def one_of(*values: str) -> Check:
    return Check(lambda v: v in values, "", "bogus", f"unknown {{name}} {{value!r}}; one of {', '.join(values)}")


def each_of(*values: str, noun: str = "setting", nonempty: bool = False) -> Check:
    """A list whose items are all among ``values`` (and not empty when ``nonempty``)."""
    def message(value, name):
        bad = [x for x in value if x not in values]
        return (f"unknown {noun} {bad[0]!r}; one of {', '.join(values)}" if bad
                else f"at least one of {', '.join(values)} is required")
    return Check(lambda v: all(x in values for x in v) and (len(v) > 0 or not nonempty), "", ["bogus"], message)


label = Check(lambda v: bool(LABEL.match(str(v))), "", "../x",
              "{value!r} is not a plain name (letters, digits, _ . + -; it becomes part of a file name)")
labels = Check(lambda v: all(LABEL.match(str(x)) for x in (v.keys() if hasattr(v, "keys") else v)), "", ["../x"],
               "{value!r}: each must be a plain name (letters, digits, _ . + -; they become part of file names)")
token_length = in_range(1, MAX_LENGTH)
existing_path = Check(lambda v: Path(str(v)).expanduser().exists(), "", "/nonexistent/hybrid_sweep-missing",
                      "{value} does not exist (a local file or folder)", local=True)
device_spec = Check(lambda v: bool(re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", str(v))), "", "gpu",
               "unknown device {value!r}; one of auto, cpu, mps, cuda, cuda:N")


def _is_model(value) -> bool:
    """A hub id, or a local file, or a local folder holding a model (found before a run starts, not in it)."""
    if not str(value).startswith((".", "/", "~")):
        return True
    path = Path(str(value)).expanduser()
    return path.is_file() or (path / "modules.json").exists() or (path / "config.json").exists()


def _no_model(value, name) -> str:
    if Path(str(value)).expanduser().is_dir():
        return f"no model at {value} (expected modules.json or config.json)"
    return f"{value} does not exist (a local folder; a hub id starts with no / . ~)"


model_path = Check(_is_model, "", "/nonexistent/hybrid_sweep-model", _no_model, local=True)
