"""Results broken down by language group: Joshi et al. resource class, seen / unseen in fine-tuning,
and in / outside XLM-R's pre-training languages (the table in data/languages.tsv).

Input: the long metrics table. Per-language rows (``query_lang != 'avg'``) are first averaged per query
language (over its doc languages), then over the languages of each group, so every language counts once.
"""

from __future__ import annotations

import pandas as pd

from hybrid_sweep.data.languages import in_xlmr, is_seen, resource_class

COLUMNS = ["benchmark", "setting", "grouping", "group", "metric", "value", "n_langs", "languages"]


def language_groups(metrics: pd.DataFrame, train_languages=None) -> pd.DataFrame:
    """``train_languages``: the run's fine-tuning languages (None for a zero-shot run: all unseen)."""
    rows = metrics[(metrics.query_lang != "avg")]
    if rows.empty:
        return pd.DataFrame(columns=COLUMNS)
    per_lang = rows.groupby(["benchmark", "setting", "metric", "query_lang"], sort=False).value.mean().reset_index()
    langs = per_lang.query_lang.drop_duplicates()
    labels = {
        "resource_class": {x: resource_class(x) for x in langs},
        "seen": {x: "seen" if is_seen(x, train_languages) else "unseen" for x in langs},
        "xlmr_pretraining": {x: {"yes": "in", "no": "out"}.get(in_xlmr(x), "unknown") for x in langs},
    }
    out = []
    for grouping, mapping in labels.items():
        g = per_lang.assign(group=per_lang.query_lang.map(mapping))
        agg = g.groupby(["benchmark", "setting", "group", "metric"], sort=True).agg(
            value=("value", "mean"), n_langs=("query_lang", "nunique"),
            languages=("query_lang", lambda s: ",".join(sorted(set(s))))).reset_index()
        out.append(agg.assign(grouping=grouping))
    return pd.concat(out, ignore_index=True)[COLUMNS]
