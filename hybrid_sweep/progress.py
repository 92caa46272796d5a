"""Progress bars that a log file can hold: one helper for every bar (encoding, training).

On a terminal, ``progress(...)`` is a tqdm bar. When the stream is not a terminal (a sweep's log, a
SLURM output file, a pipe), tqdm would still redraw one line with carriage returns (tens of kB per run);
there a ``PlainProgress`` writes whole plain lines instead: at each tenth of the total and at most every
``every_s`` seconds otherwise, plus one final line, so a log holds a bounded number of short lines.
"""

from __future__ import annotations

import sys
import time

PLAIN_EVERY_S = 60.0  # a plain line at least this often while a long tenth is in progress


def _is_terminal(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # closed or a stream without isatty
        return False


def progress(total: int | None, desc: str, *, disable: bool = False, initial: int = 0, unit: str = "it",
             file=None, every_s: float = PLAIN_EVERY_S):
    """A bar with tqdm's ``update`` / ``set_postfix`` / ``close``: tqdm on a terminal, else plain lines."""
    stream = file if file is not None else sys.stderr
    if _is_terminal(stream):
        from tqdm.auto import tqdm

        return tqdm(total=total, desc=desc, disable=disable, initial=initial, unit=unit, file=stream)
    return PlainProgress(total, desc, disable=disable, initial=initial, unit=unit, file=stream, every_s=every_s)


class PlainProgress:
    """Plain ``desc: 40% 400/1000 text [12s, 33.3 text/s] loss=0.1`` lines (no ``\\r``)."""

    def __init__(self, total, desc, *, disable=False, initial=0, unit="it", file=None, every_s=PLAIN_EVERY_S):
        self.total, self.desc, self.unit, self.disable = total, desc, unit, disable
        self.file, self.every_s = file if file is not None else sys.stderr, every_s
        self.n = self.start_n = initial
        self.postfix = ""
        self.start = self.last_time = time.monotonic()
        self.last_tenth = self._tenth(initial)
        self.printed_n = initial

    def _tenth(self, n) -> int:
        return int(10 * n / self.total) if self.total else 0

    def update(self, n: int = 1) -> None:
        self.n += n
        if self.disable:
            return
        now = time.monotonic()
        tenth = self._tenth(self.n)
        if tenth > self.last_tenth or now - self.last_time >= self.every_s:
            self.last_tenth = max(tenth, self.last_tenth)
            self._line(now)

    def set_postfix(self, ordered_dict=None, refresh=True, **kwargs) -> None:
        items = {**(ordered_dict or {}), **kwargs}
        self.postfix = ", ".join(f"{k}={v}" for k, v in items.items())

    def close(self) -> None:
        if not self.disable and self.n != self.printed_n:
            self._line(time.monotonic())
        self.disable = True  # a second close writes nothing

    def _line(self, now: float) -> None:
        elapsed = now - self.start
        rate = (self.n - self.start_n) / elapsed if elapsed > 0 else 0.0
        share = f"{100 * self.n / self.total:3.0f}% {self.n}/{self.total}" if self.total else f"{self.n}"
        tail = f" {self.postfix}" if self.postfix else ""
        self.file.write(f"{self.desc}: {share} {self.unit} [{elapsed:.0f}s, {rate:.3g} {self.unit}/s]{tail}\n")
        self.file.flush()
        self.last_time, self.printed_n = now, self.n

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False
