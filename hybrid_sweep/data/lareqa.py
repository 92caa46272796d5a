"""LAReQA-format loader (XQuAD-R, MLQA-R): SQuAD JSON plus ``sentences`` / ``sentence_breaks``.

Every sentence of every paragraph is a candidate; a question's relevant candidate is the sentence whose
break span ``[start, end)`` contains its first answer's ``answer_start``. Questions whose answer start
falls in no sentence are dropped and counted (``LanguageData.n_unanswerable``), with a warning.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

from hybrid_sweep.data.benchmark import Benchmark, Candidate, LanguageData, Question
from hybrid_sweep.errors import ConfigError, DataError

log = logging.getLogger(__name__)

LANG_CODE = re.compile(r"^[a-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})?$")

# name -> (folder under <data_root>/lareqa, languages in the published release)
LAREQA_BENCHMARKS = {
    "xquad_r": ("xquad-r", ("ar", "de", "el", "en", "es", "hi", "ru", "th", "tr", "vi", "zh")),
    "mlqa_r": ("mlqa-r", ("ar", "de", "en", "es", "hi", "vi", "zh")),
}


def check_lang_code(lang: str, where: str) -> str:
    if not isinstance(lang, str) or not LANG_CODE.match(lang):
        raise DataError(where, f"unknown language code {lang!r} (expected an ISO 639 code such as 'en' or 'zh')")
    return lang


def _field(obj, key, path, where):
    if not isinstance(obj, dict) or key not in obj:
        raise DataError(path, f"missing field '{key}' in {where}")
    return obj[key]


def parse_lareqa(doc: dict, lang: str, source: str) -> LanguageData:
    """Turn one parsed LAReQA JSON document into questions and candidates for ``lang``."""
    check_lang_code(lang, source)
    questions, candidates, n_unanswerable = [], [], 0
    articles = _field(doc, "data", source, "the top level")
    if not isinstance(articles, list):
        raise DataError(source, "field 'data' must be a list of articles")
    for a, article in enumerate(articles):
        for p, para in enumerate(_field(article, "paragraphs", source, f"data[{a}]")):
            where = f"data[{a}].paragraphs[{p}]"
            sentences = _field(para, "sentences", source, where)
            breaks = _field(para, "sentence_breaks", source, where)
            context = _field(para, "context", source, where)
            if len(sentences) != len(breaks):
                raise DataError(source, f"{where}: 'sentences' has {len(sentences)} items, 'sentence_breaks' {len(breaks)}")
            first = len(candidates)
            for s, text in enumerate(sentences):
                candidates.append(Candidate(f"{lang}:{a}:{p}:{s}", text, context, a))
            for k, qa in enumerate(_field(para, "qas", source, where)):
                qwhere = f"{where}.qas[{k}]"
                answers = _field(qa, "answers", source, qwhere)
                if not answers:
                    raise DataError(source, f"{qwhere}: 'answers' is empty")
                start = _field(answers[0], "answer_start", source, f"{qwhere}.answers[0]")
                hit = next((s for s, (b, e) in enumerate(breaks) if b <= start < e), None)
                if hit is None:
                    n_unanswerable += 1
                    continue
                qid = str(_field(qa, "id", source, qwhere))
                text = _field(qa, "question", source, qwhere)
                questions.append(Question(f"{lang}:{qid}", qid, text, first + hit, a))
    if n_unanswerable:
        log.warning("%s: %d questions have an answer start outside every sentence; skipped", source, n_unanswerable)
    return LanguageData(lang, source, questions, candidates, n_unanswerable)


def read_lareqa_file(path: Path, lang: str) -> LanguageData:
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(path, "file not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DataError(path, f"malformed JSON ({err})") from None
    return parse_lareqa(doc, lang, str(path))


def load_lareqa(name: str, folder: Path, languages: list[str] | None = None) -> Benchmark:
    """Load a LAReQA benchmark from ``folder`` (``<lang>.json`` files).

    ``languages`` defaults to the published set for known benchmarks, else every ``*.json`` file.
    """
    folder = Path(folder)
    if languages is None:
        if name in LAREQA_BENCHMARKS:
            languages = list(LAREQA_BENCHMARKS[name][1])
        else:
            languages = sorted(p.stem for p in folder.glob("*.json"))
    if not languages:
        raise ConfigError("eval.languages", f"no languages selected and no <lang>.json files in {folder}")
    available = LAREQA_BENCHMARKS.get(name, (None, None))[1]
    data = {}
    for lang in languages:
        if available is not None and lang not in available:
            raise ConfigError("eval.languages", f"{name} has no language {lang!r}; available: {', '.join(available)}")
        data[lang] = read_lareqa_file(folder / f"{lang}.json", lang)
    return Benchmark(name, data)
