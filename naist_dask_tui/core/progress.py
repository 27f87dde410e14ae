"""Progress of one console run, counted on the scheduler from the run's own keys.

Why not ``get_task_prefix_states``: it omits ``queued`` and ``no-worker`` tasks, and with task
queuing (on by default) most of a large graph sits in ``queued``, so totals built from it
undercount badly. Instead a tiny scheduler plugin (:mod:`progress_plugin`, shipped by value)
attaches every graph the run's client submits to the run and counts its tasks per task prefix;
:class:`ProgressTracker` begins a run, polls its counts, cancels it and ends it.

Nothing here imports textual.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from naist_dask_tui.core import progress_plugin
from naist_dask_tui.core.progress_plugin import COUNT_FIELDS, DONE, HANDLER, PLUGIN_NAME, ProgressPlugin

_by_value_lock = threading.Lock()


@dataclass(frozen=True, slots=True)
class GroupProgress:
    """Counts for one task group (key prefix, e.g. ``random_sample``, ``arcsin``, ``sum``)."""

    name: str
    total: int
    done: int  # in memory, or released/forgotten after it was in memory
    erred: int
    processing: int
    queued: int
    waiting: int
    no_worker: int
    released: int = 0  # released/forgotten before finishing (cancelled)

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 0.0

    @property
    def remaining(self) -> int:
        return self.total - self.done - self.erred


@dataclass(frozen=True, slots=True)
class ProgressSnapshot:
    """The state of the running computation at one moment, for the progress view."""

    groups: tuple[GroupProgress, ...]
    done: int
    total: int
    erred: int
    processing: int
    queued: int
    waiting: int
    elapsed: float  # seconds since the run started
    rate: float  # tasks finished per second over the last few seconds
    finished: bool = False  # True on the last snapshot of a run
    first_erred: str | None = None  # task group of the first task that raised

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 0.0

    @classmethod
    def from_counts(
        cls, reply: dict[str, Any], elapsed: float, rate: float, finished: bool = False
    ) -> ProgressSnapshot:
        """Build from the plugin's reply: {"groups": [[name, total, done, ...]], ...}."""
        groups = tuple(
            GroupProgress(str(row[0]), **dict(zip(COUNT_FIELDS, map(int, row[1:]), strict=True)))
            for row in reply["groups"]
        )
        return cls(
            groups=groups,
            done=sum(g.done for g in groups),
            total=sum(g.total for g in groups),
            erred=sum(g.erred for g in groups),
            processing=sum(g.processing for g in groups),
            queued=sum(g.queued for g in groups),
            waiting=sum(g.waiting + g.no_worker for g in groups),
            elapsed=elapsed,
            rate=rate,
            finished=finished,
            first_erred=reply.get("first_erred"),
        )


def _on_scheduler(call: Any) -> Any:
    """Run ``call()`` with :mod:`progress_plugin` pickled by value: a scheduler we attach to
    need not have naist_dask_tui installed."""
    import cloudpickle

    with _by_value_lock:
        cloudpickle.register_pickle_by_value(progress_plugin)
        try:
            return call()
        finally:
            cloudpickle.unregister_pickle_by_value(progress_plugin)


class ProgressTracker:
    """Client side of the plugin: installs it once, then begin / poll / cancel / end per run.

    ``snapshot()`` is what the UI calls; it only returns the last polled value under a lock,
    so it is cheap and thread-safe. Polling happens in a background thread while a run is
    active, at ``interval`` seconds.
    """

    def __init__(self, client: Any, interval: float = 0.25) -> None:
        self.client = client
        self.interval = interval
        self.available: bool | None = None  # None: not tried yet
        self.unavailable_reason = ""
        self._lock = threading.Lock()
        self._snapshot: ProgressSnapshot | None = None
        self._run_id: str | None = None
        self._t0 = 0.0
        self._samples: deque[tuple[float, int]] = deque(maxlen=64)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- scheduler calls -------------------------------------------------------------------
    def _call(self, action: str, run_id: str = "", timeout: float = 10.0) -> Any:
        client = self.client

        async def call() -> Any:
            return await getattr(client.scheduler, HANDLER)(
                action=action, run_id=run_id, client=client.id
            )

        return client.sync(call, callback_timeout=timeout)

    def ensure_installed(self) -> bool:
        if self.available is not None:
            return self.available
        try:
            client = self.client
            if not _on_scheduler(lambda: client.run_on_scheduler(progress_plugin.installed)):
                _on_scheduler(lambda: client.register_plugin(ProgressPlugin(), name=PLUGIN_NAME))
            self.available = True
        except Exception as exc:  # scheduler refuses pickled code, old version, ...
            self.available = False
            self.unavailable_reason = f"{type(exc).__name__}: {exc}"
        return self.available

    # -- one run ---------------------------------------------------------------------------
    def begin(self, run_id: str) -> bool:
        with self._lock:
            self._snapshot = None
            self._samples.clear()
        self._t0 = time.monotonic()
        for attempt in range(2):
            if not self.ensure_installed():
                return False
            try:
                self._call("begin", run_id)
                break
            except Exception as exc:
                # a restarted scheduler lost the plugin: install it again, once
                self.unavailable_reason = f"{type(exc).__name__}: {exc}"
                self.available = None
                if attempt:
                    return False
        self._run_id = run_id
        self._stop.clear()
        self._thread = threading.Thread(target=self._poll_loop, name="ndtui-progress", daemon=True)
        self._thread.start()
        return True

    def _store(self, counts: Any, finished: bool = False) -> None:
        if counts is None:
            return
        now = time.monotonic()
        elapsed = now - self._t0
        done = sum(int(row[1 + DONE]) for row in counts["groups"])
        self._samples.append((now, done))
        rate = 0.0
        # rate over the last ~3 s of samples (whole run when shorter)
        first = self._samples[0]
        for t, d in self._samples:
            if now - t <= 3.0:
                first = (t, d)
                break
        if finished or now - first[0] < 0.2:
            rate = done / elapsed if elapsed > 0 else 0.0
        else:
            rate = (done - first[1]) / (now - first[0])
        snap = ProgressSnapshot.from_counts(counts, elapsed, max(rate, 0.0), finished)
        with self._lock:
            self._snapshot = snap

    def _poll_loop(self) -> None:
        run_id = self._run_id
        while not self._stop.wait(self.interval):
            try:
                self._store(self._call("counts", run_id or ""))
            except Exception:
                # a failed poll is not fatal: the run itself reports what went wrong
                if self._stop.is_set():
                    break

    def poll_now(self) -> None:
        if self._run_id is not None:
            try:
                self._store(self._call("counts", self._run_id))
            except Exception:
                pass

    def cancel(self) -> int:
        if self._run_id is None:
            return 0
        try:
            return int(self._call("cancel", self._run_id) or 0)
        except Exception:
            return 0

    def end(self) -> ProgressSnapshot | None:
        """Stop polling, take the final counts, and drop the run's state on the scheduler."""
        run_id, self._run_id = self._run_id, None
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if run_id is None:
            return None
        try:
            counts = self._call("end", run_id)
            self._store(counts, finished=True)
        except Exception:
            pass
        try:
            self._call("forget", run_id)
        except Exception:
            pass
        return self.snapshot()

    def snapshot(self) -> ProgressSnapshot | None:
        with self._lock:
            return self._snapshot

