"""FLORES-200 translation pairs (SIB-200 split) as a cross-lingual training source (``kind: flores``).

Reads ``<data root>/sib200/<FLORES code>/<split>.tsv`` (columns ``index_id``, ``category``, ``text``; the
same ``index_id`` in every language is one N-way parallel sentence). Every language contributes one row per
sentence with the sentence as both query and positive: a group is an ``index_id``, so a cross-lingual
example is a sentence in X with its translation in Y as the positive. Within one language the query would
be its own positive, so the store is ``cross_only``: it serves cross-lingual batches only, and is combined
with a source that has monolingual data (MLQA-R: ``conf/data/mlqa_r_flores.yaml``). No hard negatives.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.csv as pcsv

from hybrid_sweep.config.load import typed_section
from hybrid_sweep.config.sources import FloresSource
from hybrid_sweep.data.corpus_store import CorpusStore, store_from_batches
from hybrid_sweep.data.download import ENV_VAR, data_root
from hybrid_sweep.errors import ConfigError, DataError


def read_flores_tsv(path) -> pa.Table:
    if not path.exists():
        raise DataError(path, f"file not found (FLORES / SIB-200 files under <data root>/sib200; set ${ENV_VAR})")
    try:
        table = pcsv.read_csv(path, parse_options=pcsv.ParseOptions(delimiter="\t", quote_char=False),
                              convert_options=pcsv.ConvertOptions(column_types={"index_id": pa.string(), "text": pa.string()}))
    except pa.ArrowInvalid as err:
        raise DataError(path, f"cannot read ({str(err).splitlines()[0][:200]})") from None
    for col in ("index_id", "text"):
        if col not in table.column_names:
            raise DataError(path, f"missing column '{col}'")
    return table


def load_flores_pairs(src, configured_root: str | None) -> CorpusStore:
    """``src.languages`` maps training language codes to FLORES codes, e.g. ``{de: deu_Latn}``."""
    src = typed_section(src, FloresSource, "data.sources")  # split checked there
    split = src.split
    langs = dict(src.languages)
    if len(langs) < 2:
        raise ConfigError("data.sources.languages", "a FLORES source needs at least two languages (code: flores_code)")
    root, _ = data_root(configured_root)
    batches = []
    for lang, code in langs.items():
        table = read_flores_tsv(root / "sib200" / str(code) / f"{split}.tsv")
        text = table.column("text")
        batches += pa.table({"group": table.column("index_id"), "lang": pa.array([lang] * table.num_rows, pa.string()),
                             "query": text, "positive": text}).to_batches()
    return store_from_batches(src.name or "flores", batches, f"sib200/{split}", parallel=True, cross_only=True)
