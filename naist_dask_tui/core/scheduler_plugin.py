"""The console's scheduler-side handler: one lean call per refresh.

Installed on the scheduler as a plugin that registers its own comm handler
(``scheduler.handlers["ndtui_probe_3"]``), called by the console as
``await client.scheduler.ndtui_probe_3(token=...)``. It returns the fields the panels show,
only for the workers that changed since the same caller's previous poll, so a refresh at 1,000
workers costs the scheduler about a millisecond.

The scheduler holds hundreds of thousands of objects, so what the handler allocates matters
beyond its own run: every container it keeps alive, or makes by the thousand, feeds the cyclic
garbage collector, whose full passes walk the whole heap. So the rows travel as ONE flat list
of scalars (``ROW_WIDTH`` values per worker), and a worker's change signature is a plain int
(hashed from C-level values only: ``Status.__hash__`` is Python code, ``id(status)`` is not;
the statuses are singletons).

This module is pickled *by value* when it is sent to a scheduler the console attaches to, so
it must stay self-contained: it imports distributed and the standard library only.
"""

from __future__ import annotations

import time
from collections import OrderedDict

from distributed.diagnostics.plugin import SchedulerPlugin

# Versioned: a scheduler keeps an installed plugin of the same name (``idempotent``), so a
# reply format change needs new names.
HANDLER = "ndtui_probe_3"
PLUGIN_NAME = "naist-dask-tui-probe-3"
# A keeper process that owns this scheduler puts an object here (``scheduler.extensions``)
# whose ``state_for(token, version)`` answers "what changed in the cluster's control state
# since ``version``": the screens learn about jobs, requests and notices in the same call
# that brings the workers, at the cost of one dict lookup when nothing changed.
KEEPER_EXTENSION = "ndtui-keeper"
MAX_CURSORS = 64  # callers remembered for change tracking (one per console; old ones dropped)

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


ROW_WIDTH = len(ROW_FIELDS)


def _row_into(out: list, ws) -> None:
    m = ws.metrics
    spilled = m.get("spilled_bytes") or {}
    counts = m.get("task_counts") or {}
    out += (
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
    )


def probe(scheduler, cursors: OrderedDict, token: str | None = None, full: bool = False) -> dict:
    """Rows that changed since ``token``'s previous call (all rows when ``full`` or new token).

    What a row shows changes with a heartbeat (``last_seen``), a task landing or leaving
    (``nbytes``, ``processing``) or a status change; comparing a hash of those four values per
    worker is the whole cost of a poll where nothing changed.
    """
    workers = scheduler.workers
    prev = None if (full or token is None) else cursors.get(token)
    flat: list = []
    if prev is None:
        sigs = {}
        for addr, ws in workers.items():
            sigs[addr] = hash((ws.last_seen, ws.nbytes, len(ws.processing), id(ws.status)))
            _row_into(flat, ws)
        members_changed = True
    else:
        sigs = prev  # updated in place: no new dict per poll
        members_changed = False
        get = prev.get
        for addr, ws in workers.items():
            sig = hash((ws.last_seen, ws.nbytes, len(ws.processing), id(ws.status)))
            old = get(addr)
            if old != sig:
                if old is None:
                    members_changed = True
                sigs[addr] = sig
                _row_into(flat, ws)
        if len(sigs) != len(workers):
            members_changed = True
            for addr in [a for a in sigs if a not in workers]:
                del sigs[addr]
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
        "flat": flat,
        "width": ROW_WIDTH,
        "full": prev is None,
        "tasks": states,
        "n_tasks": len(scheduler.tasks),
    }


class ProbePlugin(SchedulerPlugin):
    """Registers the ``ndtui_probe_3`` handler on the scheduler it is added to."""

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
