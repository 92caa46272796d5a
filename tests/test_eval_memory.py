"""The evaluator searches a memory-mapped embedding store in place: it reads the store in row slices
(never a copy of the whole pool), gives the numbers of the in-RAM path, and its peak memory is measured
by ``benchmarks/bench_eval_memory.py`` (smoke mode here; numbers in docs/benchmarks.md)."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks import bench_eval_memory
from hybrid_sweep.data.retrieval_task import DocTable, RetrievalTask, TaskPool
from hybrid_sweep.errors import DataError
from hybrid_sweep.evaluation.task_evaluator import evaluate_task_embeddings
from tests.test_task_evaluator import random_task


class SliceOnly:
    """A store stand-in that allows only what in-place search needs: contiguous row slices."""

    def __init__(self, array):
        self.array, self.shape, self.dtype, self.reads = array, array.shape, array.dtype, []

    def __len__(self):
        return self.shape[0]

    def __getitem__(self, rows):
        assert isinstance(rows, slice) and rows.step in (None, 1), f"read by {rows!r}, not a slice"
        self.reads.append((rows.start, rows.stop))
        return self.array[rows]

    def __array__(self, *args, **kwargs):
        raise AssertionError("the whole store was materialised")


def _split(task, d, cut):
    """The same task with its corpus split into two corpora searched as one pool."""
    c = task.corpora["c"]
    corpora = {"a": DocTable(c.ids[:cut], c.texts[:cut], lang="xx"), "b": DocTable(c.ids[cut:], c.texts[cut:], lang="xx")}
    pool = task.pools[0]
    pools = [TaskPool(pool.setting, pool.query_lang, pool.doc_lang, pool.queries, ("a", "b"), pool.qrels)]
    return RetrievalTask(task.name, corpora, task.query_sets, pools), {"a": d[:cut], "b": d[cut:]}


@pytest.mark.parametrize("split", [False, True], ids=["one-corpus", "two-corpora"])
def test_topk_path_reads_the_store_in_slices_with_the_in_ram_numbers(tmp_path, split):
    task, q, d = random_task(n_docs=300)
    ref = evaluate_task_embeddings(task, {"q": q}, {"c": d}, full_rank_max=0, run_depth=20, output_dir=tmp_path / "ref")
    np.save(tmp_path / "store.npy", d.numpy().astype(np.float16))  # small integers: exact in fp16
    mm = np.load(tmp_path / "store.npy", mmap_mode="r")
    if split:
        task, parts = _split(task, mm, 120)
        d_emb = {k: SliceOnly(v) for k, v in parts.items()}
    else:
        d_emb = {"c": SliceOnly(mm)}
    got = evaluate_task_embeddings(task, {"q": q}, d_emb, full_rank_max=0, run_depth=20, output_dir=tmp_path / "got")
    assert all(store.reads for store in d_emb.values())
    pd_ref, pd_got = ref.metrics.set_index(["query_lang", "metric"]), got.metrics.set_index(["query_lang", "metric"])
    np.testing.assert_array_equal(pd_got.loc[pd_ref.index, "value"].to_numpy(), pd_ref["value"].to_numpy())
    run = lambda root: (root / "runs" / "toy" / "mono" / "xx-xx.trec").read_text()  # noqa: E731
    assert run(tmp_path / "got") == run(tmp_path / "ref")  # same documents, same order, same scores


def test_full_path_of_two_corpora_equals_one_corpus():
    task, q, d = random_task(n_docs=200)
    ref = evaluate_task_embeddings(task, {"q": q}, {"c": d}).metrics
    split, parts = _split(task, d, 77)
    got = evaluate_task_embeddings(split, {"q": q}, parts).metrics
    np.testing.assert_allclose(got.value.to_numpy(), ref.value.to_numpy(), atol=1e-12)


def test_a_document_in_two_corpora_of_a_pool_is_named():
    task, q, d = random_task(n_docs=50)
    split, parts = _split(task, d, 20)
    split.corpora["b"].ids[3] = split.corpora["a"].ids[0]
    with pytest.raises(DataError, match=f"{split.corpora['a'].ids[0]!r} appears twice"):
        evaluate_task_embeddings(split, {"q": q}, parts, full_rank_max=0)


def test_bench_eval_memory_smoke(tmp_path):
    out = bench_eval_memory.main(["--smoke", "--workdir", str(tmp_path)])
    assert {"search", "evaluator", "copy"} <= set(out)
    assert 0 <= out["evaluator"]["ndcg@10"] <= 1 and out["ratio"] > 0
