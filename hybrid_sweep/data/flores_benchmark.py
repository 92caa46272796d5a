"""FLORES-200 (as split by SIB-200) as a retrieval task: sentence-level translation retrieval.

``<root>/sib200/<lang>/<split>.tsv`` (header ``index_id  category  text``; rows N-way parallel by
``index_id``). Queries are the sentences of language X, candidates the sentences of Y, the relevant
candidate the one with the same ``index_id``; ids ``<lang>:<index_id>``. Settings:
  cross  every ordered pair X != Y of the chosen languages
  multi  X against the pool of all chosen languages except X; every translation relevant
There is no mono setting (a sentence would retrieve itself).
"""

from __future__ import annotations

import csv
from pathlib import Path

from hybrid_sweep.data.retrieval_task import DocTable, QueryTable, RetrievalTask, TaskPool, check_unique
from hybrid_sweep.errors import ConfigError, DataError

from hybrid_sweep.config.eval_kinds import FLORES_SETTINGS  # noqa: E402  (defined once)
HEADER = ["index_id", "category", "text"]
# Default evaluation set (20): the FLORES codes of the 11 XQuAD-R languages, plus 9 that spread scripts
# (Jpan, Hang, Hebr, Taml, Ethi, Khmr) and Joshi classes down to 1 (Khmer, Quechua) and include two
# languages outside XLM-R's pre-training (Yoruba, Ayacucho Quechua). Classes: languages.tsv.
DEFAULT_LANGUAGES = ("arb_Arab", "deu_Latn", "ell_Grek", "eng_Latn", "spa_Latn", "hin_Deva", "rus_Cyrl",
                     "tha_Thai", "tur_Latn", "vie_Latn", "zho_Hans",
                     "jpn_Jpan", "kor_Hang", "heb_Hebr", "tam_Taml", "swh_Latn", "amh_Ethi", "yor_Latn",
                     "khm_Khmr", "quy_Latn")


def available_languages(folder: Path) -> list[str]:
    return sorted(p.name for p in Path(folder).iterdir() if p.is_dir() and (p / "dev.tsv").exists())


def read_flores_file(path: Path) -> tuple[list[str], list[str]]:
    """(index ids, texts) of one language's split file."""
    if not path.exists():
        raise DataError(path, "file not found")
    ids, texts, lines = [], [], []
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = next(reader, None)
        if header != HEADER:
            raise DataError(f"{path}:1", f"expected the header {' '.join(HEADER)!r}, got {header!r}")
        for n, row in enumerate(reader, 2):
            if len(row) != 3 or not row[0].strip():
                raise DataError(f"{path}:{n}", f"expected 3 tab-separated columns, got {len(row)}")
            ids.append(row[0].strip())
            texts.append(row[2])
            lines.append(n)
    check_unique(ids, str(path), lines)
    return ids, texts


def resolve_languages(languages, folder: Path) -> list[str]:
    have = available_languages(folder)
    if languages is None:
        langs = list(DEFAULT_LANGUAGES)
    elif languages == "all" or list(languages) == ["all"]:
        langs = have
    else:
        langs = list(languages)
    unknown = [lang for lang in langs if lang not in have]
    if unknown:
        raise ConfigError("eval.languages", f"no FLORES folder {unknown[0]!r} under {folder}; codes look like eng_Latn")
    if len(langs) < 2:
        raise ConfigError("eval.languages", "FLORES retrieval needs at least 2 languages")
    if len(set(langs)) != len(langs):
        raise ConfigError("eval.languages", "a language is listed twice")
    return langs


def load_flores(folder: Path, split: str = "dev", languages=None, settings=FLORES_SETTINGS,
                name: str = "flores") -> RetrievalTask:
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(folder, "FLORES folder not found (set paths.data_root or $HYBRID_SWEEP_DATA to the folder holding sib200/)")
    if split not in ("dev", "test"):
        raise ConfigError("eval.split", f"FLORES split must be dev or test, got {split!r}")
    for s in settings:
        if s not in FLORES_SETTINGS:
            raise ConfigError("eval.settings", f"FLORES has the settings cross and multi, got {s!r}")
    langs = resolve_languages(languages, folder)
    corpora, queries, by_lang = {}, {}, {}
    for lang in langs:
        path = folder / lang / f"{split}.tsv"
        if split == "test" and not path.exists():
            raise DataError(path, "no test split here (SIB-200's test sentences are not in this copy); use eval.split=dev")
        ids, texts = read_flores_file(path)
        doc_ids = [f"{lang}:{i}" for i in ids]
        corpora[lang] = DocTable(doc_ids, texts, None, lang)
        queries[lang] = QueryTable(doc_ids, texts, lang, ids)
        by_lang[lang] = set(ids)
    pools = []
    for setting in settings:
        for x in langs:
            group_ids = queries[x].groups
            if setting == "cross":
                for y in langs:
                    if y != x:
                        qrels = {f"{x}:{i}": ({f"{y}:{i}": 1} if i in by_lang[y] else {}) for i in group_ids}
                        pools.append(TaskPool("cross", x, y, x, (y,), qrels))
            else:
                others = tuple(y for y in langs if y != x)
                qrels = {f"{x}:{i}": {f"{y}:{i}": 1 for y in others if i in by_lang[y]} for i in group_ids}
                pools.append(TaskPool("multi", x, "all", x, others, qrels))
    return RetrievalTask(name, corpora, queries, pools)
