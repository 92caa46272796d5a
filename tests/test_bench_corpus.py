"""The corpus benchmark's smoke mode runs end to end (tiny sizes): conversion, reopen, memory, sampling."""

from benchmarks import bench_corpus


def test_bench_corpus_smoke(capsys):
    report = bench_corpus.main(["--smoke"])
    rows = [r["rows"] for r in report["results"]]
    assert rows == [2_000, 20_000]
    for r in report["results"]:
        assert r["convert_s"] > 0 and r["reopen_s"] >= 0 and r["step_ms_median"] > 0
        a, b = r["two_processes"]
        assert a["checksum"] == b["checksum"]
    for p in report["results"][-1]["two_processes"]:  # one store mapped twice: its pages shared, each pays half
        assert p["store_rss_mb"] > 0 and p["store_shared_mb"] > 0.9 * p["store_rss_mb"]
        assert p["store_pss_mb"] < 0.6 * p["store_rss_mb"]
    assert set(report["growth_exponents"]) >= {"reopen_s", "step_ms_median", "anon_after_open_mb"}
    assert "growth exponents" in capsys.readouterr().out
