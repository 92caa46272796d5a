"""Fault injection for the reliability tests: ``HYBRID_SWEEP_FAULT=<point>`` SIGKILLs the whole process
group (the sweep and its run processes) when execution reaches that point. Points: ``after_checkpoint``
(training), ``during_eval`` (a pool's qrels and run file written, the benchmark's metrics not yet),
``after_eval`` (one benchmark evaluated, results not merged), ``during_write:<file name>`` (the new file
complete under its temporary name, not yet renamed), ``before_done`` (results written, DONE not yet),
``during_collect`` (runs.parquet written, results.parquet not yet).

``HYBRID_SWEEP_FAULT_SCOPE=parent`` kills only the parent of the process that reaches the point (from a
run's worker: the sweep's main process, or the cluster job running it) - the worker is left to the
kernel's parent-death signal, which is what that fault tests."""

from __future__ import annotations

import os
import signal


def fault_point(name: str) -> None:
    if os.environ.get("HYBRID_SWEEP_FAULT") == name:
        if os.environ.get("HYBRID_SWEEP_FAULT_SCOPE") == "parent":
            os.kill(os.getppid(), signal.SIGKILL)
            return
        os.killpg(os.getpgid(0), signal.SIGKILL)
