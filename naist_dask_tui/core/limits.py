"""How many jobs a console may ask for (``max_jobs``) and how many its backend runs at once.

A typo (``s`` then ``10000``) must not flood a queue the whole lab shares, nor start ten
thousand worker processes on a laptop. So every request for jobs (``--jobs``, the ``s``
dialog, ``+``, adaptive scaling's maximum, ``ClusterController.scale()``) is checked against
``max_jobs``, whose default comes from the backend:

* SGE: what the queue can run at once, from ``qstat -g c`` (the queue's slots, minus those of
  disabled or broken queue instances) and the parallel environment's slots (``qconf -sp``),
  divided by the slots one job takes (``-pe NAME N``: N; no PE: 1), times ``FACTOR``;
* local: the machine's cores.

The user sets ``max_jobs`` like any other setting (profile, config file,
``NAIST_DASK_TUI_MAX_JOBS``, ``--max-jobs``). A request above what the queue runs at once is
allowed but asked about first (the rest pends); that question belongs to the front ends, which
read :meth:`Limits.pending`.

Nothing here imports textual.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Callable
from dataclasses import dataclass

from naist_dask_tui.core import sge
from naist_dask_tui.core.settings import SettingsError

FACTOR = 2  # max_jobs = FACTOR x the jobs the queue runs at once
FALLBACK_MAX_JOBS = 20  # when the queue's size cannot be read
COMMAND_TIMEOUT = 10.0


class JobLimitError(SettingsError):
    """A request above ``max_jobs``: one line naming ``max_jobs``."""


@dataclass(frozen=True)
class Capacity:
    """How many jobs the backend runs at once (``runnable``; None: not known) and why."""

    runnable: int | None
    detail: str  # "queue grid_short.q (8 slots, 1 per job)"
    error: str | None = None  # why it could not be read
    # jobs the queue holds when every instance is up (the base of the max_jobs default, which
    # must not drop to nothing while a node is briefly unknown or disabled)
    size: int | None = None


@dataclass(frozen=True)
class Limits:
    max_jobs: int
    origin: str  # where max_jobs came from, in words
    capacity: Capacity
    backend: str = "sge"

    @property
    def runnable(self) -> int | None:
        return self.capacity.runnable

    def check(self, jobs: int, what: str = "jobs") -> None:
        """Raise :class:`JobLimitError` when ``jobs`` is above ``max_jobs``."""
        if jobs > self.max_jobs:
            unit = "jobs" if self.backend == "sge" else "workers"
            raise JobLimitError(
                "max_jobs",
                f"{jobs} {unit} asked for ({what}) is above max_jobs {self.max_jobs} "
                f"({self.origin}); ask for {self.max_jobs} or fewer, or raise the ceiling "
                "with --max-jobs N, NAIST_DASK_TUI_MAX_JOBS or max_jobs in the config file",
            )

    def pending(self, jobs: int) -> int:
        """How many of ``jobs`` cannot run at once and would pend (0 when unknown, and on a
        local cluster, where nothing pends)."""
        if self.runnable is None or self.backend != "sge":
            return 0
        return max(0, jobs - self.runnable)

    def to_wire(self) -> dict:
        """Plain values for the keeper's state (screens check requests before sending them)."""
        c = self.capacity
        return {"max_jobs": self.max_jobs, "origin": self.origin, "backend": self.backend,
                "capacity": [c.runnable, c.detail, c.error, c.size]}

    @classmethod
    def from_wire(cls, data: dict | None) -> Limits | None:
        if not data:
            return None
        return cls(int(data["max_jobs"]), str(data["origin"]), Capacity(*data["capacity"]),
                   str(data.get("backend", "sge")))

    def pend_sentence(self, jobs: int) -> str:
        """Why some of ``jobs`` would pend, in one sentence ("" when none would)."""
        waiting = self.pending(jobs)
        if not waiting:
            return ""
        return (
            f"{jobs} jobs asked for, but {self.capacity.detail} runs at most {self.runnable} "
            f"at once: {waiting} would pend in the queue"
        )


# --------------------------------------------------------------------------------------------
# Reading the queue


def _run(command: list[str]) -> str:
    return sge.output(command, timeout=COMMAND_TIMEOUT)


def parse_qstat_gc(text: str) -> dict[str, tuple[int, int]]:
    """``qstat -g c`` -> {cluster queue: (TOTAL slots, slots that can run jobs now)}; the second
    leaves out the slots of disabled, suspended, unknown or erroneous instances (``cdsuE``)."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    header = next((ln.split() for ln in lines if ln.startswith("CLUSTER")), None)
    if header is None:
        return {}
    # "CLUSTER QUEUE" is two words in the header and one in the rows
    cols = ["QUEUE"] + header[2:]
    try:
        i_total = cols.index("TOTAL")
    except ValueError:
        return {}
    i_broken = cols.index("cdsuE") if "cdsuE" in cols else None
    slots: dict[str, tuple[int, int]] = {}
    for ln in lines:
        if ln.startswith(("CLUSTER", "-")):
            continue
        parts = ln.split()
        if len(parts) <= i_total:
            continue
        try:
            total = int(parts[i_total])
            broken = int(parts[i_broken]) if i_broken is not None and len(parts) > i_broken else 0
        except ValueError:
            continue
        slots[parts[0]] = (total, max(0, total - broken))
    return slots


def parse_pe_slots(text: str) -> int | None:
    for ln in text.splitlines():
        parts = ln.split()
        if len(parts) >= 2 and parts[0] == "slots" and parts[1].isdigit():
            return int(parts[1])
    return None


def sge_capacity(settings, run: Callable[[list[str]], str] = _run) -> Capacity:
    """How many of these settings' jobs the queue runs at once."""
    pes = settings.pe_directives()
    per_job = pes[0][1] if pes else 1
    per_job = max(per_job, 1)
    queue = settings.queue
    try:
        slots = parse_qstat_gc(run(["qstat", "-g", "c"]))
    except OSError as exc:
        return Capacity(None, f"queue {queue or '(any)'}", error=str(exc))
    if queue:
        wanted = [q.split("@")[0].strip() for q in queue.split(",") if q.strip()]
        names = [n for n in slots if any(fnmatch.fnmatchcase(n, w) for w in wanted)]
        label = f"queue {queue}"
    else:
        names = list(slots)
        label = "the queues (" + ", ".join(names) + ")" if names else "the queues"
    if not names:
        return Capacity(None, label, error=f"`qstat -g c` lists no queue {queue or ''}".strip())
    total = sum(slots[n][0] for n in names)
    usable = sum(slots[n][1] for n in names)
    detail = f"{label} ({usable} slots"
    if usable < total:
        detail += f" up of {total}"
    if pes:
        name = pes[0][0]
        try:
            pe_slots = parse_pe_slots(run(["qconf", "-sp", name]))
        except OSError:
            pe_slots = None
        if pe_slots is not None and pe_slots < total:
            total, usable = pe_slots, min(usable, pe_slots)
            detail += f", parallel environment {name} {pe_slots}"
    detail += f", {per_job} per job)"
    return Capacity(usable // per_job, detail, size=total // per_job)


def local_capacity(cpu_count: int | None = None) -> Capacity:
    cores = cpu_count or os.cpu_count() or 1
    return Capacity(cores, f"this machine ({cores} cores)")


def _total_memory() -> int:
    import psutil

    return int(psutil.virtual_memory().total)


def local_view(settings, cpu_count: int | None = None, total_memory: int | None = None):
    """(settings sized for a LocalCluster here, their Limits): what ``--backend local`` runs.

    The workers' memory limits add up to no more than the machine has: without ``--memory``
    each worker gets 80% of the RAM divided by ``max_jobs``; with it, the default ``max_jobs``
    is what fits, and an explicit ``max_jobs`` that does not fit is refused."""
    from dask.utils import format_bytes

    cores = cpu_count or os.cpu_count() or 1
    total = total_memory or _total_memory()
    capacity = local_capacity(cores)
    fmt = lambda n: format_bytes(int(n)).replace(" ", "")  # noqa: E731
    if settings.explicit("memory"):
        per = settings.memory_bytes
        fits = max(1, total // per)
        if settings.max_jobs is not None and settings.max_jobs * per > total:
            raise JobLimitError(
                "max_jobs",
                f"{settings.max_jobs} local workers x memory {settings.memory} is more than this "
                f"machine's {fmt(total)}; use max_jobs {fits} or less, or a smaller --memory",
                settings.origin_of("max_jobs"),
            )
        if settings.max_jobs is None and fits < cores:
            capacity = Capacity(fits, f"this machine ({fmt(total)} for workers of {settings.memory})")
    lim = resolve(settings, "local", capacity)
    return settings.resolved_for_local(cores, total, max_workers=lim.max_jobs), lim


def resolve(settings, backend: str, capacity: Capacity | None = None) -> Limits:
    """The ``max_jobs`` in force for ``backend`` ("sge" or "local")."""
    if capacity is None:
        capacity = sge_capacity(settings) if backend == "sge" else local_capacity()
    if settings.max_jobs is not None:
        return Limits(settings.max_jobs, f"from {settings.origin_of('max_jobs')}", capacity, backend)
    if backend != "sge":
        return Limits(max(1, capacity.runnable or 1), f"what {capacity.detail} holds", capacity, backend)
    if capacity.runnable is None:
        return Limits(
            FALLBACK_MAX_JOBS,
            f"a fallback: the queue's size could not be read ({capacity.error})",
            capacity,
            backend,
        )
    size = capacity.size if capacity.size is not None else capacity.runnable
    return Limits(
        max(1, FACTOR * size),
        f"{FACTOR} x the {size} jobs {capacity.detail} runs at once",
        capacity,
        backend,
    )
