"""Automatically generated training queries (inverse cloze) from LAReQA-format paragraphs (research
question 5's offline stand-in for SWIM-IR; these are NOT LLM-generated queries).

For every paragraph that holds at least one question and two sentences:
  query    = one sentence of the paragraph: the answer sentence of its anchor question,
  positive = the paragraph without that sentence (the other sentences, in order),
  group    = ``ict:<anchor question id>``, the anchor being the paragraph's question with the smallest id.
LAReQA question ids are shared across languages and answer sentences are translations of each other
(XQuAD-R: whole paragraphs are translated; MLQA-R: the answer sentence is parallel, its paragraph
comparable), so a group's rows are parallel across the languages whose paragraph holds the anchor. The
question text itself is never used. No hard negatives: in-batch negatives only, as SWIM-IR.
"""

from __future__ import annotations

from hybrid_sweep.data.benchmark import Benchmark
from hybrid_sweep.data.corpus_store import CorpusStore
from hybrid_sweep.data.download import data_root, ensure_lareqa_file
from hybrid_sweep.data.lareqa import LAREQA_BENCHMARKS, load_lareqa
from hybrid_sweep.data.training import Example, TrainCorpus, TrainGroup, corpus_to_store
from hybrid_sweep.errors import ConfigError, DataError

ICT_PREFIX = "ict:"


def inverse_cloze_corpus(bench: Benchmark, name: str | None = None) -> TrainCorpus:
    """One example per (language, paragraph with a question and >= 2 sentences)."""
    groups: dict[str, dict[str, Example]] = {}
    for lang, data in bench.languages.items():
        sentences: dict[str, list[int]] = {}  # paragraph key "<lang>:<article>:<paragraph>" -> candidate indices
        for i, c in enumerate(data.candidates):
            sentences.setdefault(c.cid.rsplit(":", 1)[0], []).append(i)
        anchors: dict[str, tuple[str, int]] = {}  # paragraph key -> (smallest question id, its answer sentence)
        for q in data.questions:
            key = data.candidates[q.answer].cid.rsplit(":", 1)[0]
            if key not in anchors or q.group < anchors[key][0]:
                anchors[key] = (q.group, q.answer)
        for key, (qid, answer) in anchors.items():
            rest = [data.candidates[i].text for i in sentences[key] if i != answer]
            if not rest:
                continue  # a one-sentence paragraph has nothing left to retrieve
            groups.setdefault(ICT_PREFIX + qid, {})[lang] = Example(data.candidates[answer].text, " ".join(rest))
    if not groups:
        raise DataError(bench.name, "no paragraph with a question and at least two sentences")
    return TrainCorpus(name or f"{bench.name}-inverse-cloze", [TrainGroup(g, items) for g, items in groups.items()])


def load_inverse_cloze(src, configured_root: str | None) -> CorpusStore:
    """The ``kind: inverse_cloze`` training source: ``benchmark`` (mlqa_r | xquad_r) from the data root."""
    bench = src.get("benchmark")
    if bench not in LAREQA_BENCHMARKS:
        raise ConfigError("data.sources.benchmark", f"unknown LAReQA benchmark {bench!r}; one of {', '.join(LAREQA_BENCHMARKS)}")
    folder, langs = LAREQA_BENCHMARKS[bench]
    root, supplied = data_root(configured_root)
    for lang in langs:
        ensure_lareqa_file(root, folder, lang, supplied)
    return corpus_to_store(inverse_cloze_corpus(load_lareqa(bench, root / "lareqa" / folder), src.get("name")))
