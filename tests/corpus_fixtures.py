"""Fixture files in the exact layouts of the real training sets (/work/shared/docs/dataset-layouts.md),
read by the presets through the same ``datasets.load_dataset`` calls, with a local folder for the hub id."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

LANG_NAMES = {"de": "German", "es": "Spanish", "hi": "Hindi", "en": "English"}


def documented_rows(n_groups: int = 24, langs=("de", "en"), negatives: int = 1) -> list[dict]:
    """Rows in the documented JSONL / parquet schema, parallel across ``langs``."""
    return [{"group": f"g{g}", "lang": lang, "query": f"{lang} question {g} about topic{g}",
             "positive": f"{lang} answer {g} on topic{g}",
             "negatives": [f"{lang} distractor {g}.{k} on other{g}" for k in range(negatives)]}
            for g in range(n_groups) for lang in langs]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def _hub_readme(folder: Path, configs: list[str]) -> None:
    """The `configs:` card header `push_to_hub` writes: config <c> = files <c>/train-*."""
    lines = ["---", "configs:"]
    for c in configs:
        lines += [f"- config_name: {c}", "  data_files:", "  - split: train", f"    path: {c}/train-*"]
    (folder / "README.md").write_text("\n".join(lines + ["---", "", "Fixture in the SWIM-IR layout.", ""]))


def write_swim_ir(root: Path, cross_langs=("de", "es", "hi"), mono_langs=("en", "de", "es", "hi"), n: int = 20) -> dict:
    """Local copies of nthakur/swim-ir-cross-lingual and nthakur/swim-ir-monolingual: one parquet config per
    language, columns _id, lang, code, query, title, text (all strings). Cross-lingual: query in the code's
    language, passage (title/text) in English; monolingual: both in the code's language."""
    repos = {}
    for repo, langs, cross in (("swim-ir-cross-lingual", cross_langs, True), ("swim-ir-monolingual", mono_langs, False)):
        folder = root / repo
        for lang in langs:
            rows = [{"_id": f"{1000 + i}" if cross else f"{LANG_NAMES[lang].lower()}_{i}#0",
                     "lang": LANG_NAMES[lang], "code": lang, "query": f"{lang} query {i} on subject{i}",
                     "title": f"Title {i}", "text": (f"english passage {i} on subject{i}" if cross
                                                     else f"{lang} passage {i} on subject{i}")}
                    for i in range(n)]
            (folder / lang).mkdir(parents=True, exist_ok=True)
            pd.DataFrame(rows).to_parquet(folder / lang / "train-00000-of-00001.parquet", index=False)
        _hub_readme(folder, list(langs))
        repos[repo] = folder
    return repos


MMARCO_LANGS = {"en": "english", "de": "german", "es": "spanish"}


def write_mmarco(root: Path, n_queries: int = 24, triples_per_query: int = 3) -> Path:
    """A local copy of unicamp-dl/mmarco (v2 `google` files): TSV without header, collection `pid\\ttext`,
    train queries `qid\\ttext`, shared triples `qid\\tpos_pid\\tneg_pid`. Texts carry their language and
    ids, so tests can check that rows are joined by id (parallel across languages)."""
    folder = root / "mmarco"
    (folder / "data" / "google" / "collections").mkdir(parents=True)
    (folder / "data" / "google" / "queries" / "train").mkdir(parents=True)
    pids = range(500, 500 + 2 * n_queries * triples_per_query)
    for lang, name in MMARCO_LANGS.items():
        (folder / "data" / "google" / "collections" / f"{name}_collection.tsv").write_text(
            "".join(f"{pid}\t{lang} passage \"{pid}\" text{pid}\n" for pid in pids), encoding="utf-8")
        (folder / "data" / "google" / "queries" / "train" / f"{name}_queries.train.tsv").write_text(
            "".join(f"{qid}\t{lang} query {qid} about q{qid}\n" for qid in range(7, 7 + n_queries)), encoding="utf-8")
    lines = []
    for k in range(triples_per_query):
        for i, qid in enumerate(range(7, 7 + n_queries)):
            pos = 500 + i * triples_per_query + k
            neg = 500 + n_queries * triples_per_query + (i * 7 + k) % (n_queries * triples_per_query)
            lines.append(f"{qid}\t{pos}\t{neg}\n")
    (folder / "data" / "triples.train.ids.small.tsv").write_text("".join(lines))
    return folder
