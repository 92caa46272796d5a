"""The batch mix: one field, ``sampler.ratio = {mono, cross, mixed}``. The named mixes are the presets
in ``conf/ratio/`` (``sampler=<name>`` presets include them), and the label in results is derived
from the ratio: the name of the preset with exactly that mix, else the three numbers."""

from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path

import yaml

from hybrid_sweep.errors import ConfigError

MODES = ("mono", "cross", "mixed")
RATIO_DIR = Path(__file__).resolve().parents[2] / "conf" / "ratio"


def check_ratio(ratio: dict, key: str = "sampler.ratio") -> tuple[float, float, float]:
    """Probabilities >= 0 summing to 1 (the one validation of the mix)."""
    unknown = set(ratio) - set(MODES)
    if unknown:
        raise ConfigError(key, f"unknown mode {sorted(unknown)[0]!r}; use mono, cross, mixed")
    try:
        p = tuple(float(ratio.get(m, 0.0)) for m in MODES)
    except (TypeError, ValueError):
        raise ConfigError(key, f"mono/cross/mixed must be numbers, got {dict(ratio)}") from None
    if any(not math.isfinite(v) or v < 0 for v in p) or abs(sum(p) - 1.0) > 1.1e-5:
        raise ConfigError(key, f"mono/cross/mixed must be >= 0 and sum to 1, got {dict(zip(MODES, p))}")
    return p


@lru_cache(maxsize=1)
def named_mixes() -> dict[tuple[float, float, float], str]:
    """(mono, cross, mixed) -> preset name, from conf/ratio/*.yaml."""
    out = {}
    for path in sorted(RATIO_DIR.glob("*.yaml")):
        ratio = (yaml.safe_load(path.read_text()) or {}).get("ratio", {})
        out[tuple(round(float(ratio.get(m, 0.0)), 6) for m in MODES)] = path.stem
    return out


def mix_label(ratio: dict) -> str:
    """``hybrid`` for 0.5 / 0.5 / 0, ``mono`` for 1 / 0 / 0, ...; unnamed mixes as ``mono=a,cross=b,mixed=c``."""
    key = tuple(round(float(ratio.get(m, 0.0)), 6) for m in MODES)
    return named_mixes().get(key) or ",".join(f"{m}={v:g}" for m, v in zip(MODES, key))
