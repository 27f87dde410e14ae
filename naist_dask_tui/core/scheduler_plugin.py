"""The console's scheduler-side handler: one lean call per refresh.

Installed on the scheduler as a plugin that registers its own comm handler
(``scheduler.handlers["ndtui_probe"]``), called by the console as
``await client.scheduler.ndtui_probe(token=...)``. It returns plain lists holding only the
fields the panels show, and only the rows of workers that changed since the same caller's
previous poll, so a refresh at 1,000 workers costs the scheduler about a millisecond.

This module is pickled *by value* when it is sent to a scheduler the console attaches to, so
it must stay self-contained: it imports distributed and the standard library only.
"""

from __future__ import annotations

import time
from collections import OrderedDict

from distributed.diagnostics.plugin import SchedulerPlugin

HANDLER = "ndtui_probe"
PLUGIN_NAME = "naist-dask-tui-probe"
MAX_CURSORS = 32  # callers remembered for change tracking (one per console; old ones dropped)

# Row layout (index -> field); the client side unpacks by these positions.
ROW_FIELDS = (
    "address",
    "name",
    "host",
    "nthreads",
    "status",
    "cpu",
    "memory",
    "nbytes",
    "spilled_memory",
    "spilled_disk",
    "memory_limit",
    "executing",
    "ready",
    "in_memory",
    "last_seen",
)


def _row(ws) -> list:
    m = ws.metrics
    spilled = m.get("spilled_bytes") or {}
    counts = m.get("task_counts") or {}
    return [
        ws.address,
        str(ws.name),
        ws.host,
        ws.nthreads,
        ws.status.name,
        float(m.get("cpu", 0.0) or 0.0),
        int(m.get("memory", 0) or 0),
        int(ws.nbytes),
        int(spilled.get("memory", 0) or 0),
        int(spilled.get("disk", 0) or 0),
        int(ws.memory_limit or 0),
        int(counts.get("executing", 0)) + int(counts.get("long-running", 0)),
        int(counts.get("ready", 0)) + int(counts.get("constrained", 0)),
        len(ws.has_what),
        float(ws.last_seen),
    ]


def probe(scheduler, cursors: OrderedDict, token: str | None = None, full: bool = False) -> dict:
    """Rows that changed since ``token``'s previous call (all rows when ``full`` or new token).

    What a row shows changes with a heartbeat (``last_seen``), a task landing or leaving
    (``nbytes``, ``processing``) or a status change; comparing those four values per worker
    is the whole cost of a poll where nothing changed (~0.2 ms at 1,000 workers).
    """
    workers = scheduler.workers
    prev = None if (full or token is None) else cursors.get(token)
    sigs = {}
    rows = []
    if prev is None:
        for addr, ws in workers.items():
            sigs[addr] = (ws.last_seen, ws.nbytes, len(ws.processing), ws.status)
            rows.append(_row(ws))
    else:
        get = prev.get
        for addr, ws in workers.items():
            sig = (ws.last_seen, ws.nbytes, len(ws.processing), ws.status)
            sigs[addr] = sig
            if get(addr) != sig:
                rows.append(_row(ws))
    members_changed = prev is None or len(prev) != len(sigs) or prev.keys() != sigs.keys()
    if token is not None:
        cursors[token] = sigs
        cursors.move_to_end(token)
        while len(cursors) > MAX_CURSORS:
            cursors.popitem(last=False)
    states: dict[str, int] = {}
    for tp in scheduler.task_prefixes.values():
        for state, n in tp.states.items():
            if n:
                states[state] = states.get(state, 0) + n
    return {
        "time": time.time(),
        "address": scheduler.address,
        "members": list(sigs) if members_changed else None,
        "rows": rows,
        "full": prev is None,
        "tasks": states,
        "n_tasks": len(scheduler.tasks),
    }


class ProbePlugin(SchedulerPlugin):
    """Registers the ``ndtui_probe`` handler on the scheduler it is added to."""

    name = PLUGIN_NAME
    idempotent = True

    def __init__(self) -> None:
        self.cursors: OrderedDict = OrderedDict()

    async def start(self, scheduler) -> None:
        cursors = self.cursors

        # A plain function, not a partial: the comm layer inspects the handler's signature.
        def handler(token: str | None = None, full: bool = False) -> dict:
            return probe(scheduler, cursors, token, full)

        scheduler.handlers[HANDLER] = handler

    async def close(self) -> None:
        self.cursors.clear()
