"""Scenarios shared by the real-SGE fault tests and ``bench/bench_faults.py`` (which runs them
against plain dask-jobqueue too, to print both numbers side by side)."""

from __future__ import annotations

import threading
import time

import dask.array as da
import numpy as np
from dask.utils import key_split
from distributed import wait


def memory_transitions(client, prefix: str) -> int:
    """How often a task of ``prefix`` went to memory on the scheduler: more than the number of
    its tasks means some were recomputed."""

    def count(dask_scheduler, prefix=prefix):
        tp = dask_scheduler.task_prefixes.get(prefix)
        return tp.state_counts.get("memory", 0) if tp is not None else 0

    return client.run_on_scheduler(count)


def _slow_block(block, delay=0.05):
    time.sleep(delay)
    return np.arcsin(block)


# pytest imports this file as "sge.scenarios", a name the SGE workers cannot import (a worker
# that cannot unpickle a task closes itself). A module name that does not resolve makes
# distributed fall back to cloudpickle, which ships the function by value, as it does for
# functions typed into the compute console.
_slow_block.__module__ = "__shipped_by_value__"


def scale_down_mid_computation(client, scale_to_one, *, seed: int = 7) -> dict:
    """Persist data on two workers (two jobs), start a slow computation on it, and while it
    runs call ``scale_to_one()``. Returns the persisted chunks, how many times they went to
    memory, and whether the result was right."""
    x = da.random.default_rng(seed).random((1600, 1600), chunks=(100, 100))
    x = client.persist(x)
    wait(x)
    holders = sum(1 for keys in client.has_what().values() if keys)
    prefix, n = key_split(x.name), x.npartitions
    z = x.map_blocks(_slow_block, dtype=float).sum()
    fut = client.compute(z)
    time.sleep(1.0)  # the computation is under way: intermediate results on both workers
    t0 = time.time()
    scale_to_one()
    value = fut.result(timeout=240)
    expected = np.arcsin(x.compute()).sum()
    return {
        "chunks": n,
        "holders_before": holders,
        "memory_transitions": memory_transitions(client, prefix),
        "recomputed": memory_transitions(client, prefix) - n,
        "correct": bool(np.isclose(value, expected)),
        "seconds": time.time() - t0,
    }


def run_in_thread(fn, *args):
    """Run ``fn`` in a thread; returns a function that waits and gives its result (or raises)."""
    box: dict = {}

    def target():
        try:
            box["value"] = fn(*args)
        except BaseException as exc:  # handed to the caller
            box["error"] = exc

    t = threading.Thread(target=target, daemon=True)
    t.start()

    def result(timeout=None):
        t.join(timeout)
        if t.is_alive():
            raise TimeoutError("still running")
        if "error" in box:
            raise box["error"]
        return box["value"]

    return result
