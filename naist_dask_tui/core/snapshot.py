"""Immutable records that travel from the core to the screen.

Everything the console shows is built from these: the core fills them off the UI thread,
the widgets only read them. Byte counts are ints, times are epoch seconds (``time.time()``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from functools import cached_property


class JobState(str, Enum):
    """Life of one SGE job as the console sees it (SGE's own code is kept in ``raw_state``)."""

    SUBMITTING = "submitting"  # the console asked for it, qsub has not answered yet
    PENDING = "pending"  # qw: waiting in the queue (a normal state on a busy cluster)
    HELD = "held"  # hqw: on hold (qhold, or -h)
    RUNNING = "running"  # r, t: started; its workers connect soon after
    NO_WORKER = "no-worker"  # r in SGE, but its worker left (its node died?): not capacity
    SUSPENDED = "suspended"  # s, S, T
    ERROR = "error"  # E...: SGE could not start it
    DELETING = "deleting"  # d...: qdel in progress
    RETIRING = "retiring"  # the console is moving its workers' data away before qdel
    GONE = "gone"  # no longer in qstat although the console did not delete it
    ENDED = "ended"  # deleted by the console (scale-down, retired...) and out of the queue


@dataclass(frozen=True, slots=True)
class WorkerRow:
    """One dask worker process, as the scheduler last heard of it."""

    address: str
    name: str
    host: str
    job_id: str | None  # the SGE job this worker runs in (None: local / attached)
    nthreads: int
    status: str  # "running", "paused", "closing_gracefully", ...
    cpu: float  # percent of one core, from the last heartbeat
    memory: int  # process RSS
    managed: int  # managed bytes held in RAM (spilled-to-disk bytes excluded)
    unmanaged: int  # memory - managed, never negative
    spilled: int  # bytes spilled to disk (pickled size)
    memory_limit: int  # 0 = no limit
    executing: int
    ready: int
    in_memory: int  # tasks whose result this worker holds
    last_seen: float  # scheduler time of the last heartbeat

    @property
    def memory_fraction(self) -> float:
        return self.memory / self.memory_limit if self.memory_limit else 0.0


@dataclass(frozen=True, slots=True)
class TaskCounts:
    """Tasks known to the scheduler, by state (queued and no-worker included)."""

    total: int = 0
    released: int = 0
    waiting: int = 0
    queued: int = 0
    no_worker: int = 0
    processing: int = 0
    memory: int = 0
    erred: int = 0
    finished: int = 0  # tasks that reached memory since the scheduler started (cumulative)


@dataclass(frozen=True, slots=True)
class ClusterTotals:
    """The cluster's sums over its workers."""

    n_workers: int = 0
    nthreads: int = 0
    memory: int = 0
    managed: int = 0
    unmanaged: int = 0
    spilled: int = 0
    memory_limit: int = 0
    spilling_workers: int = 0  # workers with something on disk
    cpu: float = 0.0  # sum of the workers' CPU (percent of one core each)

    @classmethod
    def of(cls, cluster: ClusterSnapshot) -> ClusterTotals:
        return cluster.totals


@dataclass(frozen=True)
class ClusterSnapshot:
    """Every worker of the scheduler plus cluster totals, at one moment."""

    time: float
    scheduler_address: str
    workers: tuple[WorkerRow, ...]
    tasks: TaskCounts
    # Addresses whose row differs from the previous snapshot of the same probe; None means
    # "unknown, treat every row as changed" (first poll, or a probe without change tracking).
    changed: frozenset[str] | None = None
    spill_threshold: float | None = None  # distributed.worker.memory.spill (fraction of limit)
    target_fraction: float | None = None  # distributed.worker.memory.target

    @cached_property
    def totals(self) -> ClusterTotals:
        """All sums in one pass over the workers, computed once per snapshot."""
        nthreads = memory = managed = unmanaged = spilled = limit = spilling = 0
        cpu = 0.0
        for w in self.workers:
            cpu += w.cpu
            nthreads += w.nthreads
            memory += w.memory
            managed += w.managed
            unmanaged += w.unmanaged
            limit += w.memory_limit
            if w.spilled:
                spilled += w.spilled
                spilling += 1
        return ClusterTotals(
            len(self.workers), nthreads, memory, managed, unmanaged, spilled, limit, spilling, cpu
        )

    @property
    def n_workers(self) -> int:
        return len(self.workers)

    @property
    def nthreads(self) -> int:
        return self.totals.nthreads

    @property
    def memory(self) -> int:
        return self.totals.memory

    @property
    def managed(self) -> int:
        return self.totals.managed

    @property
    def unmanaged(self) -> int:
        return self.totals.unmanaged

    @property
    def spilled(self) -> int:
        return self.totals.spilled

    @property
    def memory_limit(self) -> int:
        return self.totals.memory_limit


@dataclass(frozen=True, slots=True)
class SgeJob:
    """One job as ``qstat -xml`` (and ``qstat -j`` for pending ones) reports it."""

    job_id: str
    name: str
    owner: str
    state: JobState
    raw_state: str  # SGE's code: qw, hqw, r, t, Eqw, dr, ...
    queue: str | None = None  # "grid_short.q" (without @host)
    host: str | None = None
    slots: int = 0
    submitted: float | None = None
    started: float | None = None
    reason: str = ""  # why it waits (qstat -j scheduling info) or why it erred


@dataclass(frozen=True, slots=True)
class JobRow:
    """One job of the console's cluster: what the console asked for joined with SGE's view
    and the dask workers it runs."""

    name: str  # dask spec name, e.g. "ndtui-3" (worker names are this, or this plus -0, -1, ...)
    job_id: str | None  # None while submitting, and for local workers
    state: JobState
    raw_state: str = ""
    queue: str | None = None
    host: str | None = None
    slots: int = 0
    since: float | None = None  # when it entered its current state (submit or start time)
    reason: str = ""
    workers: tuple[str, ...] = ()  # addresses of its connected workers
    expected_workers: int = 1  # processes per job
    log_path: str | None = None  # its SGE output file (the worker's own log), if known


@dataclass(frozen=True, slots=True)
class ConsoleSnapshot:
    """Everything one refresh of the console shows."""

    time: float
    backend: str  # "sge" | "local" | "attach"
    scheduler_address: str
    connected: bool
    cluster: ClusterSnapshot | None  # None when the scheduler could not be reached
    jobs: tuple[JobRow, ...] = ()
    requested_jobs: int = 0  # what the user (or adaptive scaling) asked for
    adaptive: tuple[int, int] | None = None  # (minimum_jobs, maximum_jobs) when adaptive is on
    dashboard_link: str | None = None
    local_directory: str | None = None
    error: str | None = None  # why the last poll failed, in words
    notices: tuple[str, ...] = field(default_factory=tuple)  # e.g. "job 123 deleted from outside"
    # A cluster kept by a keeper process: its name, the screens attached to it (this one
    # included), and its idle rule (seconds; None = never stops by itself).
    name: str | None = None
    screens: int = 0
    idle_timeout: float | None = None
    idle_since: float | None = None  # nothing kept it busy since then (None: busy)
    fatal: bool = False  # the cluster could not start: ``error`` says why; the screen ends
    limits: object | None = None  # core.limits.Limits in force (max_jobs, what runs at once)
    # Jobs that left the queue, newest first, each with its verdict in ``reason`` (GONE: the
    # console did not delete it; ENDED: it did). A job may be in ``jobs`` too (as GONE) for
    # a while after it vanished.
    ended: tuple[JobRow, ...] = ()

    @property
    def jobs_running(self) -> int:
        return sum(1 for j in self.jobs if j.state is JobState.RUNNING)

    @property
    def jobs_no_worker(self) -> int:
        """Jobs SGE still runs whose workers are gone (a dead node): not capacity."""
        return sum(1 for j in self.jobs if j.state is JobState.NO_WORKER)

    @property
    def jobs_pending(self) -> int:
        return sum(
            1
            for j in self.jobs
            if j.state in (JobState.PENDING, JobState.HELD, JobState.SUBMITTING)
        )


# A JobRow as plain values for the keeper's RPC (msgpack: lists, strings, numbers, None).
_JOB_ROW_FIELDS = tuple(JobRow.__slots__)


def job_row_to_wire(row: JobRow) -> list:
    return [
        row.state.value if name == "state" else list(v) if isinstance(v := getattr(row, name), tuple) else v
        for name in _JOB_ROW_FIELDS
    ]


def job_row_from_wire(data: list) -> JobRow:
    values = dict(zip(_JOB_ROW_FIELDS, data, strict=False))  # a newer keeper may send more
    values["state"] = JobState(values["state"])
    values["workers"] = tuple(values.get("workers") or ())
    return JobRow(**values)
