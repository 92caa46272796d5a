"""The shipped language table (``languages.tsv``: FLORES code, ISO 639-1, script, XLM-R CC-100, Joshi et
al. 2020 class; sources in its header) and the language groups results are broken down by."""

from __future__ import annotations

import csv
from functools import lru_cache
from importlib.resources import files

UNKNOWN = "unknown"


@lru_cache(maxsize=1)
def language_table() -> dict[str, dict[str, str]]:
    """FLORES code -> row (all fields strings; ``joshi_class`` empty where unknown)."""
    text = files("hybrid_sweep.data").joinpath("languages.tsv").read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    return {row["flores"]: row for row in csv.DictReader(lines, delimiter="\t")}


@lru_cache(maxsize=1)
def _by_alias() -> dict[str, str]:
    """Lower-case FLORES code, ISO 639-1 code, ISO 639-3 code of a single variety, and common benchmark
    spellings (zh_cn, zh-Hans, no) -> FLORES code."""
    table = language_table()
    out: dict[str, str] = {}
    iso3 = {}
    for code, row in table.items():
        out[code.lower()] = code
        if row["iso639_1"]:
            out[row["iso639_1"]] = code
        iso3.setdefault(code.split("_")[0], []).append(code)
    for three, codes in iso3.items():
        if len(codes) == 1:
            out.setdefault(three, codes[0])
    out.update({"zh_cn": "zho_Hans", "zh-hans": "zho_Hans", "zh_tw": "zho_Hant", "zh_hk": "zho_Hant",
                "zh-hant": "zho_Hant", "no": "nob_Latn", "ara": "arb_Arab", "zho": "zho_Hans"})
    return out


def flores_code(lang: str) -> str | None:
    """The FLORES code of a benchmark language label (``en``, ``eng_Latn``, ``zh_cn``), or None."""
    return _by_alias().get(str(lang).lower())


def resource_class(lang: str) -> str:
    """Joshi et al. class as a string '0'..'5', or 'unknown'."""
    code = flores_code(lang)
    value = language_table()[code]["joshi_class"] if code else ""
    return value or UNKNOWN


def in_xlmr(lang: str) -> str:
    code = flores_code(lang)
    return language_table()[code]["xlmr_cc100"] if code else UNKNOWN


def is_seen(lang: str, train_languages) -> bool:
    """Whether ``lang`` is among the fine-tuning languages (labels compared through the table)."""
    if train_languages is None:
        return False
    wanted = {flores_code(t) or str(t) for t in train_languages}
    return (flores_code(lang) or str(lang)) in wanted
