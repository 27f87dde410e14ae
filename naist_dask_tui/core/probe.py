"""Client side of the scheduler probe: one lean call per refresh -> a frozen ClusterSnapshot.

The scheduler sends only the rows that changed since this probe's previous call (see
:mod:`scheduler_plugin`); the probe keeps the last full table and rebuilds only changed
:class:`WorkerRow` objects, so an unchanged worker is the *same* object from one snapshot to
the next and the screen can skip it.

When the plugin cannot be installed (a scheduler that refuses pickled plugins), the probe
falls back to ``identity(n_workers=-1)``: every worker, never a truncated list.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable

import cloudpickle
import dask

from naist_dask_tui.core import scheduler_plugin
from naist_dask_tui.core.hostnames import host_names
from naist_dask_tui.core.scheduler_plugin import HANDLER, ROW_WIDTH, STATIC_WIDTH, ProbePlugin
from naist_dask_tui.core.snapshot import ClusterSnapshot, TaskCounts, WorkerRow

logger = logging.getLogger(__name__)

CALL_TIMEOUT = 10.0  # seconds; a poll that takes longer means the scheduler is lost


def _worker_row(
    static: tuple, raw: list, job_of: Callable[[str], str | None], host_name: Callable[[str], str] = str
) -> WorkerRow:
    address, name, host, nthreads, memory_limit = static
    (
        _index,
        status,
        cpu,
        memory,
        nbytes,
        spilled_memory,
        spilled_disk,
        executing,
        ready,
        in_memory,
        last_seen,
    ) = raw
    # The scheduler's nbytes counts spilled keys too (at their in-memory size): what is in
    # RAM is the rest. Unmanaged is the process memory that no key accounts for.
    memory = int(memory)
    managed = max(0, int(nbytes) - int(spilled_memory))
    return WorkerRow(
        address=address,
        name=name,
        host=host_name(host),  # dask reports IPs; the panels show names, as qstat does
        job_id=job_of(name),
        nthreads=nthreads,
        status=status,
        cpu=float(cpu),
        memory=memory,
        managed=managed,
        unmanaged=max(0, memory - managed),
        spilled=int(spilled_disk),
        memory_limit=memory_limit,
        executing=executing,
        ready=ready,
        in_memory=in_memory,
        last_seen=float(last_seen),
    )


def _identity_reply(info: dict) -> dict:
    """The plugin's reply layout (static list + every row) from ``identity()``."""
    static: list = []
    flat: list = []
    for i, (addr, w) in enumerate(info.get("workers", {}).items()):
        m = w.get("metrics", {})
        spilled = m.get("spilled_bytes") or {}
        counts = m.get("task_counts") or {}
        static.extend(
            (addr, str(w.get("name", addr)), w.get("host", ""), w.get("nthreads", 0),
             int(w.get("memory_limit", 0) or 0))
        )
        flat.extend(
            (
                i,
                str(w.get("status", "running")),
                float(m.get("cpu", 0.0) or 0.0),
                int(m.get("memory", 0) or 0),
                int(w.get("nbytes", m.get("managed_bytes", 0)) or 0),
                int(spilled.get("memory", 0) or 0),
                int(spilled.get("disk", 0) or 0),
                int(counts.get("executing", 0)),
                int(counts.get("ready", 0)),
                int(w.get("has_what", 0) if isinstance(w.get("has_what"), int) else 0),
                float(w.get("last_seen", 0.0)),
            )
        )
    return {
        "time": info.get("time", 0.0),
        "address": info.get("address", ""),
        "static": static,
        "flat": flat,
        "tasks": {},
        "n_tasks": info.get("n_tasks", 0) if isinstance(info.get("n_tasks"), int) else 0,
    }


class SchedulerProbe:
    """Polls one scheduler through a synchronous ``distributed.Client``.

    ``job_of`` maps a worker name to its SGE job id (the controller knows it). ``snapshot()``
    blocks and must be called off the UI thread; it raises on a lost scheduler.
    """

    def __init__(
        self,
        client,
        job_of: Callable[[str], str | None] | None = None,
        *,
        keeper: bool = False,
        token: str | None = None,
    ):
        self.client = client
        self.job_of = job_of or (lambda name: None)
        self.host_name = host_names
        self.token = token or uuid.uuid4().hex
        self.mode: str | None = None  # "plugin" | "identity"
        self._rows: dict[str, WorkerRow] = {}
        self._static: list[tuple] = []  # the scheduler's workers by index (static fields)
        # keeper=True: ask the scheduler's keeper (if any) for its control state in the same
        # call; ``keeper_state`` is its newest full state (None: no keeper answered).
        self.keeper = keeper
        self.keeper_state: dict | None = None

    def install(self) -> str:
        """Put the handler on the scheduler; returns the mode in use."""
        try:
            # By value: a scheduler we attach to need not have naist_dask_tui installed.
            cloudpickle.register_pickle_by_value(scheduler_plugin)
            try:
                self.client.register_plugin(ProbePlugin())
            finally:
                cloudpickle.unregister_pickle_by_value(scheduler_plugin)
            self.mode = "plugin"
        except Exception as exc:  # refused pickles, old scheduler, ...
            logger.warning("probe plugin not installed (%s); using identity()", exc)
            self.mode = "identity"
        return self.mode

    def _call(self, full: bool) -> dict:
        if self.mode == "plugin":
            rpc = getattr(self.client.scheduler, HANDLER)
            kwargs = {}
            if self.keeper:
                version = self.keeper_state.get("version", -1) if self.keeper_state else -1
                kwargs["keeper"] = -1 if full else version
            reply = self.client.sync(
                rpc, token=self.token, full=full, callback_timeout=CALL_TIMEOUT, **kwargs
            )
            state = reply.get("keeper")
            if state is not None and "jobs" in state:  # else: "nothing new since your version"
                self.keeper_state = state
            return reply
        info = self.client.sync(
            self.client.scheduler.identity, n_workers=-1, callback_timeout=CALL_TIMEOUT
        )
        return _identity_reply(info)

    def snapshot(self, full: bool = False) -> ClusterSnapshot:
        if self.mode is None:
            self.install()
        raw = self._call(full or not self._static)
        static = raw["static"]
        rows = self._rows
        changed: set[str] = set()
        if static is not None:  # the set of workers changed (or a first / full poll)
            self._static = [tuple(static[i : i + STATIC_WIDTH]) for i in range(0, len(static), STATIC_WIDTH)]
            keep = {s[0] for s in self._static}
            rows = {a: r for a, r in rows.items() if a in keep}
            changed |= set(self._rows) - keep
        else:
            rows = dict(rows)
        members = self._static
        flat = raw["flat"]
        for i in range(0, len(flat), ROW_WIDTH):
            r = flat[i : i + ROW_WIDTH]
            row = _worker_row(members[r[0]], r, self.job_of, self.host_name)
            rows[row.address] = row
            changed.add(row.address)
        # A job id can become known after the row was built (qsub answers late): re-map.
        for addr, row in list(rows.items()):
            if row.job_id is None and addr not in changed:
                job = self.job_of(row.name)
                if job is not None:
                    rows[addr] = _replace_job(row, job)
                    changed.add(addr)
        first = not self._rows or full
        self._rows = rows
        t = raw["tasks"]
        tasks = TaskCounts(
            total=raw["n_tasks"],
            released=t.get("released", 0),
            waiting=t.get("waiting", 0),
            queued=t.get("queued", 0),
            no_worker=t.get("no-worker", 0),
            processing=t.get("processing", 0),
            memory=t.get("memory", 0),
            erred=t.get("erred", 0),
            finished=raw.get("finished", 0),
        )
        return ClusterSnapshot(
            time=raw["time"],
            scheduler_address=raw["address"],
            workers=tuple(sorted(rows.values(), key=lambda w: w.address)),
            tasks=tasks,
            changed=None if first else frozenset(changed),
            spill_threshold=_fraction("distributed.worker.memory.spill"),
            target_fraction=_fraction("distributed.worker.memory.target"),
        )


def _replace_job(row: WorkerRow, job_id: str) -> WorkerRow:
    from dataclasses import replace

    return replace(row, job_id=job_id)


def _fraction(key: str) -> float | None:
    value = dask.config.get(key, None)
    return float(value) if value not in (None, False) else None
