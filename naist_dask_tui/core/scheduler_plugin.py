"""The console's scheduler-side handler: one lean call per refresh.

Installed on the scheduler as a plugin that registers its own comm handler
(``scheduler.handlers["ndtui_probe_4"]``), called by the console as
``await client.scheduler.ndtui_probe_4(token=...)``. It returns the fields the panels show,
only for the workers that changed since the same caller's previous poll.

What it costs the scheduler is the point (issue 12: never more than ``scheduler_info`` at any
size, >= 8x cheaper at 1,000-2,000 workers), so a poll does as little Python per worker as it
can:

* a worker's *static* fields (address, name, host, threads, memory limit) travel only when the
  scheduler's set of workers changed; otherwise a row names its worker by its index in that
  list (``STATIC_FIELDS`` / ``ROW_FIELDS``);
* what changed is found with C-level loops only: the list of addresses compared with the caller's
  previous list, then ``map(attrgetter(last_seen, nbytes, status))`` compared element-wise
  with the previous values (``map(ne, ...)`` + ``compress``): no Python frame per worker. A
  heartbeat moves ``last_seen``; a task landing or leaving moves ``nbytes``; ``status`` is a
  singleton, compared by identity;
* rows travel as ONE flat list of scalars (``ROW_WIDTH`` values a worker): the scheduler holds
  hundreds of thousands of objects, and every container made by the thousand feeds the cyclic
  garbage collector, whose full passes walk the whole heap.

This module is pickled *by value* when it is sent to a scheduler the console attaches to, so
it must stay self-contained: it imports distributed and the standard library only.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from itertools import compress
from operator import attrgetter, ne

from distributed.core import Status
from distributed.diagnostics.plugin import SchedulerPlugin

# Versioned: a scheduler keeps an installed plugin of the same name (``idempotent``), so a
# reply format change needs new names (v3 sent every field of a changed row, keyed by address).
HANDLER = "ndtui_probe_4"
PLUGIN_NAME = "naist-dask-tui-probe-4"
# A keeper process that owns this scheduler puts an object here (``scheduler.extensions``)
# whose ``state_for(token, version)`` answers "what changed in the cluster's control state
# since ``version``": the screens learn about jobs, requests and notices in the same call
# that brings the workers, at the cost of one dict lookup when nothing changed.
KEEPER_EXTENSION = "ndtui-keeper"
MAX_CURSORS = 64  # callers remembered for change tracking (one per console; old ones dropped)

# Sent for every worker when the set of workers changed (index = position in this list).
STATIC_FIELDS = ("address", "name", "host", "nthreads", "memory_limit")
STATIC_WIDTH = len(STATIC_FIELDS)
# Sent for each changed worker; "index" points into the static list.
ROW_FIELDS = (
    "index",
    "status",
    "cpu",
    "memory",
    "nbytes",
    "spilled_memory",
    "spilled_disk",
    "executing",
    "ready",
    "in_memory",
    "last_seen",
)
ROW_WIDTH = len(ROW_FIELDS)

_EMPTY: dict = {}
# Status.name is a Python-level property and Status.__hash__ Python code: look names up by id.
_STATUS_NAME = {id(s): s.name for s in Status}
_signature = attrgetter("last_seen", "nbytes", "status")


def _static_into(out: list, ws) -> None:
    out += (ws.address, str(ws.name), ws.host, ws.nthreads, int(ws.memory_limit or 0))


def _row_into(out: list, i: int, ws) -> None:
    m = ws.metrics
    spilled = m.get("spilled_bytes") or _EMPTY
    counts = m.get("task_counts") or _EMPTY
    get = counts.get
    out += (
        i,
        _STATUS_NAME.get(id(ws.status)) or str(ws.status),
        m.get("cpu") or 0.0,
        m.get("memory") or 0,
        ws.nbytes,
        spilled.get("memory") or 0,
        spilled.get("disk") or 0,
        get("executing", 0) + get("long-running", 0),
        get("ready", 0) + get("constrained", 0),
        len(ws.has_what),
        ws.last_seen,
    )


def probe(scheduler, cursors: OrderedDict, token: str | None = None, full: bool = False) -> dict:
    """Rows that changed since ``token``'s previous call (all rows when ``full``, for a new
    token, or when the set of workers changed; then the static list travels too)."""
    workers = scheduler.workers
    # dict's own C-level views (insertion order, the same for both): SortedDict's values view
    # iterates in Python.
    members = list(dict.keys(workers))
    values = list(map(_signature, dict.values(workers)))
    prev = None if (full or token is None) else cursors.get(token)
    flat: list = []
    static = None
    if prev is not None and prev[0] == members:
        wss = list(dict.values(workers))
        for i in compress(range(len(values)), map(ne, values, prev[1])):
            _row_into(flat, i, wss[i])
    else:
        static = []
        for i, ws in enumerate(dict.values(workers)):
            _static_into(static, ws)
            _row_into(flat, i, ws)
    if token is not None:
        cursors[token] = (members, values)
        cursors.move_to_end(token)
        while len(cursors) > MAX_CURSORS:
            cursors.popitem(last=False)
    states: dict[str, int] = {}
    finished = 0  # tasks that reached memory since the scheduler started (the tasks/s graph)
    for tp in scheduler.task_prefixes.values():
        for state, n in tp.states.items():
            if n:
                states[state] = states.get(state, 0) + n
        finished += tp.state_counts.get("memory", 0)
    return {
        "time": time.time(),
        "address": scheduler.address,
        "static": static,
        "flat": flat,
        "tasks": states,
        "n_tasks": len(scheduler.tasks),
        "finished": finished,
    }


class ProbePlugin(SchedulerPlugin):
    """Registers the ``ndtui_probe_4`` handler on the scheduler it is added to."""

    name = PLUGIN_NAME
    idempotent = True

    def __init__(self) -> None:
        self.cursors: OrderedDict = OrderedDict()

    async def start(self, scheduler) -> None:
        cursors = self.cursors

        # A plain function, not a partial: the comm layer inspects the handler's signature.
        def handler(token: str | None = None, full: bool = False, keeper=None) -> dict:
            reply = probe(scheduler, cursors, token, full)
            if keeper is not None:
                ext = scheduler.extensions.get(KEEPER_EXTENSION)
                reply["keeper"] = ext.state_for(token, keeper) if ext is not None else None
            return reply

        scheduler.handlers[HANDLER] = handler

    async def close(self) -> None:
        self.cursors.clear()
