"""Prepare the next batches off the training step's critical path.

``Prefetcher(make, start, depth)`` runs ``make(step)`` for ``start, start + 1, ...`` in one background
thread and hands the results over in step order through a bounded queue (at most ``depth`` ready ahead).
``make`` is typically "draw the sampler's batch at this step and tokenise it"; numpy, Arrow and the fast
tokenizers release the GIL, so the work overlaps the forward / backward pass. Order and content do not
depend on timing: the result for step ``s`` is ``make(s)``, so a resumed run (a new ``Prefetcher`` at the
resume step) sees exactly the batches of an uninterrupted one.

An exception in ``make`` is re-raised in the consumer at the step where it happened (with the original
traceback); ``close()`` (or leaving the ``with`` block) stops the thread without waiting for the rest of the
stream; the thread is a daemon, so an unclosed prefetcher never keeps the interpreter alive. Hand-written because torch's DataLoader
would need worker processes (a second copy of the sampler state per worker) and a sampler/dataset split
that the step-indexed sampler does not have; one thread is enough when the work is vectorised.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any

_DONE = object()


class _Failure:
    def __init__(self, err: BaseException):
        self.err = err


class Prefetcher:
    def __init__(self, make: Callable[[int], Any], start: int = 0, depth: int = 2, stop: int | None = None):
        if depth < 1:
            raise ValueError(f"prefetch depth must be >= 1, got {depth}")
        self.make, self.next_step, self.stop = make, int(start), stop
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(int(start),), name="batch-prefetch", daemon=True)
        self._thread.start()

    def _put(self, item) -> bool:
        """Put unless closed; returns False once the consumer has gone."""
        while not self._closed.is_set():
            try:
                self._queue.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def _run(self, step: int) -> None:
        while not self._closed.is_set() and (self.stop is None or step < self.stop):
            try:
                item = (step, self.make(step))
            except BaseException as err:  # noqa: BLE001 - handed to the consumer, not swallowed
                self._put(_Failure(err))
                return
            if not self._put(item):
                return
            step += 1
        self._put(_DONE)

    def __iter__(self):
        return self

    def __next__(self):
        if self._closed.is_set():
            raise StopIteration
        item = self._queue.get()
        if item is _DONE:
            self.close()
            raise StopIteration
        if isinstance(item, _Failure):
            self.close()
            raise item.err
        step, value = item
        self.next_step = step + 1
        return value

    def close(self, timeout: float = 5.0) -> None:
        """Stop the background thread (it finishes at most the batch it is preparing)."""
        self._closed.set()
        while True:  # unblock a producer waiting on a full queue
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        if self._thread is not threading.current_thread():
            self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False
