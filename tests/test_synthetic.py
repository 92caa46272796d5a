"""The synthetic benchmark: deterministic, parallel, LAReQA-shaped, and lexically separable only within
a script (a token-overlap ranker works monolingually and fails across scripts)."""

import numpy as np
import pytest
import torch

from hybrid_sweep.data.synthetic import SyntheticConfig, generate_documents, synthetic_benchmark
from hybrid_sweep.errors import ConfigError
from hybrid_sweep.evaluation.evaluator import evaluate_embeddings


def test_deterministic_and_seed_dependent(synthetic_cfg):
    a = generate_documents(SyntheticConfig.from_dict(synthetic_cfg))
    b = generate_documents(SyntheticConfig.from_dict(synthetic_cfg))
    c = generate_documents(SyntheticConfig.from_dict({**synthetic_cfg, "seed": 1}))
    assert a == b
    assert a != c


def test_parallel_across_languages(synthetic_cfg):
    bench = synthetic_benchmark(synthetic_cfg, "test")
    groups = {lang: [q.group for q in d.questions] for lang, d in bench.languages.items()}
    first = next(iter(groups.values()))
    assert all(g == first for g in groups.values())
    assert len(set(first)) == len(first)
    assert all(d.n_unanswerable == 0 for d in bench.languages.values())
    # every item's answer sentence sits at the same (article, paragraph, sentence) in every language
    where = {lang: [d.candidates[q.answer].cid.split(":", 1)[1] for q in d.questions]
             for lang, d in bench.languages.items()}
    assert len({tuple(v) for v in where.values()}) == 1


def test_resource_levels_shrink_train_split_only(synthetic_cfg):
    cfg = SyntheticConfig.from_dict(synthetic_cfg)
    train = synthetic_benchmark(synthetic_cfg, "train")
    test = synthetic_benchmark(synthetic_cfg, "test")
    n_train = {lang: len({q.article for q in d.questions}) for lang, d in train.languages.items()}
    for lang in cfg.languages:
        assert n_train[lang.code] == round(cfg.articles["train"] * cfg.resource_levels[lang.resource])
    assert len({len(d.questions) for d in test.languages.values()}) == 1
    train_groups = {q.group for q in train.all_questions()}
    assert not train_groups & {q.group for q in test.all_questions()}


def _bag_of_words(texts, vocab):
    m = torch.zeros(len(texts), len(vocab))
    for i, t in enumerate(texts):
        for w in set(t.lower().strip(".?").split()):
            m[i, vocab[w]] = 1.0
    return torch.nn.functional.normalize(m, dim=1)


def test_token_overlap_works_mono_and_fails_across_scripts(synthetic_cfg):
    bench = synthetic_benchmark(synthetic_cfg, "test")
    q_texts = [q.text for q in bench.all_questions()]
    c_texts = [c.text for c in bench.all_candidates()]
    vocab = {w: i for i, w in enumerate(sorted({w for t in q_texts + c_texts for w in t.lower().strip(".?").split()}))}
    out = evaluate_embeddings(bench, _bag_of_words(q_texts, vocab), _bag_of_words(c_texts, vocab),
                              settings=("mono", "cross"))
    m = out.metrics[out.metrics.metric == "map"]
    mono = m[(m.setting == "mono") & (m.query_lang != "avg")].value
    assert mono.min() > 0.6
    script = {lang.code: lang.script for lang in SyntheticConfig.from_dict(synthetic_cfg).languages}
    cross = m[(m.setting == "cross") & (m.query_lang != "avg")]
    other_script = cross[[script[q] != script[d] for q, d in zip(cross.query_lang, cross.doc_lang)]]
    pool = len(bench.languages["qla"].candidates)
    chance = np.mean(1.0 / np.arange(1, pool + 1))  # expected RR of a uniformly random rank
    assert other_script.value.max() < 3 * chance
    same_script = cross[[script[q] == script[d] for q, d in zip(cross.query_lang, cross.doc_lang)]]
    assert same_script.value.mean() > other_script.value.mean()  # shared names help within a script


def test_bad_config_names_the_field(synthetic_cfg):
    bad = {**synthetic_cfg, "languages": [{"code": "qza", "script": "klingon", "order": "svo"}]}
    with pytest.raises(ConfigError, match="synthetic.languages: qza: unknown script"):
        SyntheticConfig.from_dict(bad)
    with pytest.raises(ConfigError, match="synthetic.languages"):
        SyntheticConfig.from_dict({**synthetic_cfg, "languages": []})
