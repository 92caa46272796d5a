"""Shared CLI plumbing: user errors become one line on stderr and exit code 2."""

from __future__ import annotations

import functools
import logging
import sys

from hybrid_sweep.errors import HybridSweepError

EXIT_USER_ERROR = 2


def user_errors(fn):
    """Wrap a Hydra task function so a :class:`HybridSweepError` prints one line and exits non-zero."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except HybridSweepError as err:
            print(f"error: {err}", file=sys.stderr)
            sys.exit(EXIT_USER_ERROR)

    return wrapper


def quiet_libraries() -> None:
    """Keep library chatter (load reports, shard progress bars) out of run logs."""
    import transformers

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    for name in ("sentence_transformers", "httpx", "urllib3", "filelock"):
        logging.getLogger(name).setLevel(logging.WARNING)
