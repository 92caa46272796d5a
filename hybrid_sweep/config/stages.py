"""The typed config of every stage: fields, defaults, docs and marks (see ``marks.setting``), and each
stage's validation (``check``, run once on the composed config before anything is written).

YAML presets in ``conf/`` set values on top of these declarations; a key no dataclass declares is an
error (``<key>: unknown key``) in every section: an evaluation entry is typed by its kind
(config/eval_kinds.py), a training source by its kind (config/sources.py). Value checks are declared on
the field (``setting(..., check=positive)``, config/checks.py) or, across fields, in a ``check``."""

from dataclasses import dataclass
from typing import Any, ClassVar, Dict, List, Optional

from hybrid_sweep.config.checks import (Check, at_least, device_spec, in_range, label, labels, model_path, non_negative,
                                        one_of, positive, token_length)
from hybrid_sweep.config.eval_kinds import EvalConfig, SubsetConfig  # noqa: F401  (SubsetConfig: re-export)
from hybrid_sweep.config.marks import DerivedAxis, section, setting
from hybrid_sweep.config.mix import MODES, check_ratio, mix_label
from hybrid_sweep.config.study import StudyConfig
from hybrid_sweep.config.sources import DevConfig, SourceConfig
from hybrid_sweep.errors import ConfigError

CONFIG_SCHEMA_VERSION = "3"  # 3: the run id is the checkpoint key (evaluations keyed apart); 2: typed stage configs


@dataclass
class PathsConfig:
    data_root: Optional[str] = setting(None, doc="LAReQA folder; null: $HYBRID_SWEEP_DATA or the user cache")


@dataclass
class SyntheticConfig:
    """The embedded synthetic benchmark's generator (conf/synthetic/default.yaml holds the values)."""

    seed: int = setting(0)
    languages: List[Any] = setting(doc="{code, script, order, resource} per language (set by the preset)")
    n_concepts: int = setting(300, check=at_least(1))
    n_named: int = setting(120, check=non_negative)
    articles: Dict[str, int] = setting(factory=lambda: {"train": 60, "dev": 6, "test": 10})
    paragraphs_per_article: int = setting(4, check=at_least(1))
    sentences_per_paragraph: List[int] = setting(factory=lambda: [4, 6])
    sentence_length: List[int] = setting(factory=lambda: [6, 10])
    questions_per_paragraph: int = setting(3, check=at_least(1))
    topic_size: int = setting(40, check=at_least(1))
    question_keep: int = setting(3, check=at_least(1))
    question_noise: int = setting(1, check=non_negative)
    resource_levels: Dict[str, float] = setting(factory=lambda: {"high": 1.0, "mid": 0.5, "low": 0.15})


@dataclass
class TinyEncoderConfig:
    hidden: int = setting(64, check=at_least(1))
    layers: int = setting(2, check=at_least(1))
    heads: int = setting(4, check=at_least(1))
    intermediate: int = setting(128, check=at_least(1))
    vocab_size: int = setting(8000, check=at_least(1))
    vocab_from: str = setting("all_languages", check=one_of("all_languages", "training_languages"))
    seed: int = setting(0)


@dataclass
class EncoderConfig:
    name: str = setting(axis="encoder", doc="preset name")
    kind: str = setting("pretrained", check=one_of("pretrained", "tiny", "me5_small_q4"))
    path: Optional[str] = setting(None, check=model_path, doc="hub id or local folder (kind=pretrained)")
    format: str = setting("auto", check=one_of("auto", "sentence_transformers", "transformers"))
    device: str = setting("auto", run_id=False, check=device_spec, doc="auto | cpu | cuda | cuda:N")
    pooling: str = setting("mean", check=one_of("mean", "cls"), doc="plain transformers models")
    normalize: bool = setting(True)
    query_prefix: Optional[str] = setting(None, doc="null: the model's saved prompt")
    passage_prefix: Optional[str] = setting(None)
    max_length: int = setting(128, check=token_length)
    batch_size: int = setting(64, run_id=False, check=at_least(1), doc="texts per encoding forward")
    progress: bool = setting(True, run_id=False)
    cache_dir: Optional[str] = setting(None, run_id=False, doc="converted models; null: the user cache")
    layers: Optional[int] = setting(None, check=at_least(1), doc="me5_small_q4: keep the first N layers")
    tiny: Optional[TinyEncoderConfig] = setting(None, doc="kind=tiny: the random model's shape")

    def check(self, key: str) -> None:
        if self.kind == "tiny" and self.tiny is None:
            raise ConfigError(f"{key}.tiny", "kind=tiny needs the tiny model's shape")


@dataclass
class DataConfig:
    name: str = setting(axis="data")
    sources: List[Any] = setting(kinds=SourceConfig, doc="[{kind: synthetic|lareqa|file|..., ...}] (config/sources.py)")
    dev: Optional[Any] = setting(None, kinds=DevConfig, doc="a source, or {holdout, seed, languages, source}")
    languages: Optional[List[str]] = setting(None, check=labels, doc="training languages; null = every language")
    budgets: Dict[str, int] = setting(factory=dict, check=labels, doc="language -> max groups")
    with_context: bool = setting(False)
    max_negatives: int = setting(3, check=non_negative)
    pivot: Optional[str] = setting(None, absent=None, check=label, doc="passages only in this language (SWIM-IR style)")
    n_languages: Optional[int] = setting(None, absent=None, check=at_least(1),
                                         doc="train on n of data.languages (the pool); null = the whole pool")
    language_draw: str = setting("fixed", absent="fixed", check=one_of("fixed", "per_seed"),
                                 doc="fixed: the first n of the pool; per_seed: n drawn with (language_seed, train.seed)")
    language_seed: int = setting(0, absent=0, doc="fixes the per-seed language order independently of train.seed")
    cache_dir: Optional[str] = setting(None, run_id=False, doc="Arrow stores of the sources; null = user cache")

    AXES: ClassVar[tuple] = (
        DerivedAxis("train_langs", lambda d, extra: _train_langs(d, extra, ",")),
        DerivedAxis("n_train_langs", lambda d, extra: _train_langs(d, extra, None), scale="log"),
    )

    def check(self, key: str) -> None:
        if self.languages is not None and len(self.languages) == 0:
            raise ConfigError(f"{key}.languages", "empty training-language set")
        if not self.sources:
            raise ConfigError(f"{key}.sources", "no training sources configured")
        if self.n_languages is not None and self.languages is not None and self.n_languages > len(self.languages):
            raise ConfigError(f"{key}.n_languages", f"{self.n_languages} languages asked of a pool of "
                                                     f"{len(self.languages)} ({', '.join(self.languages)})")
        for lang, n in (self.budgets or {}).items():
            at_least(0)(f"{key}.budgets.{lang}", n)
        if self.dev is not None and "holdout" in self.dev and self.dev.source >= len(self.sources):
            raise ConfigError(f"{key}.dev.source", f"index of the source to hold out from, 0..{len(self.sources) - 1}; "
                                                   f"got {self.dev.source}")


def _train_langs(data, extra: dict, sep: str | None):
    """n_train_langs / train_langs: data.languages, or what training used (train_summary.json) when the
    set is all languages or drawn from a pool (data.n_languages: the count is known before training)."""
    drawn = data.n_languages is not None
    used = (extra.get("train_summary") or {}).get("languages")
    langs = data.languages if data.languages is not None and not drawn else used
    if sep is None:
        return data.n_languages if drawn else (len(langs) if langs else None)
    return sep.join(sorted(langs)) if langs else (None if drawn else "all")


@dataclass
class RatioConfig:
    """The batch mix: probabilities of monolingual, cross-lingual and mixed-language batches."""

    mono: float = setting(0.5, axis="ratio_mono", scale="linear", check=in_range(0, 1))
    cross: float = setting(0.5, axis="ratio_cross", scale="linear", check=in_range(0, 1))
    mixed: float = setting(0.0, axis="ratio_mixed", scale="linear", check=in_range(0, 1))


@dataclass
class SamplerConfig:
    ratio: RatioConfig = setting(factory=RatioConfig, doc="the batch mix (conf/ratio/ names the presets)")
    n_pairs: Optional[int] = setting(None, axis="n_pairs", scale="log", check=at_least(1),
                                     doc="first n ordered language pairs")
    pair_seed: int = setting(0, doc="fixes the pair order independently of the training seed")
    weights: Optional[List[float]] = setting(None, doc="per-source sampling weights; null = by size")
    n_negatives: int = setting(1, check=non_negative, doc="hard negatives per example")
    pair_kind: str = setting("ordered", axis="pair_kind", check=one_of("ordered", "unordered"),
                             doc="ordered: n_pairs counts directed pairs; unordered: {X,Y}, both directions")
    pair_draw: str = setting("fixed", axis="pair_draw", check=one_of("fixed", "per_seed"),
                             doc="fixed: pair order from pair_seed; per_seed: also train.seed")
    mono_languages: str = setting("all", axis="mono_languages", check=one_of("all", "pairs"),
                                  doc="mono/mixed batch languages: all | pairs")

    AXES: ClassVar[tuple] = (
        DerivedAxis("sampler", lambda s, extra: mix_label({m: s.ratio[m] for m in MODES}), inactive="zero-shot"),
    )

    def check(self, key: str) -> None:
        check_ratio({m: self.ratio[m] for m in MODES}, f"{key}.ratio")


@dataclass
class GradCacheConfig:
    enabled: bool = setting(False)
    chunk_size: int = setting(64, check=at_least(1), doc="texts per forward in GradCache")


LOSS_NAMES = ["info_nce"]  # training/loss.py's register_loss adds its entries (config imports no stage)


@dataclass
class TrainConfig:
    enabled: bool = setting(True, axis="trained", inactive=False, doc="false: zero-shot evaluation")
    seed: int = setting(0, axis="seed", repetition=True)
    batch_size: int = setting(100, axis="batch_size", scale="log", check=at_least(2),
                             doc="global batch (>= 2: in-batch negatives)")
    max_steps: int = setting(1000, axis="max_steps", scale="log", inactive=0, check=non_negative,
                            doc=">= 1 when training is enabled")
    schedule_steps: Optional[int] = setting(None, check=at_least(1), doc="LR schedule length; null = max_steps")
    lr: float = setting(3.0e-5, axis="lr", scale="log", check=positive)
    weight_decay: float = setting(0.01, check=non_negative)
    warmup: float = setting(0.1, check=non_negative, doc="fraction of max_steps (< 1) or a number of steps")
    grad_clip: float = setting(1.0, check=non_negative, doc="max gradient norm; 0 = no clipping")
    temperature: float = setting(0.05, check=positive)
    in_batch_positives: bool = setting(True)
    symmetric: bool = setting(False)
    loss: str = setting("info_nce", absent="info_nce", check=Check(lambda v: v in LOSS_NAMES, "", "bogus",
                        lambda v, name: f"unknown loss {v!r}; one of {', '.join(LOSS_NAMES)}"),
                        doc="training loss (training/loss.py LOSSES); info_nce reads temperature, "
                        "in_batch_positives, symmetric")
    mask_false_negatives: bool = setting(True, doc="drop in-batch candidates equal to a row's own positive")
    dropout: Optional[float] = setting(None, check=in_range(0, 1, hi_open=True),
                                        doc="every dropout layer's rate; null = the model's own")
    grad_cache: GradCacheConfig = setting(factory=GradCacheConfig)
    gradient_checkpointing: bool = setting(False)
    max_tokens: Optional[int] = setting(None, run_id=False, check=at_least(1), doc="padded tokens per length-sorted sub-batch "
                                        "(and GradCache chunk); null = one forward padded to the longest "
                                        "text; same loss and gradients to fp tolerance")
    compile: bool = setting(False, run_id=False, doc="torch.compile the transformer (dynamic shapes); off "
                            "until measured")
    bf16: bool = setting(True, doc="autocast on CUDA only")
    eval_every: int = setting(100, check=non_negative, doc="0 = never")
    val_batches: int = setting(4, check=non_negative)
    val_seed: Optional[int] = setting(None, absent=None, doc="seed of the validation batches; null: the "
                                      "training seed + an offset (each seed its own validation set)")
    patience: Optional[int] = setting(None, check=at_least(1))
    save_every: int = setting(100, check=non_negative)
    log_every: int = setting(1, run_id=False, check=at_least(1),
                             doc="loss to the host and train_log.jsonl every N steps")
    prefetch: int = setting(2, run_id=False, check=non_negative, doc="batches drawn ahead in a background thread")
    log_batches: bool = setting(False, run_id=False)
    resume: bool = setting(True, run_id=False)
    keep_checkpoints: bool = setting(True, run_id=False, doc="keep checkpoints/ (optimizer, sampler and RNG "
                                     "state: what resuming needs) once training finished; false: only model/ "
                                     "stays (mE5-small: 0.4 of 1.6 GB)")
    deterministic: bool = setting(False, run_id=False, doc="deterministic CUDA kernels: a resumed run repeats "
                                  "the uninterrupted one bit for bit on a GPU too (slower)")

    def check(self, key: str) -> None:
        if self.enabled and self.max_steps < 1:
            raise ConfigError(f"{key}.max_steps", f"must be >= 1 when training is enabled (train.enabled=false: "
                                                  f"zero-shot), got {self.max_steps}")


@dataclass
class PretrainConfig:
    DEPENDS_ON: ClassVar[tuple] = ("encoder", "data", "synthetic")  # sections its cache key includes

    enabled: bool = setting(False)
    base_languages: List[str] = setting(factory=list, cache_key=False, doc="always pre-trained on")
    low_resource: List[str] = setting(factory=list, cache_key=False, doc="added one by one: the axis")
    n_low_resource: int = setting(0, axis="pretrain_low_resource", scale="linear", cache_key=False,
                                 check=non_negative)
    text_source: str = setting("synthetic", check=one_of("synthetic", "flores", "training_data", "hub"),
                              doc="synthetic | flores (both apart from fine-tuning) | training_data | hub")
    text_split: str = setting("train", check=one_of("train", "dev"),
                             doc="flores: the SIB-200 split read (evaluation reads dev)")
    text_articles: int = setting(60, check=at_least(1), doc="synthetic: articles in the fresh pre-training sample")
    text_seed: int = setting(1, doc="synthetic: content seed of that sample (with synthetic.seed)")
    max_texts_per_language: Optional[int] = setting(None, check=at_least(1), doc="cap per language; null = all")
    hub: Dict[str, Any] = setting(factory=dict, doc="per language: {path, name, split, text_field, max_texts}")
    max_steps: int = setting(200, check=at_least(1))
    batch_size: int = setting(32, check=at_least(1))
    lr: float = setting(5.0e-4, check=positive,
                        doc="tiny random encoder: 5e-4; a pre-trained checkpoint: 5e-5 (conf/pretrain/mlm_flores)")
    mlm_probability: float = setting(0.15, check=in_range(0, 1, lo_open=True))
    max_length: int = setting(64, check=token_length)
    seed: int = setting(0)
    head_warmup_steps: int = setting(0, absent=0, check=non_negative,
                                     doc="a fresh MLM head (the checkpoint has none) trains alone, the body "
                                     "frozen, for this many of max_steps; 0 = body and head from the start")

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


@dataclass
class ResourcesConfig:
    nproc_per_node: int = setting(1, check=at_least(1), doc="> 1: training under torchrun with that many processes")
    start: str = setting("fork", check=one_of("fork", "spawn"),
                         doc="fork: forked from the sweep process; spawn: fresh interpreter")
    nnodes: int = setting(1, check=at_least(1),
                         doc="> 1: multi-node training (SLURM), torchrun rendezvous from its environment")
    gpu_slots: bool = setting(True, doc="parallel jobs each lock free GPUs (CUDA_VISIBLE_DEVICES)")
    gpu_lock_dir: Optional[str] = setting(None, doc="where GPU slot locks live; null = the temp folder")
    threads: Optional[int] = setting(None, check=at_least(1), doc="OMP_NUM_THREADS of the run's process")
    device_label: Optional[str] = setting(None, doc="recorded in runs.parquet; null = host name")


@dataclass
class LoggerConfig:
    name: str = setting("none", check=one_of("none", "wandb"))
    project: str = setting("hybrid_sweep")
    entity: Optional[str] = setting(None)
    mode: str = setting("offline", check=one_of("offline", "online", "disabled"))
    tags: List[str] = setting(factory=list)


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
    evals: Dict[str, Any] = setting(factory=dict, items=EvalConfig, run_id=False,
                                   doc="benchmark entries: each keyed apart (eval_key), never part of the run id")
    logger: LoggerConfig = section(LoggerConfig, run_id=False)
    resources: ResourcesConfig = section(ResourcesConfig, run_id=False)
    study: StudyConfig = section(StudyConfig, run_id=False, doc="the study's declared hypotheses (sweep presets)")
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
