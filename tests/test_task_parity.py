"""The generic task path gives the LAReQA evaluator's numbers on real XQuAD-R pools (to 1e-9)."""

import hashlib

import numpy as np
import pytest
import torch

from hybrid_sweep.data.benchmark import as_retrieval_task
from hybrid_sweep.data.lareqa import load_lareqa
from hybrid_sweep.evaluation.evaluator import evaluate_embeddings
from hybrid_sweep.evaluation.task_evaluator import evaluate_task_embeddings

LANGS = ["en", "de", "zh"]


def _embed(texts, dim=16):
    """A deterministic vector per text (so both paths see identical embeddings of identical texts)."""
    out = np.stack([np.random.default_rng(int(hashlib.sha1(t.encode()).hexdigest()[:12], 16)).standard_normal(dim)
                    for t in texts]).astype(np.float32)
    return torch.nn.functional.normalize(torch.from_numpy(out), dim=-1)


@pytest.fixture(scope="module")
def xquad_subset(data_root):
    return load_lareqa("xquad_r", data_root / "lareqa" / "xquad-r", LANGS).subset(6)


@pytest.mark.parametrize("full_rank_max", [10**6, 0], ids=["full", "topk"])
def test_xquad_r_mono_as_a_generic_task_matches_lareqa(xquad_subset, full_rank_max):
    bench = xquad_subset
    ref = evaluate_embeddings(bench, _embed([q.text for q in bench.all_questions()]),
                              _embed([c.text for c in bench.all_candidates()]), settings=("mono", "cross", "multi"))
    task = as_retrieval_task(bench, ("mono", "cross", "multi"))
    q = {k: _embed(t.texts) for k, t in task.query_sets.items()}
    d = {k: _embed(t.passages()) for k, t in task.corpora.items()}
    ours = evaluate_task_embeddings(task, q, d, full_rank_max=full_rank_max, run_depth=None)
    key = ["setting", "query_lang", "doc_lang", "metric"]
    a = ref.metrics.set_index(key)
    b = ours.metrics.set_index(key)
    common = a.index.intersection(b.index)
    mono = [i for i in common if i[0] == "mono" and i[1] != "avg"]
    assert len(mono) == len(LANGS) * 10  # every LAReQA pool metric of every mono pool
    for idx in common:
        if full_rank_max or idx[3] in ("recall@1", "recall@5", "recall@10", "recall@100", "success@1",
                                       "success@5", "success@10", "ndcg@10"):
            assert b.loc[idx, "value"] == pytest.approx(a.loc[idx, "value"], abs=1e-9), idx
            assert b.loc[idx, "n_queries"] == a.loc[idx, "n_queries"]
    if full_rank_max:  # rank distance too, and the multi pools (all 3 languages) are compared
        assert ("multi", "en", "all", "rank_distance") in common
        assert len(common) >= len(ref.metrics) - 2 * (len(LANGS) + 1)  # all but same_lang@10
