"""Progress of one console run, counted on the scheduler from the run's own keys.

Why not ``get_task_prefix_states``: it omits ``queued`` and ``no-worker`` tasks, and with task
queuing (on by default) most of a large graph sits in ``queued``, so totals built from it
undercount badly. Instead a tiny scheduler plugin:

* marks the start of a run for one client (``begin``); every graph that client submits while the
  run is active (``client.compute``, ``.compute()``, ``.persist()`` inside the user's code) is
  attached to the run in the plugin's ``update_graph`` hook, which fires after the tasks exist and
  before any of them can have finished;
* keeps per task prefix counts up to date from the ``transition`` hook (O(1) per transition, only
  a dict lookup for keys of other computations);
* answers ``counts`` through a scheduler handler (``scheduler.handlers["ndtui_progress"]``): the
  reply is O(number of task prefixes), so polling it at a few Hz costs the scheduler nothing
  measurable;
* cancels all the run's keys on request (``cancel``), also those submitted by a blocking
  ``.compute()`` inside the user's code, for which the console holds no futures.

The plugin class is built by a factory so that (cloud)pickle ships it *by value*: a scheduler we
merely attach to does not need naist-dask-tui installed. For the same reason the plugin's code
refers to no module-level name of this file.

Nothing here imports textual.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

PLUGIN_NAME = "naist-dask-tui-progress-1"
HANDLER_NAME = "ndtui_progress_1"

# Order of the per-group count vector exchanged with the scheduler.
COUNT_FIELDS = ("total", "done", "erred", "processing", "queued", "waiting", "no_worker", "released")


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
            GroupProgress(str(row[0]), *(int(v) for v in row[1:])) for row in reply["groups"]
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


def make_progress_plugin() -> Any:
    """Build the scheduler plugin instance (its class is local, so it pickles by value)."""
    from distributed.diagnostics.plugin import SchedulerPlugin

    class NdtuiProgressPlugin(SchedulerPlugin):
        # Category index in a count vector: 0 total, 1 done, 2 erred, 3 processing, 4 queued,
        # 5 waiting, 6 no-worker, 7 released (before finishing).
        _STATE_INDEX = {
            "memory": 1,
            "erred": 2,
            "processing": 3,
            "queued": 4,
            "waiting": 5,
            "no-worker": 6,
        }

        def __init__(self) -> None:
            self.name = "naist-dask-tui-progress-1"
            self.scheduler = None
            self.runs: dict = {}  # run_id -> run record
            self.active: dict = {}  # client id -> run_id
            self.key_run: dict = {}  # key -> run record (only keys of live runs)

        async def start(self, scheduler) -> None:
            self.scheduler = scheduler
            plugin = self

            def ndtui_progress_1(action: str = "counts", run_id: str = "", client: str = "",
                                 **kwargs):
                return plugin.handle(action, run_id, client)

            scheduler.handlers["ndtui_progress_1"] = ndtui_progress_1

        def _category(self, state: str, old: int) -> int:
            idx = self._STATE_INDEX.get(state)
            if idx is not None:
                return idx
            # released / forgotten: a finished (or erred) task stays counted as such; a task
            # dropped before it finished (cancel) is "released".
            if old in (1, 2):
                return old
            if state == "released" and old in (0, 3, 4, 5, 6):
                # transient on the way back to waiting (lost worker), or a fresh task
                return 5 if old in (0, 5) else 7
            return 7

        def _attach(self, run: dict, keys) -> None:
            tasks = self.scheduler.tasks
            cat = run["cat"]
            counts = run["counts"]
            prefix_of = run["prefix"]
            for key in keys:
                if key in cat:
                    continue
                ts = tasks.get(key)
                if ts is None:
                    continue
                prefix = ts.prefix.name
                vec = counts.get(prefix)
                if vec is None:
                    vec = counts[prefix] = [0] * 8
                c = self._category(ts.state, 0)
                cat[key] = c
                prefix_of[key] = vec
                run["prefix_name"][key] = prefix
                vec[0] += 1
                vec[c] += 1
                old_run = self.key_run.get(key)
                if old_run is not None and old_run is not run:
                    old_run["cat"].pop(key, None)
                self.key_run[key] = run

        def update_graph(self, scheduler, *, client=None, keys=None, tasks=None, **kwargs) -> None:
            run_id = self.active.get(client)
            if run_id is None:
                return
            run = self.runs.get(run_id)
            if run is None:
                return
            run["outputs"].update(keys or ())
            self._attach(run, tasks or ())

        def transition(self, key, start, finish, *args, **kwargs) -> None:
            run = self.key_run.get(key)
            if run is None:
                return
            cat = run["cat"]
            old = cat.get(key)
            if old is None:
                return
            new = self._category(finish, old)
            if new == 2 and run["first_erred"] is None:
                # the first task of the run to err is the one that raised; dependents follow
                run["first_erred"] = run["prefix_name"].get(key)
            if new != old:
                cat[key] = new
                vec = run["prefix"][key]
                vec[old] -= 1
                vec[new] += 1

        def _drop(self, run_id: str) -> None:
            run = self.runs.pop(run_id, None)
            if run is None:
                return
            if self.active.get(run["client"]) == run_id:
                del self.active[run["client"]]
            for key in run["cat"]:
                if self.key_run.get(key) is run:
                    del self.key_run[key]

        def handle(self, action: str, run_id: str, client: str):
            if action == "begin":
                old = self.active.get(client)
                if old is not None:
                    self._drop(old)
                # runs of consoles that went away without ending them
                for rid in [r for r, rec in self.runs.items()
                            if rec["client"] not in self.scheduler.clients]:
                    self._drop(rid)
                self.runs[run_id] = {
                    "client": client, "cat": {}, "prefix": {}, "prefix_name": {},
                    "counts": {}, "outputs": set(), "first_erred": None,
                }
                self.active[client] = run_id
                return True
            run = self.runs.get(run_id)
            if run is None:
                return None
            if action == "end" and self.active.get(run["client"]) == run_id:
                # graphs submitted after this belong to no run; counts stay readable
                del self.active[run["client"]]
            if action in ("counts", "end"):
                return {
                    "groups": [[name, *vec] for name, vec in run["counts"].items()],
                    "first_erred": run["first_erred"],
                }
            if action == "forget":
                self._drop(run_id)
                return True
            if action == "cancel":
                keys = list(run["outputs"])
                if keys and run["client"] in self.scheduler.clients:
                    self.scheduler.stimulus_cancel(
                        keys, run["client"], force=True,
                        reason="cancelled from the console", msg="",
                    )
                return len(keys)
            return None

        async def close(self) -> None:
            if self.scheduler is not None:
                self.scheduler.handlers.pop("ndtui_progress_1", None)

    return NdtuiProgressPlugin()


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
            return await getattr(client.scheduler, HANDLER_NAME)(
                action=action, run_id=run_id, client=client.id
            )

        return client.sync(call, callback_timeout=timeout)

    def ensure_installed(self) -> bool:
        if self.available is not None:
            return self.available
        try:
            present = self.client.run_on_scheduler(_make_presence_check())
            if not present:
                self.client.register_plugin(make_progress_plugin(), name=PLUGIN_NAME)
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
        done = sum(int(row[2]) for row in counts["groups"])
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


def _make_presence_check() -> Any:
    # A local function pickles by value: the scheduler needs no naist-dask-tui to run it.
    def ndtui_plugin_present(dask_scheduler: Any) -> bool:
        return "naist-dask-tui-progress-1" in dask_scheduler.plugins and (
            "ndtui_progress_1" in dask_scheduler.handlers
        )

    return ndtui_plugin_present
