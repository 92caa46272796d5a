"""The typed config of every stage: fields, defaults, docs and marks (see ``marks.setting``), and each
stage's validation (``check``, run once on the composed config before anything is written).

YAML presets in ``conf/`` set values on top of these declarations; a key no dataclass declares is an
error (``<key>: unknown key``) except in the open sections (``OPEN = True``: evaluation benchmarks and
training data, whose kind-specific keys live in their presets)."""

from dataclasses import dataclass
from typing import Any, ClassVar, Dict, List, Optional

from omegaconf import ListConfig

from hybrid_sweep.config.marks import DerivedAxis, section, setting
from hybrid_sweep.config.mix import MODES, check_ratio, mix_label
from hybrid_sweep.errors import ConfigError

CONFIG_SCHEMA_VERSION = "2"  # 2: typed stage configs, one batch-mix field (run ids changed from 1)


def _one_of(key: str, value, allowed) -> None:
    if value not in allowed:
        raise ConfigError(key, f"must be one of {', '.join(map(str, allowed))}, got {value!r}")


@dataclass
class PathsConfig:
    data_root: Optional[str] = setting(None, doc="LAReQA folder; null: $HYBRID_SWEEP_DATA or the user cache")


@dataclass
class SyntheticConfig:
    """The embedded synthetic benchmark's generator (conf/synthetic/default.yaml holds the values)."""

    seed: int = setting(0)
    languages: List[Any] = setting(doc="{code, script, order, resource} per language (set by the preset)")
    n_concepts: int = setting(300)
    n_named: int = setting(120)
    articles: Dict[str, int] = setting(factory=lambda: {"train": 60, "dev": 6, "test": 10})
    paragraphs_per_article: int = setting(4)
    sentences_per_paragraph: List[int] = setting(factory=lambda: [4, 6])
    sentence_length: List[int] = setting(factory=lambda: [6, 10])
    questions_per_paragraph: int = setting(3)
    topic_size: int = setting(40)
    question_keep: int = setting(3)
    question_noise: int = setting(1)
    resource_levels: Dict[str, float] = setting(factory=lambda: {"high": 1.0, "mid": 0.5, "low": 0.15})


@dataclass
class TinyEncoderConfig:
    hidden: int = setting(64)
    layers: int = setting(2)
    heads: int = setting(4)
    intermediate: int = setting(128)
    vocab_size: int = setting(8000)
    vocab_from: str = setting("all_languages", doc="all_languages | training_languages")
    seed: int = setting(0)


@dataclass
class EncoderConfig:
    name: str = setting(axis="encoder", doc="preset name")
    kind: str = setting("pretrained", doc="pretrained | tiny | me5_small_q4")
    path: Optional[str] = setting(None, doc="hub id or local folder (kind=pretrained)")
    format: str = setting("auto", doc="auto | sentence_transformers | transformers")
    device: str = setting("auto", run_id=False, doc="auto | cpu | cuda | cuda:N")
    pooling: str = setting("mean", doc="mean | cls (plain transformers models)")
    normalize: bool = setting(True)
    query_prefix: Optional[str] = setting(None, doc="null: the model's saved prompt")
    passage_prefix: Optional[str] = setting(None)
    max_length: int = setting(128)
    batch_size: int = setting(64, run_id=False, doc="texts per encoding forward")
    progress: bool = setting(True, run_id=False)
    cache_dir: Optional[str] = setting(None, run_id=False, doc="converted models; null: the user cache")
    layers: Optional[int] = setting(None, doc="me5_small_q4: keep the first N layers")
    tiny: Optional[TinyEncoderConfig] = setting(None, doc="kind=tiny: the random model's shape")

    def check(self, key: str) -> None:
        _one_of(f"{key}.kind", self.kind, ("pretrained", "tiny", "me5_small_q4"))
        _one_of(f"{key}.format", self.format, ("auto", "sentence_transformers", "transformers"))
        _one_of(f"{key}.pooling", self.pooling, ("mean", "cls"))
        if self.kind == "tiny" and self.tiny is None:
            raise ConfigError(f"{key}.tiny", "kind=tiny needs the tiny model's shape")


@dataclass
class DataConfig:
    OPEN: ClassVar[bool] = True  # source kinds add their own keys (e.g. synthetic_swim's pivot)

    name: str = setting(axis="data")
    sources: List[Any] = setting(doc="[{kind: synthetic|lareqa|file|hub, ...}]")
    dev: Optional[Any] = setting(None, doc="a source, or {holdout, seed, languages}")
    languages: Optional[List[str]] = setting(None, doc="training languages; null = every language")
    budgets: Dict[str, Any] = setting(factory=dict, doc="language -> max groups")
    with_context: bool = setting(False)
    max_negatives: int = setting(3)
    cache_dir: Optional[str] = setting(None, run_id=False, doc="Arrow stores of the sources; null = user cache")

    AXES: ClassVar[tuple] = (
        DerivedAxis("train_langs", lambda d, extra: _train_langs(d, extra, ",")),
        DerivedAxis("n_train_langs", lambda d, extra: _train_langs(d, extra, None), scale="log"),
    )

    def check(self, key: str) -> None:
        if self.languages is not None and len(self.languages) == 0:
            raise ConfigError(f"{key}.languages", "empty training-language set")


def _train_langs(data, extra: dict, sep: str | None):
    langs = data.languages if data.languages is not None else (extra.get("train_summary") or {}).get("languages")
    if sep is None:
        return len(langs) if langs else None
    return sep.join(sorted(langs)) if langs else "all"


@dataclass
class RatioConfig:
    """The batch mix: probabilities of monolingual, cross-lingual and mixed-language batches."""

    mono: float = setting(0.5, axis="ratio_mono", scale="linear")
    cross: float = setting(0.5, axis="ratio_cross", scale="linear")
    mixed: float = setting(0.0, axis="ratio_mixed", scale="linear")


@dataclass
class SamplerConfig:
    ratio: RatioConfig = setting(factory=RatioConfig, doc="the batch mix (conf/ratio/ names the presets)")
    n_pairs: Optional[int] = setting(None, axis="n_pairs", scale="log", doc="first n ordered language pairs")
    pair_seed: int = setting(0, doc="fixes the pair order independently of the training seed")
    weights: Optional[List[float]] = setting(None, doc="per-source sampling weights; null = by size")
    n_negatives: int = setting(1, doc="hard negatives per example")
    pair_kind: str = setting("ordered", axis="pair_kind",
                             doc="ordered: n_pairs counts directed pairs; unordered: {X,Y}, both directions")
    pair_draw: str = setting("fixed", axis="pair_draw", doc="fixed: pair order from pair_seed; per_seed: also train.seed")
    mono_languages: str = setting("all", axis="mono_languages", doc="mono/mixed batch languages: all | pairs")

    AXES: ClassVar[tuple] = (
        DerivedAxis("sampler", lambda s, extra: mix_label({m: s.ratio[m] for m in MODES}), inactive="zero-shot"),
    )

    def check(self, key: str) -> None:
        check_ratio({m: self.ratio[m] for m in MODES}, f"{key}.ratio")
        if self.n_pairs is not None and self.n_pairs < 1:
            raise ConfigError(f"{key}.n_pairs", f"must be >= 1 or null, got {self.n_pairs}")
        _one_of(f"{key}.pair_kind", self.pair_kind, ("ordered", "unordered"))
        _one_of(f"{key}.pair_draw", self.pair_draw, ("fixed", "per_seed"))
        _one_of(f"{key}.mono_languages", self.mono_languages, ("all", "pairs"))


@dataclass
class GradCacheConfig:
    enabled: bool = setting(False)
    chunk_size: int = setting(64, doc="texts per forward in GradCache")


@dataclass
class TrainConfig:
    enabled: bool = setting(True, axis="trained", inactive=False, doc="false: zero-shot evaluation")
    seed: int = setting(0, axis="seed", repetition=True)
    batch_size: int = setting(100, axis="batch_size", scale="log", doc="global batch")
    max_steps: int = setting(1000, axis="max_steps", scale="log", inactive=0)
    schedule_steps: Optional[int] = setting(None, doc="LR schedule length; null = max_steps")
    lr: float = setting(3.0e-5, axis="lr", scale="log")
    weight_decay: float = setting(0.01)
    warmup: float = setting(0.1, doc="fraction of max_steps (< 1) or a number of steps")
    grad_clip: float = setting(1.0)
    temperature: float = setting(0.05)
    in_batch_positives: bool = setting(True)
    symmetric: bool = setting(False)
    mask_false_negatives: bool = setting(True, doc="drop in-batch candidates equal to a row's own positive")
    dropout: Optional[float] = setting(None, doc="every dropout layer's rate; null = the model's own")
    grad_cache: GradCacheConfig = setting(factory=GradCacheConfig)
    gradient_checkpointing: bool = setting(False)
    bf16: bool = setting(True, doc="autocast on CUDA only")
    eval_every: int = setting(100)
    val_batches: int = setting(4)
    val_seed: Optional[int] = setting(None, absent=None, doc="seed of the validation batches; null: the "
                                      "training seed + an offset (each seed its own validation set)")
    patience: Optional[int] = setting(None)
    save_every: int = setting(100)
    log_every: int = setting(1, run_id=False, doc="loss to the host and train_log.jsonl every N steps")
    prefetch: int = setting(2, run_id=False, doc="batches drawn ahead in a background thread")
    log_batches: bool = setting(False, run_id=False)
    resume: bool = setting(True, run_id=False)
    deterministic: bool = setting(False, run_id=False, doc="deterministic CUDA kernels: a resumed run repeats "
                                  "the uninterrupted one bit for bit on a GPU too (slower)")

    def check(self, key: str) -> None:
        if self.batch_size < 2:
            raise ConfigError(f"{key}.batch_size", "must be >= 2 (in-batch negatives)")
        if self.log_every < 1:
            raise ConfigError(f"{key}.log_every", f"must be >= 1, got {self.log_every}")


@dataclass
class PretrainConfig:
    DEPENDS_ON: ClassVar[tuple] = ("encoder", "data", "synthetic")  # sections its cache key includes

    enabled: bool = setting(False)
    base_languages: List[str] = setting(factory=list, cache_key=False, doc="always pre-trained on")
    low_resource: List[str] = setting(factory=list, cache_key=False, doc="added one by one: the axis")
    n_low_resource: int = setting(0, axis="pretrain_low_resource", scale="linear", cache_key=False)
    text_source: str = setting("synthetic", doc="synthetic | flores (both apart from fine-tuning) | training_data | hub")
    text_split: str = setting("train", doc="flores: the SIB-200 split read (evaluation reads dev)")
    text_articles: int = setting(60, doc="synthetic: articles in the fresh pre-training sample")
    text_seed: int = setting(1, doc="synthetic: content seed of that sample (with synthetic.seed)")
    max_texts_per_language: Optional[int] = setting(None, doc="cap per language; null = all")
    hub: Dict[str, Any] = setting(factory=dict, doc="per language: {path, name, split, text_field, max_texts}")
    max_steps: int = setting(200)
    batch_size: int = setting(32)
    lr: float = setting(5.0e-4, doc="tiny random encoder: 5e-4; a pre-trained checkpoint: 5e-5 (conf/pretrain/mlm_flores)")
    mlm_probability: float = setting(0.15)
    max_length: int = setting(64)
    seed: int = setting(0)

    def languages(self) -> List[str]:
        """base_languages plus the first n_low_resource of low_resource (what the cache key holds)."""
        n, low = int(self.n_low_resource), list(self.low_resource or [])
        if not 0 <= n <= len(low):
            raise ConfigError("pretrain.n_low_resource", f"must be in 0..{len(low)} (the low_resource list), got {n}")
        langs = list(self.base_languages or []) + low[:n]
        if not langs:
            raise ConfigError("pretrain.base_languages", "no language to pre-train on")
        return langs

    def cache_extra(self) -> dict:
        return {"languages": PretrainConfig.languages(self)}

    def check(self, key: str) -> None:
        if self.enabled:
            PretrainConfig.languages(self)  # self may be the DictConfig node
            _one_of(f"{key}.text_source", self.text_source, ("synthetic", "flores", "training_data", "hub"))
            _one_of(f"{key}.text_split", self.text_split, ("train", "dev"))
            if self.max_texts_per_language is not None and self.max_texts_per_language < 1:
                raise ConfigError(f"{key}.max_texts_per_language", f"must be >= 1 or null, got {self.max_texts_per_language}")


@dataclass
class SubsetConfig:
    articles: Optional[int] = setting(None, doc="keep only the first N articles of every language")


@dataclass
class EvalConfig:
    OPEN: ClassVar[bool] = True  # benchmark kinds add their own keys (split, path, ...)

    kind: str = setting("pooled", doc="pooled (LAReQA / synthetic) | retrieval (corpus, queries, qrels) | flores | mteb")
    name: str = setting()
    benchmark: Optional[str] = setting(doc="the `benchmark` value in results; retrieval: null = the dataset's name")
    languages: Any = setting(None, doc="a list of codes | all | null = every language (FLORES: its 20 defaults)")
    settings: List[str] = setting(factory=lambda: ["mono", "cross", "multi"])
    subset: SubsetConfig = setting(factory=SubsetConfig)
    candidate_text: str = setting("sentence", doc="sentence | sentence_context")
    run_depth: Optional[int] = setting(100, run_id=False, doc="TREC run depth; null = full ranking")
    write_runs: List[str] = setting(factory=lambda: ["mono", "multi"], run_id=False)
    block_size: int = setting(1024, run_id=False, doc="query rows scored at once (bounds memory)")
    full_rank_max: int = setting(50000, doc="pools up to this size are ranked fully (exact AP); larger: top-k")


    def check(self, key: str) -> None:
        _one_of(f"{key}.kind", self.kind, ("pooled", "retrieval", "flores", "mteb"))
        langs = self.languages
        if not (langs is None or langs == "all" or (isinstance(langs, (list, ListConfig))
                                                     and all(isinstance(x, str) for x in langs))):
            raise ConfigError(f"{key}.languages", f"a list of language codes, all, or null; got {langs!r}")
        from hybrid_sweep.data.benchmark_loading import validate_eval_config

        try:
            validate_eval_config(self)
        except ConfigError as err:  # its keys say eval.*; name the entry
            raise ConfigError(f"{key}.{err.key.split('.', 1)[1]}", str(err).split(": ", 1)[1]) from None


@dataclass
class ResourcesConfig:
    nproc_per_node: int = setting(1, doc="> 1: training under torchrun with that many processes")
    start: str = setting("fork", doc="fork: forked from the sweep process; spawn: fresh interpreter")
    nnodes: int = setting(1, doc="> 1: multi-node training (SLURM), torchrun rendezvous from its environment")
    gpu_slots: bool = setting(True, doc="parallel jobs each lock free GPUs (CUDA_VISIBLE_DEVICES)")
    gpu_lock_dir: Optional[str] = setting(None, doc="where GPU slot locks live; null = the temp folder")
    threads: Optional[int] = setting(None, doc="OMP_NUM_THREADS of the run's process")
    device_label: Optional[str] = setting(None, doc="recorded in runs.parquet; null = host name")

    def check(self, key: str) -> None:
        _one_of(f"{key}.start", self.start, ("fork", "spawn"))
        if self.nnodes < 1:
            raise ConfigError(f"{key}.nnodes", f"must be >= 1, got {self.nnodes}")
        if self.nproc_per_node < 1:
            raise ConfigError(f"{key}.nproc_per_node", f"must be >= 1, got {self.nproc_per_node}")


@dataclass
class LoggerConfig:
    name: str = setting("none", doc="none | wandb")
    project: str = setting("hybrid_sweep")
    entity: Optional[str] = setting(None)
    mode: str = setting("offline", doc="offline | online | disabled")
    tags: List[str] = setting(factory=list)

    def check(self, key: str) -> None:
        _one_of(f"{key}.name", self.name, ("none", "wandb"))


@dataclass
class AppConfig:
    """``python -m hybrid_sweep`` (conf/config.yaml): one run = train, then evaluate on every ``evals``."""

    # Config groups that write into a field rather than a section of their own name.
    GROUP_TARGETS: ClassVar[dict] = {"ratio": "sampler.ratio", "langs": "data.languages", "sweep": "sweep_name",
                                     "eval": "evals"}

    schema_version: str = setting(CONFIG_SCHEMA_VERSION, run_id=False)
    paths: PathsConfig = section(PathsConfig, run_id=False)
    synthetic: SyntheticConfig = section(SyntheticConfig)
    encoder: EncoderConfig = section(EncoderConfig)
    data: DataConfig = section(DataConfig, active_when=("train.enabled",))
    sampler: SamplerConfig = section(SamplerConfig, active_when=("train.enabled",))
    pretrain: PretrainConfig = section(PretrainConfig, active_when=("train.enabled", "pretrain.enabled"))
    train: TrainConfig = section(TrainConfig, active_when=("train.enabled",))
    evals: Dict[str, Any] = setting(factory=dict, items=EvalConfig, doc="benchmark entries")
    logger: LoggerConfig = section(LoggerConfig, run_id=False)
    resources: ResourcesConfig = section(ResourcesConfig, run_id=False)
    sweep_name: str = setting("single", run_id=False)
    results_root: str = setting(run_id=False)
    plan: bool = setting(False, run_id=False, doc="list runs and their status; run nothing")
    analyze: bool = setting(True, run_id=False, doc="after a multirun: tables, figures and report.md")

    def check(self, key: str) -> None:
        if not self.evals:
            raise ConfigError("evals", "no benchmark to evaluate on")


@dataclass
class TrainAppConfig:
    """``python -m hybrid_sweep.train`` (conf/train.yaml)."""

    paths: PathsConfig = section(PathsConfig, run_id=False)
    synthetic: SyntheticConfig = section(SyntheticConfig)
    encoder: EncoderConfig = section(EncoderConfig)
    data: DataConfig = section(DataConfig)
    sampler: SamplerConfig = section(SamplerConfig)
    train: TrainConfig = section(TrainConfig)
    logger: LoggerConfig = section(LoggerConfig, run_id=False)
    output_dir: str = setting(run_id=False)


@dataclass
class EvaluateAppConfig:
    """``python -m hybrid_sweep.evaluate`` (conf/evaluate.yaml)."""

    paths: PathsConfig = section(PathsConfig, run_id=False)
    synthetic: SyntheticConfig = section(SyntheticConfig)
    encoder: EncoderConfig = section(EncoderConfig)
    eval: EvalConfig = section(EvalConfig)
    output_dir: str = setting(run_id=False)
    overwrite: bool = setting(False, run_id=False, doc="replace results already in output_dir")
