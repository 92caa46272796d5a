"""The background batch prefetcher: same order and content as drawing directly, errors re-raised where
they happened, ahead-of-time preparation in another thread, clean shutdown."""

import threading
import time

import pytest

from hybrid_sweep.sampling.prefetch import Prefetcher
from tests.test_sampler import sampler


def test_same_batches_in_order_as_direct_draws_and_resume():
    s = sampler(seed=4, ratio={"mono": 0.4, "cross": 0.4, "mixed": 0.2})
    with Prefetcher(s.batch_at, start=0, depth=3) as pf:
        got = [next(pf) for _ in range(25)]
        assert pf.next_step == 25
    assert got == [s.batch_at(i) for i in range(25)]
    with Prefetcher(s.batch_at, start=10, depth=2) as pf:  # a resumed run starts at its step
        assert [next(pf) for _ in range(5)] == got[10:15]


def test_stop_ends_the_stream():
    with Prefetcher(lambda i: i * i, start=2, stop=6) as pf:
        assert list(pf) == [4, 9, 16, 25]
        assert not pf.alive or pf._thread.join(2) is None and not pf.alive


def test_error_is_raised_in_the_consumer_at_its_step():
    def make(i):
        if i == 3:
            raise KeyError(f"bad row at step {i}")
        return i

    pf = Prefetcher(make, depth=4)
    assert [next(pf), next(pf), next(pf)] == [0, 1, 2]
    with pytest.raises(KeyError, match="bad row at step 3"):
        next(pf)
    pf._thread.join(2)
    assert not pf.alive
    with pytest.raises(StopIteration):
        next(pf)


def test_prepares_ahead_in_another_thread():
    threads, ready = set(), threading.Event()

    def make(i):
        threads.add(threading.get_ident())
        if i == 1:
            ready.set()
        return i

    with Prefetcher(make, depth=2) as pf:
        assert next(pf) == 0
        assert ready.wait(5)  # step 1 was made without the consumer asking for it
    assert threads and threading.get_ident() not in threads


def test_close_stops_an_endless_stream_without_draining_it():
    calls = []

    def make(i):
        calls.append(i)
        time.sleep(0.01)
        return i

    pf = Prefetcher(make, depth=2)
    for i, x in enumerate(pf):
        if i == 4:
            break
    pf.close()
    assert not pf.alive
    n = len(calls)
    time.sleep(0.1)
    assert len(calls) == n <= 5 + 2 + 1  # consumed + queue depth + the one in hand
    with pytest.raises(ValueError, match="depth must be >= 1"):
        Prefetcher(make, depth=0)
