"""The typed config of each evaluation kind (an ``evals.<name>`` entry, or ``eval`` of the evaluate CLI).

``EvalConfig`` holds what every kind has; ``EvalConfig.schema_for(entry)`` picks the kind's dataclass:

- ``pooled``: LAReQA pools or the synthetic benchmark (``PooledEvalConfig``);
- ``retrieval``: a corpus, queries and graded qrels from a BEIR folder, the MTEB hub layout or TREC files;
- ``flores``: FLORES-200 translation retrieval;
- ``mteb``: MTEB tasks through the bridge (evaluation/mteb_bridge.py).

The kind lists below are the only ones; the data and evaluation modules import them."""


from dataclasses import dataclass
from typing import Any, List, Optional

from omegaconf import ListConfig

from hybrid_sweep.config.checks import MAX_LENGTH, Check, at_least, each_of, existing_path, label, labels, one_of
from hybrid_sweep.config.marks import setting
from hybrid_sweep.errors import ConfigError

TOKEN_SETTING = Check(lambda v: v == "model" or (type(v) is int and 1 <= v <= MAX_LENGTH),
                      f"tokens in [1, {MAX_LENGTH}], model or null", 0)  # an eval entry's max_length

EVAL_KINDS = ("pooled", "retrieval", "flores", "mteb")
SETTINGS = ("mono", "cross", "multi")
FLORES_SETTINGS = ("cross", "multi")
FORMATS = ("auto", "beir", "mteb", "trec")
LAREQA_NAMES = ("xquad_r", "mlqa_r")  # data/lareqa.py LAREQA_BENCHMARKS has their folders and languages
POOLED_BENCHMARKS = ("synthetic",) + LAREQA_NAMES
SYNTHETIC_SPLITS = ("train", "dev", "test")
FLORES_SPLITS = ("dev", "test")


def _is_names(value) -> bool:
    return isinstance(value, (list, ListConfig)) and all(isinstance(x, str) for x in value)


@dataclass
class EvalConfig:
    """What every evaluation kind has."""

    kind: str = setting("pooled", check=one_of(*EVAL_KINDS), doc=" | ".join(EVAL_KINDS))
    name: str = setting(check=label)
    benchmark: Optional[str] = setting(check=label, doc="the `benchmark` value in results; retrieval: null = "
                                       "the dataset's name")
    languages: Any = setting(None, doc="a list of codes | all | null = every language (FLORES: its 20 defaults)")

    @staticmethod
    def schema_for(entry) -> type:
        kind = (entry or {}).get("kind", "pooled") if hasattr(entry, "get") else "pooled"
        if kind not in KINDS:
            raise ConfigError("kind", f"unknown kind {kind!r}; one of {', '.join(EVAL_KINDS)}")
        return KINDS[kind]

    def check(self, key: str) -> None:
        langs = self.languages
        if not (langs is None or langs == "all" or _is_names(langs)):
            raise ConfigError(f"{key}.languages", f"a list of language codes, all, or null; got {langs!r}")
        if _is_names(langs):
            if len(langs) == 0:
                raise ConfigError(f"{key}.languages", "empty list; use null for every language")
            labels(f"{key}.languages", langs)


@dataclass
class SubsetConfig:
    articles: Optional[int] = setting(None, check=at_least(1), doc="keep only the first N articles of every language")


@dataclass
class RankingEvalConfig(EvalConfig):
    """Queries ranked against candidate pools by this project's evaluator (pooled, retrieval, flores)."""

    split: str = setting("test")
    settings: List[str] = setting(factory=lambda: ["mono", "cross", "multi"], check=each_of(*SETTINGS, nonempty=True))
    subset: SubsetConfig = setting(factory=SubsetConfig)
    candidate_text: str = setting("sentence", check=one_of("sentence", "sentence_context"),
                                  doc="sentence | sentence_context (pooled only)")
    run_depth: Optional[int] = setting(100, run_id=False, check=at_least(1), doc="TREC run depth; null = full ranking")
    write_runs: List[str] = setting(factory=lambda: ["mono", "multi"], run_id=False, check=each_of(*SETTINGS))
    block_size: int = setting(1024, run_id=False, check=at_least(1), doc="query rows scored at once (bounds memory)")
    full_rank_max: int = setting(50000, check=at_least(1),
                                 doc="pools up to this size are ranked fully (exact AP); larger: top-k")
    search_dtype: str = setting("float32", run_id=False, check=one_of("float32", "float16", "bfloat16"),
                                doc="top-k pools: candidates scored in this precision (tensor cores on CUDA), "
                                "then re-scored in fp32; the same top-k as float32")

    def _only_pooled(self, key: str) -> None:
        if self.subset.articles is not None:
            raise ConfigError(f"{key}.subset.articles", f"only for kind=pooled (this entry is kind={self.kind})")
        if self.candidate_text != "sentence":
            raise ConfigError(f"{key}.candidate_text", f"only for kind=pooled (this entry is kind={self.kind})")


@dataclass
class PooledEvalConfig(RankingEvalConfig):
    """LAReQA pools (xquad_r, mlqa_r) or the embedded synthetic benchmark."""

    def check(self, key: str) -> None:
        EvalConfig.check(self, key)
        one_of(*POOLED_BENCHMARKS)(f"{key}.benchmark", self.benchmark)
        if self.benchmark == "synthetic":
            one_of(*SYNTHETIC_SPLITS)(f"{key}.split", self.split)


@dataclass
class TrecFilesConfig:
    corpus: Optional[str] = setting(None, check=existing_path, doc="corpus.jsonl | docid<TAB>text .tsv")
    topics: Optional[str] = setting(None, check=existing_path)
    qrels: Optional[str] = setting(None, check=existing_path)


@dataclass
class RetrievalEvalConfig(RankingEvalConfig):
    """Any retrieval task: a BEIR folder, a dataset in the MTEB hub layout, or TREC files."""

    kind: str = setting("retrieval", check=one_of(*EVAL_KINDS))
    benchmark: Optional[str] = setting(None, check=label, doc="the `benchmark` value in results; null = the "
                                       "dataset's / folder's name")
    settings: List[str] = setting(factory=lambda: ["mono"], check=each_of(*SETTINGS, nonempty=True),
                                  doc="one setting: mono (each query language against its corpus)")
    write_runs: List[str] = setting(factory=lambda: ["mono"], run_id=False, check=each_of(*SETTINGS))
    format: str = setting("auto", check=one_of(*FORMATS), doc="auto: BEIR if corpus.jsonl exists, else MTEB layout")
    path: Optional[str] = setting(None, check=existing_path, doc="a local folder (BEIR or MTEB layout); wins over dataset")
    dataset: Any = setting(None, doc="a hub dataset in the MTEB layout, or a list of them")
    revision: Optional[str] = setting(None, doc="pinned dataset revision (hub only)")
    lang: str = setting("en", check=label, doc="language label of a monolingual task")
    max_length: Any = setting(None, check=TOKEN_SETTING,
                              doc="encoder max tokens here; model = the model's own limit (as MTEB encodes); null = the encoder's")
    embedding_store: bool = setting(False, doc="corpora encoded once into fp16 shards on disk (memory-mapped)")
    trec: TrecFilesConfig = setting(factory=TrecFilesConfig, doc="format=trec: the three files")

    def check(self, key: str) -> None:
        EvalConfig.check(self, key)
        RankingEvalConfig._only_pooled(self, key)  # self may be the DictConfig node
        if list(self.settings) != ["mono"]:
            raise ConfigError(f"{key}.settings", "retrieval tasks have one setting, mono (each query language "
                                                 "against its corpus)")
        if not (self.dataset is None or isinstance(self.dataset, str) or _is_names(self.dataset)):
            raise ConfigError(f"{key}.dataset", f"a hub dataset name or a list of them, got {self.dataset!r}")
        if self.format == "trec":
            for name in ("corpus", "topics", "qrels"):
                if not self.trec[name]:
                    raise ConfigError(f"{key}.trec.{name}", "required with format=trec (a file path)")
        elif not self.path and not self.dataset:
            raise ConfigError(f"{key}.path", f"set {key}.path=<local folder> (BEIR or MTEB layout) or "
                                             f"{key}.dataset=<hub name>")


@dataclass
class FloresEvalConfig(RankingEvalConfig):
    """FLORES-200 (SIB-200 split) translation retrieval: cross and multi."""

    kind: str = setting("flores", check=one_of(*EVAL_KINDS))
    split: str = setting("dev", check=one_of(*FLORES_SPLITS))
    settings: List[str] = setting(factory=lambda: ["cross", "multi"], check=each_of(*FLORES_SETTINGS, nonempty=True))
    write_runs: List[str] = setting(factory=lambda: ["multi"], run_id=False, check=each_of(*FLORES_SETTINGS))
    embedding_store: bool = setting(False, doc="sentences encoded once into fp16 shards on disk")

    def check(self, key: str) -> None:
        EvalConfig.check(self, key)
        RankingEvalConfig._only_pooled(self, key)  # self may be the DictConfig node


@dataclass
class MtebEvalConfig(EvalConfig):
    """MTEB tasks on the run's checkpoint through the mteb 2.x bridge."""

    kind: str = setting("mteb", check=one_of(*EVAL_KINDS))
    tasks: List[str] = setting(factory=list, doc="MTEB task names or module:Class paths")
    splits: Optional[List[str]] = setting(None, doc="evaluation splits to keep; null = each task's own")
    metrics: Optional[List[str]] = setting(factory=lambda: ["main_score", "ndcg_at_10", "recall_at_100", "mrr_at_10",
                                                            "map_at_100"], doc="MTEB score names kept; null = all")
    symmetric_kind: str = setting("query", check=one_of("query", "passage"),
                                  doc="prefix for tasks without query/document roles")
    model_name: Optional[str] = setting(None, doc="ModelMeta name; null = hybrid_sweep/<encoder name>")
    batch_size: int = setting(64, run_id=False, check=at_least(1), doc="MTEB's data-loader batch; no effect on scores")
    overwrite: str = setting("only-missing", run_id=False, check=one_of("only-missing", "always", "never"))
    progress: bool = setting(False, run_id=False)
    max_length: Any = setting("model", check=TOKEN_SETTING, doc="encoder max tokens; model = the model's own "
                              "limit (as MTEB's leaderboard encodes); null = the encoder preset's")

    def check(self, key: str) -> None:
        EvalConfig.check(self, key)
        if not self.tasks:
            raise ConfigError(f"{key}.tasks", "name at least one MTEB task, e.g. [NanoNFCorpusRetrieval]")


KINDS = {"pooled": PooledEvalConfig, "retrieval": RetrievalEvalConfig, "flores": FloresEvalConfig,
         "mteb": MtebEvalConfig}
