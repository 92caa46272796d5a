"""A synthetic, fully parallel multilingual QA benchmark in LAReQA form, generated from a seed.

Every language renders the same language-independent content (articles -> paragraphs -> sentences ->
questions, each a sequence of *concepts*) with its own lexicon and word order:

- content concepts get a surface word per language, drawn from the language's script;
- *named* concepts (names, numbers) get one surface form per script, shared by that script's languages;
- a few function concepts occur in most sentences, question words open every question;
- paragraphs draw most words from their article's topic, so sibling sentences are hard negatives;
- a question keeps part of its answer sentence's concepts plus noise; the SQuAD answer is a further
  concept of that sentence.

The generated documents go through :func:`hybrid_sweep.data.lareqa.parse_lareqa`, so training and
evaluation read them by the same code as XQuAD-R / MLQA-R. Articles are split into train / dev / test;
a language's resource level is the share of *train* articles it has (dev and test stay fully parallel).
Language codes come from ISO 639's range reserved for local use (``qaa``-``qtz``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hybrid_sweep.data.benchmark import Benchmark
from hybrid_sweep.data.lareqa import parse_lareqa
from hybrid_sweep.errors import ConfigError

SCRIPTS = {
    "latin": "abcdefghijklmnopqrstuvwxyz",
    "cyrillic": "абвгдежзийклмнопрстуфхцчшщыэюя",
    "greek": "αβγδεζηθικλμνξοπρστυφχψω",
    "georgian": "".join(chr(c) for c in range(0x10D0, 0x10F1)),
    "armenian": "".join(chr(c) for c in range(0x0561, 0x0587)),
    "devanagari": "".join(chr(c) for c in range(0x0915, 0x093A)),
}
ORDERS = ("svo", "reverse", "swap", "rotate")
N_FUNCTION, N_QWORDS = 12, 6
SPLITS = ("train", "dev", "test")


@dataclass
class SynLanguage:
    code: str
    script: str
    order: str
    resource: str = "high"


@dataclass
class SyntheticConfig:
    """Mirrors ``conf/synthetic/default.yaml``."""

    seed: int = 0
    languages: list[SynLanguage] = field(default_factory=list)
    n_concepts: int = 300
    n_named: int = 120
    articles: dict = field(default_factory=lambda: {"train": 60, "dev": 6, "test": 10})
    paragraphs_per_article: int = 4
    sentences_per_paragraph: tuple = (4, 6)
    sentence_length: tuple = (6, 10)
    questions_per_paragraph: int = 3
    topic_size: int = 40
    question_keep: int = 3
    question_noise: int = 1
    resource_levels: dict = field(default_factory=lambda: {"high": 1.0, "mid": 0.5, "low": 0.15})

    @classmethod
    def from_dict(cls, d: dict) -> SyntheticConfig:
        d = dict(d)
        langs = [SynLanguage(**lang) for lang in d.pop("languages")]
        d.pop("name", None)
        cfg = cls(languages=langs, **{k: (tuple(v) if isinstance(v, list) else v) for k, v in d.items()})
        cfg.validate()
        return cfg

    def validate(self):
        if not self.languages:
            raise ConfigError("synthetic.languages", "at least one language is required")
        for lang in self.languages:
            if lang.script not in SCRIPTS:
                raise ConfigError("synthetic.languages", f"{lang.code}: unknown script {lang.script!r}; one of {sorted(SCRIPTS)}")
            if lang.order not in ORDERS:
                raise ConfigError("synthetic.languages", f"{lang.code}: unknown order {lang.order!r}; one of {ORDERS}")
            if lang.resource not in self.resource_levels:
                raise ConfigError("synthetic.languages", f"{lang.code}: unknown resource level {lang.resource!r}")
        if self.n_named >= self.n_concepts - self.topic_size:
            raise ConfigError("synthetic.n_named", "must leave at least topic_size content concepts")
        for split in SPLITS:
            if int(self.articles.get(split, 0)) < 1:
                raise ConfigError(f"synthetic.articles.{split}", "must be >= 1")


def _word(rng, alphabet: str, lo: int = 3, hi: int = 8) -> str:
    return "".join(rng.choice(list(alphabet), size=int(rng.integers(lo, hi))))


def _lexicon(rng, alphabet: str, n: int, taken: set[str]) -> list[str]:
    words = []
    while len(words) < n:
        w = _word(rng, alphabet)
        if w not in taken:
            taken.add(w)
            words.append(w)
    return words


def _reorder(seq: list, order: str) -> list:
    if order == "reverse":
        return seq[::-1]
    if order == "swap":
        out = list(seq)
        for i in range(0, len(out) - 1, 2):
            out[i], out[i + 1] = out[i + 1], out[i]
        return out
    if order == "rotate":
        return seq[2:] + seq[:2]
    return list(seq)


def _content(cfg: SyntheticConfig, rng) -> list[dict]:
    """Language-independent articles: concept-id sequences for sentences and questions."""
    n_func = N_FUNCTION + N_QWORDS
    named = np.arange(n_func, n_func + cfg.n_named)
    regular = np.arange(n_func + cfg.n_named, n_func + cfg.n_concepts)
    content = np.concatenate([named, regular])
    n_articles = sum(int(cfg.articles[s]) for s in SPLITS)
    articles = []
    for _ in range(n_articles):
        topic = rng.choice(content, size=cfg.topic_size, replace=False)
        paragraphs = []
        for _ in range(cfg.paragraphs_per_article):
            n_sent = int(rng.integers(cfg.sentences_per_paragraph[0], cfg.sentences_per_paragraph[1] + 1))
            sentences = []
            for _ in range(n_sent):
                length = int(rng.integers(cfg.sentence_length[0], cfg.sentence_length[1] + 1))
                n_topic = max(2, int(round(0.7 * length)))
                words = list(rng.choice(topic, size=n_topic, replace=False))
                words += list(rng.choice(content, size=length - n_topic, replace=False))
                words.insert(int(rng.integers(0, len(words) + 1)), int(rng.integers(0, N_FUNCTION)))
                sentences.append([int(w) for w in words])
            questions = []
            for s in rng.choice(n_sent, size=min(cfg.questions_per_paragraph, n_sent), replace=False):
                sent = [w for w in sentences[s] if w >= n_func]
                picks = rng.choice(len(sent), size=min(cfg.question_keep + 1, len(sent)), replace=False)
                answer, kept = sent[picks[0]], [sent[i] for i in sorted(picks[1:])]
                noise = [int(w) for w in rng.choice(topic, size=cfg.question_noise, replace=False)]
                qword = N_FUNCTION + int(rng.integers(0, N_QWORDS))
                questions.append({"sentence": int(s), "answer": answer, "words": [qword] + kept + noise})
            paragraphs.append({"sentences": sentences, "questions": questions})
        articles.append(paragraphs)
    return articles


def _lexicons(cfg: SyntheticConfig, rng) -> dict[str, list[str]]:
    n_func = N_FUNCTION + N_QWORDS
    named_by_script: dict[str, list[str]] = {}
    for script in sorted({lang.script for lang in cfg.languages}):
        words = _lexicon(rng, SCRIPTS[script], cfg.n_named, set())
        named_by_script[script] = [w.capitalize() for w in words]
    out = {}
    for lang in cfg.languages:
        taken = {w.lower() for w in named_by_script[lang.script]}
        own = _lexicon(rng, SCRIPTS[lang.script], n_func + cfg.n_concepts - cfg.n_named, taken)
        out[lang.code] = own[:n_func] + named_by_script[lang.script] + own[n_func:]
    return out


def _render(articles: list, first_article: int, lexicon: list[str], order: str, split: str) -> dict:
    data = []
    for a, paragraphs in enumerate(articles):
        paras = []
        for p, para in enumerate(paragraphs):
            sentences = [" ".join(lexicon[w] for w in _reorder(s, order)) + "." for s in para["sentences"]]
            breaks, pos = [], 0
            for s in sentences:
                breaks.append([pos, pos + len(s)])
                pos += len(s) + 1
            context = " ".join(sentences)
            qas = []
            for k, q in enumerate(para["questions"]):
                s = q["sentence"]
                ordered = _reorder(para["sentences"][s], order)
                offset = breaks[s][0] + sum(len(lexicon[w]) + 1 for w in ordered[: ordered.index(q["answer"])])
                qas.append({
                    "id": f"syn-{split}-{first_article + a:04d}-{p}-{k}",
                    "question": " ".join(lexicon[w] for w in _reorder(q["words"], order)) + "?",
                    "answers": [{"text": lexicon[q["answer"]], "answer_start": offset}],
                })
            paras.append({"context": context, "sentences": sentences, "sentence_breaks": breaks, "qas": qas})
        data.append({"title": f"article {first_article + a}", "paragraphs": paras})
    return {"version": "synthetic-1", "data": data}


def generate_documents(cfg: SyntheticConfig) -> dict[str, dict[str, dict]]:
    """split -> language -> LAReQA-format document."""
    rng = np.random.default_rng(cfg.seed)
    articles = _content(cfg, rng)
    lexicons = _lexicons(cfg, rng)
    out: dict[str, dict[str, dict]] = {s: {} for s in SPLITS}
    start = 0
    for split in SPLITS:
        n = int(cfg.articles[split])
        block = articles[start : start + n]
        for lang in cfg.languages:
            keep = block
            if split == "train":
                keep = block[: max(1, int(round(n * cfg.resource_levels[lang.resource])))]
            out[split][lang.code] = _render(keep, start, lexicons[lang.code], lang.order, split)
        start += n
    return out


def synthetic_benchmark(cfg: SyntheticConfig | dict, split: str = "test", languages: list[str] | None = None) -> Benchmark:
    if isinstance(cfg, dict):
        cfg = SyntheticConfig.from_dict(cfg)
    if split not in SPLITS:
        raise ConfigError("eval.split", f"unknown split {split!r}; one of {SPLITS}")
    docs = generate_documents(cfg)[split]
    codes = list(docs) if languages is None else languages
    for code in codes:
        if code not in docs:
            raise ConfigError("eval.languages", f"synthetic benchmark has no language {code!r}; available: {', '.join(docs)}")
    return Benchmark(f"synthetic-{split}", {c: parse_lareqa(docs[c], c, f"synthetic:{split}:{c}") for c in codes})
