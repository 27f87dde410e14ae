"""Workers at scale: groups by SGE job or by host, and the workers that stand out.

At 2,000 workers a row per worker is too much to read. The Workers panel then offers one row
per group (sum / min / median / max of memory, CPU and tasks) and the outliers above it: the
highest memory, the workers spilling to disk, and stragglers, workers still executing while
most of the cluster is idle (the tail of a computation waits on them; distributed#8140).

Pure functions over ``WorkerRow`` records; nothing here imports textual.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from statistics import median

from naist_dask_tui.core.snapshot import WorkerRow

IDLE_SHARE = 0.8  # stragglers: executing while at least this share of the workers is idle
MAX_LISTED = 3  # outliers named per kind


@dataclass(frozen=True, slots=True)
class Spread:
    """sum / min / median / max of one quantity over a group's workers."""

    total: float
    low: float
    mid: float
    high: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        if not values:
            return cls(0.0, 0.0, 0.0, 0.0)
        return cls(float(sum(values)), float(min(values)), float(median(values)), float(max(values)))


@dataclass(frozen=True, slots=True)
class GroupRow:
    """One SGE job's (or one host's) workers, summed up."""

    key: str  # the job id or the host name
    by: str  # "job" | "host"
    workers: int
    threads: int
    memory: Spread  # process memory, bytes
    memory_limit: int  # sum of the limits
    fraction: Spread  # memory / limit per worker (0 without a limit)
    cpu: Spread  # percent of one core per worker
    tasks: Spread  # executing per worker
    spilled: int  # bytes on disk, summed
    spilling: int  # workers with something on disk
    hosts: int  # distinct hosts (by job) or jobs (by host)


def group_workers(workers: Iterable[WorkerRow], by: str) -> list[GroupRow]:
    """One row per job id (``by="job"``; workers without a job grouped as "-") or per host."""
    if by not in ("job", "host"):
        raise ValueError(f"by: {by!r}; use 'job' or 'host'")
    groups: dict[str, list[WorkerRow]] = {}
    for w in workers:
        key = (w.job_id or "-") if by == "job" else (w.host or "-")
        groups.setdefault(key, []).append(w)
    rows = []
    for key, members in groups.items():
        other = {(w.host if by == "job" else w.job_id) for w in members}
        rows.append(
            GroupRow(
                key=key,
                by=by,
                workers=len(members),
                threads=sum(w.nthreads for w in members),
                memory=Spread.of([w.memory for w in members]),
                memory_limit=sum(w.memory_limit for w in members),
                fraction=Spread.of([w.memory_fraction for w in members]),
                cpu=Spread.of([w.cpu for w in members]),
                tasks=Spread.of([w.executing for w in members]),
                spilled=sum(w.spilled for w in members),
                spilling=sum(1 for w in members if w.spilled),
                hosts=len(other - {None}),
            )
        )
    return rows


@dataclass(frozen=True, slots=True)
class Outliers:
    highest_memory: tuple[WorkerRow, ...]  # by memory / limit (by memory without limits)
    spilling: tuple[WorkerRow, ...]  # most spilled first
    spilling_count: int
    stragglers: tuple[WorkerRow, ...]  # executing while most others are idle
    straggler_count: int
    idle: int  # workers with nothing executing or ready


def outliers(workers: Sequence[WorkerRow]) -> Outliers:
    """The workers worth a look at scale.

    Stragglers: workers still executing when at least ``IDLE_SHARE`` of the cluster has
    nothing to execute and nothing ready, i.e. the computation's tail waits on them."""
    n = len(workers)
    with_limit = any(w.memory_limit for w in workers)
    key = (lambda w: w.memory_fraction) if with_limit else (lambda w: w.memory)
    highest = tuple(sorted(workers, key=key, reverse=True)[:MAX_LISTED])
    spilling = sorted((w for w in workers if w.spilled), key=lambda w: w.spilled, reverse=True)
    idle = sum(1 for w in workers if not w.executing and not w.ready)
    busy = [w for w in workers if w.executing]
    stragglers: list[WorkerRow] = []
    if n >= 2 and busy and idle >= IDLE_SHARE * n:
        stragglers = sorted(busy, key=lambda w: w.executing, reverse=True)
    return Outliers(
        highest_memory=highest,
        spilling=tuple(spilling[:MAX_LISTED]),
        spilling_count=len(spilling),
        stragglers=tuple(stragglers[:MAX_LISTED]),
        straggler_count=len(stragglers),
        idle=idle,
    )
