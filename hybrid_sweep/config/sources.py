"""The typed config of each training-data source (``data.sources[i]``, by its ``kind``) and of
``data.dev`` (a source, or a held-out split of one). The keys each kind reads are those of
data/corpus_loading.py, data/hub_sources.py, data/flores_pairs.py and data/ict_queries.py."""


from dataclasses import dataclass
from typing import Any, Dict, List, Optional

from hybrid_sweep.config.checks import at_least, existing_path, in_range, labels, one_of
from hybrid_sweep.config.eval_kinds import LAREQA_NAMES
from hybrid_sweep.config.marks import setting
from hybrid_sweep.errors import ConfigError

SOURCE_KINDS = ("synthetic", "lareqa", "file", "hub", "mmarco", "flores", "inverse_cloze")
FLORES_TRAIN_SPLITS = ("train", "dev")


@dataclass
class SourceConfig:
    """What every source has."""

    kind: str = setting(check=one_of(*SOURCE_KINDS), doc=" | ".join(SOURCE_KINDS))
    name: Optional[str] = setting(None, doc="label in logs and the Arrow store; null: path, benchmark or kind")
    n_negatives: Optional[int] = setting(None, check=at_least(0), doc="hard negatives kept; null = all (max_negatives)")

    @staticmethod
    def schema_for(src) -> type:
        kind = src.get("kind") if hasattr(src, "get") else None
        if kind is None:
            raise ConfigError("kind", f"required: one of {', '.join(SOURCE_KINDS)}")
        if kind not in SOURCE_KINDS:
            raise ConfigError("kind", f"unknown kind {kind!r}; one of {', '.join(SOURCE_KINDS)}")
        return KINDS[kind]


@dataclass
class SyntheticSource(SourceConfig):
    split: str = setting("train", check=one_of("train", "dev", "test"))


@dataclass
class LareqaSource(SourceConfig):
    benchmark: str = setting(check=one_of(*LAREQA_NAMES))


@dataclass
class InverseClozeSource(SourceConfig):
    benchmark: str = setting(check=one_of(*LAREQA_NAMES), doc="queries by inverse cloze from its paragraphs")


@dataclass
class FileSource(SourceConfig):
    path: str = setting(check=existing_path, doc="a JSONL or parquet file in the documented schema")
    parallel: bool = setting(True, doc="rows sharing `group` are translations of one item")


@dataclass
class HubFields:
    group: Optional[str] = setting(None)
    query: Optional[str] = setting(None)
    positive: Optional[str] = setting(None)
    negatives: Optional[str] = setting(None)


@dataclass
class HubSource(SourceConfig):
    parallel: bool = setting(True)
    passage_lang: Optional[str] = setting(None, doc="each row: a query row in X and a passage row in this language")
    group_scope: str = setting("source", check=one_of("source", "language"))
    fields: HubFields = setting(factory=HubFields, doc="column names")
    max_rows_per_lang: Optional[int] = setting(None, check=at_least(1))
    languages: Dict[str, Any] = setting(factory=dict, check=labels,
                                        doc="language -> {path, name, split, ...} (datasets.load_dataset)")

    def check(self, key: str) -> None:
        if not self.languages:
            raise ConfigError(f"{key}.languages", "lists no languages")
        if not self.fields.group:
            raise ConfigError(f"{key}.fields.group", "names no group column")


@dataclass
class MmarcoSource(SourceConfig):
    path: str = setting(doc="hub repository or a local copy")
    triples: str = setting()
    collection: str = setting(doc="with {language}")
    queries: str = setting(doc="with {language}")
    max_rows_per_lang: Optional[int] = setting(None, check=at_least(1))
    languages: Dict[str, str] = setting(factory=dict, check=labels, doc="training code -> mMARCO language name")

    def check(self, key: str) -> None:
        if not self.languages:
            raise ConfigError(f"{key}.languages", "lists no languages")


@dataclass
class FloresSource(SourceConfig):
    split: str = setting("train", check=one_of(*FLORES_TRAIN_SPLITS))
    languages: Dict[str, str] = setting(factory=dict, check=labels, doc="training code -> FLORES code")

    def check(self, key: str) -> None:
        if len(self.languages) < 2:
            raise ConfigError(f"{key}.languages", "a FLORES source needs at least two languages (code: flores_code)")


@dataclass
class HoldoutConfig:
    """``data.dev`` as a held-out split of a training source."""

    holdout: float = setting(check=in_range(0, 1, lo_open=True, hi_open=True), doc="fraction of groups held out")
    seed: int = setting(0)
    languages: Optional[List[str]] = setting(None, check=labels, doc="validation languages; null = training ones")
    source: int = setting(0, check=at_least(0), doc="index of the source held out from")


class DevConfig:
    """``data.dev``: a source (it has a ``kind``) or a held-out split (``HoldoutConfig``)."""

    @staticmethod
    def schema_for(dev) -> type:
        return SourceConfig.schema_for(dev) if hasattr(dev, "get") and dev.get("kind") else HoldoutConfig


KINDS = {"synthetic": SyntheticSource, "lareqa": LareqaSource, "file": FileSource, "hub": HubSource,
         "mmarco": MmarcoSource, "flores": FloresSource, "inverse_cloze": InverseClozeSource}
