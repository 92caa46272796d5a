"""Fixture writers in the real on-disk / hub layouts (docs: /work/shared/docs/dataset-layouts.md)."""

import json
from pathlib import Path

import pandas as pd


def write_beir(folder: Path, corpus, queries, qrels: dict[str, list[tuple]]) -> Path:
    """corpus: [(id, title, text)], queries: [(id, text)], qrels: split -> [(qid, docid, score)]."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "corpus.jsonl", "w", encoding="utf-8") as f:
        for i, title, text in corpus:
            f.write(json.dumps({"_id": i, "title": title, "text": text, "metadata": {}}) + "\n")
    with open(folder / "queries.jsonl", "w", encoding="utf-8") as f:
        for i, text in queries:
            f.write(json.dumps({"_id": i, "text": text, "metadata": {}}) + "\n")
    (folder / "qrels").mkdir(exist_ok=True)
    for split, rows in qrels.items():
        lines = ["query-id\tcorpus-id\tscore"] + [f"{q}\t{d}\t{s}" for q, d, s in rows]
        (folder / "qrels" / f"{split}.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def write_mteb_repo(folder: Path, configs: dict[str, dict[str, pd.DataFrame]]) -> Path:
    """A hub dataset repository as mteb pushes it: ``<config>/<split>-00000-of-00001.parquet`` per
    (config, split) and a README.md whose YAML ``configs:`` section declares them."""
    folder.mkdir(parents=True, exist_ok=True)
    card = ["---", "configs:"]
    for config, splits in configs.items():
        card += [f"- config_name: {config}", "  data_files:"]
        for split, frame in splits.items():
            (folder / config).mkdir(exist_ok=True)
            frame.to_parquet(folder / config / f"{split}-00000-of-00001.parquet", index=False)
            card += [f"  - split: {split}", f"    path: {config}/{split}-*.parquet"]
    card += ["---", "", "Test fixture in the MTEB retrieval layout."]
    (folder / "README.md").write_text("\n".join(card) + "\n", encoding="utf-8")
    return folder


def mteb_subset(lang: str, n_docs=6, n_queries=4, split="dev", id_col="_id", score_dtype="int64",
                corpus_split=None, title=True):
    """The three configs of one per-language subset (``<lang>-corpus`` / ``-queries`` / ``-qrels``)."""
    docs = pd.DataFrame({id_col: [f"{lang}-d{i}" for i in range(n_docs)],
                         "text": [f"{lang} document number {i}" for i in range(n_docs)]})
    if title:
        docs["title"] = [f"title {i}" for i in range(n_docs)]
    queries = pd.DataFrame({id_col: [f"{lang}-q{i}" for i in range(n_queries)],
                            "text": [f"{lang} question {i}" for i in range(n_queries)]})
    qrels = pd.DataFrame({"query-id": [f"{lang}-q{i}" for i in range(n_queries)] + [f"{lang}-q0"],
                          "corpus-id": [f"{lang}-d{i}" for i in range(n_queries)] + [f"{lang}-d{n_docs - 1}"],
                          "score": pd.Series([1] * n_queries + [0], dtype=score_dtype)})
    return {f"{lang}-corpus": {corpus_split or split: docs}, f"{lang}-queries": {corpus_split or split: queries},
            f"{lang}-qrels": {split: qrels}}
