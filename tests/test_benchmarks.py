"""Every benchmark script runs in its --smoke mode (tiny sizes, seconds), so none can rot unnoticed; the
numbers in docs/benchmarks.md come from the full modes. bench_train's smoke test lives with training."""

import pytest

from benchmarks import bench_encode, bench_eval_pairs, bench_metrics, bench_sweep


def test_bench_metrics_smoke_agrees_with_pytrec_eval(capsys):
    pytest.importorskip("pytrec_eval")
    out = bench_metrics.main(["--smoke"])
    assert out["max_ap_diff"] < 1e-12 and out["pools"] > 3
    assert "speed-up" in capsys.readouterr().out


def test_bench_eval_pairs_smoke_counts_the_texts():
    out = bench_eval_pairs.main(["--smoke"])
    assert out["texts_per_pair"] > out["texts_once"] > 0  # per-pair tools encode shared texts again


def test_bench_encode_smoke_matches_sentence_transformers():
    cosines = bench_encode.main(["--smoke"])
    assert set(cosines) == {"questions", "sentences"} and min(cosines.values()) > 0.9999


def test_bench_sweep_smoke_reruns_nothing():
    out = bench_sweep.main(["--smoke"])
    assert out["runs"] == 1 and 0 < out["inside_s"] < out["total_s"]


def test_bench_sweep_smoke_adding_a_benchmark_trains_nothing(tmp_path, data_root):
    out = bench_sweep.main(["--smoke", "--add-benchmark", str(tmp_path / "root")])
    assert out["steps"] == 0 and out["rewritten"] == 0
    assert out["typo_exit"] == 2 and out["typo_runs"] == 0


def test_bench_pretrain_smoke_times_both_heads_on_the_same_loss():
    from benchmarks import bench_pretrain

    out = bench_pretrain.main(["--smoke"])
    assert out["full_s"] > 0 and out["masked_s"] > 0 and out["loss_diff"] < 1e-5  # same loss, both paths timed
