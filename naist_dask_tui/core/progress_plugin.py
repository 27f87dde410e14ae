"""The scheduler side of a compute-pane run's progress: a plugin with its own handler.

Installed on the scheduler as a plugin that registers the comm handler
``scheduler.handlers["ndtui_progress_1"]``, called by the console (:mod:`progress`) as
``await client.scheduler.ndtui_progress_1(action=..., run_id=..., client=...)``. It

* marks the start of a run for one client (``begin``); every graph that client submits while the
  run is active (``client.compute``, ``.compute()``, ``.persist()`` inside the user's code) is
  attached to the run in the ``update_graph`` hook, which fires after the tasks exist and
  before any of them can have finished;
* keeps per task prefix counts up to date from the ``transition`` hook (O(1) per transition,
  only a dict lookup for keys of other computations);
* answers ``counts`` (and ``end``) with ``{"groups": [[prefix, *counts]], "first_erred": ...}``,
  the counts in the order of ``COUNT_FIELDS``: O(number of task prefixes), so polling it at a
  few Hz costs the scheduler nothing measurable;
* cancels all the run's keys on request (``cancel``), also those submitted by a blocking
  ``.compute()`` inside the user's code, for which the console holds no futures.

This module is pickled *by value* when it is sent to a scheduler (a scheduler the console
merely attaches to need not have naist-dask-tui installed), so it must stay self-contained: it
imports distributed and the standard library only.
"""

from __future__ import annotations

from distributed.diagnostics.plugin import SchedulerPlugin

# Versioned: a scheduler keeps an installed plugin of the same name (``idempotent``), so a
# reply format change needs new names.
PLUGIN_NAME = "naist-dask-tui-progress-1"
HANDLER = "ndtui_progress_1"

# What a task of a run counts as; a prefix's counts are a list indexed by these.
COUNT_FIELDS = ("total", "done", "erred", "processing", "queued", "waiting", "no_worker", "released")
TOTAL, DONE, ERRED, PROCESSING, QUEUED, WAITING, NO_WORKER, RELEASED = range(len(COUNT_FIELDS))
NEW = TOTAL  # the category of a key before its first state is known

# The scheduler's task states that map straight onto a category.
_CATEGORY_OF_STATE = {
    "memory": DONE,
    "erred": ERRED,
    "processing": PROCESSING,
    "queued": QUEUED,
    "waiting": WAITING,
    "no-worker": NO_WORKER,
}


def category(state: str, old: int) -> int:
    """The category of a task now in ``state`` that was in category ``old``."""
    new = _CATEGORY_OF_STATE.get(state)
    if new is not None:
        return new
    # released / forgotten: a finished (or erred) task stays counted as such; a task dropped
    # before it finished (cancel) is "released".
    if old in (DONE, ERRED):
        return old
    if state == "released" and old in (NEW, WAITING):
        return WAITING  # a fresh task, or on the way back to waiting (lost worker)
    return RELEASED


class Run:
    """One run of one client: its keys, their categories and the counts per task prefix."""

    __slots__ = ("client", "category", "counts_of", "counts", "outputs", "first_erred")

    def __init__(self, client: str) -> None:
        self.client = client
        self.category: dict = {}  # key -> its category
        self.counts_of: dict = {}  # key -> the counts list of its prefix
        self.counts: dict = {}  # prefix name -> counts list
        self.outputs: set = set()  # the keys the client asked for (what cancel cancels)
        self.first_erred: str | None = None  # prefix of the first task that raised

    def reply(self) -> dict:
        return {
            "groups": [[name, *counts] for name, counts in self.counts.items()],
            "first_erred": self.first_erred,
        }


class ProgressPlugin(SchedulerPlugin):
    """Registers the ``ndtui_progress_1`` handler on the scheduler it is added to."""

    name = PLUGIN_NAME
    idempotent = True

    def __init__(self) -> None:
        self.scheduler = None
        self.runs: dict = {}  # run_id -> Run
        self.active: dict = {}  # client id -> run_id
        self.key_run: dict = {}  # key -> Run (only keys of live runs)

    async def start(self, scheduler) -> None:
        self.scheduler = scheduler
        handle = self.handle

        # A plain function, not a partial: the comm layer inspects the handler's signature.
        def handler(action: str = "counts", run_id: str = "", client: str = "", **kwargs):
            return handle(action, run_id, client)

        scheduler.handlers[HANDLER] = handler

    async def close(self) -> None:
        if self.scheduler is not None:
            self.scheduler.handlers.pop(HANDLER, None)

    # -- the scheduler's hooks ---------------------------------------------------------------

    def update_graph(self, scheduler, *, client=None, keys=None, tasks=None, **kwargs) -> None:
        run_id = self.active.get(client)
        if run_id is None:
            return
        run = self.runs.get(run_id)
        if run is None:
            return
        run.outputs.update(keys or ())
        self._attach(run, tasks or ())

    def transition(self, key, start, finish, *args, **kwargs) -> None:
        run = self.key_run.get(key)
        if run is None:
            return
        old = run.category.get(key)
        if old is None:
            return
        new = category(finish, old)
        if new == ERRED and run.first_erred is None:
            # the first task of the run to err is the one that raised; dependents follow
            ts = self.scheduler.tasks.get(key)
            run.first_erred = ts.prefix.name if ts is not None else None
        if new != old:
            run.category[key] = new
            counts = run.counts_of[key]
            counts[old] -= 1
            counts[new] += 1

    def _attach(self, run: Run, keys) -> None:
        tasks = self.scheduler.tasks
        for key in keys:
            if key in run.category:
                continue
            ts = tasks.get(key)
            if ts is None:
                continue
            prefix = ts.prefix.name
            counts = run.counts.get(prefix)
            if counts is None:
                counts = run.counts[prefix] = [0] * len(COUNT_FIELDS)
            c = category(ts.state, NEW)
            run.category[key] = c
            run.counts_of[key] = counts
            counts[TOTAL] += 1
            counts[c] += 1
            old_run = self.key_run.get(key)
            if old_run is not None and old_run is not run:
                old_run.category.pop(key, None)
            self.key_run[key] = run

    # -- the handler ---------------------------------------------------------------------------

    def handle(self, action: str, run_id: str, client: str):
        if action == "begin":
            return self._begin(run_id, client)
        run = self.runs.get(run_id)
        if run is None:
            return None
        if action == "end" and self.active.get(run.client) == run_id:
            # graphs submitted after this belong to no run; counts stay readable
            del self.active[run.client]
        if action in ("counts", "end"):
            return run.reply()
        if action == "forget":
            self._drop(run_id)
            return True
        if action == "cancel":
            keys = list(run.outputs)
            if keys and run.client in self.scheduler.clients:
                self.scheduler.stimulus_cancel(
                    keys, run.client, force=True, reason="cancelled from the console", msg="",
                )
            return len(keys)
        return None

    def _begin(self, run_id: str, client: str) -> bool:
        old = self.active.get(client)
        if old is not None:
            self._drop(old)
        # runs of consoles that went away without ending them
        for rid in [r for r, run in self.runs.items() if run.client not in self.scheduler.clients]:
            self._drop(rid)
        self.runs[run_id] = Run(client)
        self.active[client] = run_id
        return True

    def _drop(self, run_id: str) -> None:
        run = self.runs.pop(run_id, None)
        if run is None:
            return
        if self.active.get(run.client) == run_id:
            del self.active[run.client]
        for key in run.category:
            if self.key_run.get(key) is run:
                del self.key_run[key]


def installed(dask_scheduler) -> bool:
    """Run on the scheduler (``client.run_on_scheduler``): is the plugin there already?"""
    return PLUGIN_NAME in dask_scheduler.plugins and HANDLER in dask_scheduler.handlers
