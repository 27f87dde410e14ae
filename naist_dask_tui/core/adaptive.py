"""Adaptive scaling between a minimum and a maximum of jobs, through the controller's graceful
path (dask-jobqueue's own ``adapt`` deletes jobs with their data, and sibling processes of a
job that keeps working: dask-jobqueue#498).

Every ``interval`` seconds one step asks the scheduler how many workers it wants. Up: the
controller's target rises and its scaling loop submits. Down, after ``wait_count`` steps in a
row that want fewer: pending jobs go first, then a running job only if the scheduler would
close *all* its worker processes; their data moves before the jobs are deleted.
"""

from __future__ import annotations

import logging
import math
import threading

from naist_dask_tui.core.backends import worker_names

logger = logging.getLogger(__name__)


class AdaptiveScaling:
    def __init__(self, controller) -> None:
        self.c = controller
        self.bounds: tuple[int, int] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, minimum: int, maximum: int, interval: float, wait_count: int) -> None:
        c = self.c
        self.stop()
        with c.lock:
            c.ledger.failed_starts = 0
            self.bounds = (minimum, maximum)
            cur = len(c.scaler.active_names())
            c.target = min(max(cur, minimum), maximum)
        c.scaler.kick()
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._loop, args=(minimum, maximum, interval, wait_count, self._stop),
            name="ndtui-adapt", daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        """Off, and wait for a step under way."""
        self._stop.set()
        t = self._thread
        if t is not None and t is not threading.current_thread():
            t.join(timeout=10)
        self._thread = None
        self.bounds = None

    def stop_soon(self) -> None:
        """Off, without waiting (from the reconcile, or while closing)."""
        self._stop.set()
        self.bounds = None

    def _loop(self, lo: int, hi: int, interval: float, wait_count: int, stop: threading.Event) -> None:
        down_votes = 0
        while not stop.wait(interval):
            try:
                down_votes = self.step(lo, hi, wait_count, down_votes)
            except Exception as exc:
                logger.warning("adaptive step failed: %s", exc)

    def step(self, lo: int, hi: int, wait_count: int, down_votes: int) -> int:
        c = self.c
        if c.scaler.busy():
            return down_votes  # one change at a time
        sched = c.client.scheduler
        workers_wanted = c.client.sync(sched.adaptive_target, callback_timeout=15)
        want = min(max(math.ceil(workers_wanted / c.processes), lo), hi)
        active = c.scaler.active_names()
        if want > len(active):
            with c.lock:
                c.target = want
            c.scaler.kick()
            return 0
        if want == len(active):
            return 0
        down_votes += 1
        if down_votes < wait_count:
            return down_votes
        # Which jobs may go: pending ones first; a running job only if the scheduler would
        # close *all* its workers (never a sibling process of a job that keeps working).
        connected = c.scaler.connected_names()
        spec = c.cluster.worker_spec
        pending = [n for n in active if not any(w in connected for w in worker_names(n, spec.get(n, {})))]
        to_close = set(
            c.client.sync(
                sched.workers_to_close,
                target=max(0, want * c.processes),
                attribute="name",
                callback_timeout=15,
            )
        )
        closable = [
            n for n in active
            if n not in pending and all(w in to_close for w in worker_names(n, spec.get(n, {})))
        ]
        leaving = (pending + closable)[: len(active) - want]
        if leaving:
            with c.lock:
                c.target = len(active) - len(leaving)
            c.scaler.remove_jobs(leaving, "adaptive scale-down", connected)
        return 0
