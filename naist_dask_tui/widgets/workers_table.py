"""The Workers table: one line per dask worker, keyed by address."""

from __future__ import annotations

from collections.abc import Iterable

from naist_dask_tui.core.snapshot import WorkerRow
from naist_dask_tui.formatting import bar, fmt_bytes, natural_key
from naist_dask_tui.widgets.row_table import Column, RowTable

DEFAULT_SPILL_THRESHOLD = 0.7  # distributed.worker.memory.spill


def _memory_cell(w: WorkerRow) -> str:
    if not w.memory_limit:
        return bar(0, 7) + "   -"
    return f"{bar(w.memory_fraction, 7)}{w.memory_fraction * 100:4.0f}%"


def _used_limit(w: WorkerRow) -> str:
    return f"{fmt_bytes(w.memory)}/{fmt_bytes(w.memory_limit) if w.memory_limit else '-'}"


def _short_status(status: str) -> str:
    return {"closing_gracefully": "retiring"}.get(status, status)


WORKER_COLUMNS: list[Column[WorkerRow]] = [
    Column("name", "Name", 14, lambda w: w.name, lambda w: natural_key(w.name), flex=True, max_width=28),
    Column("host", "Host", 12, lambda w: w.host, lambda w: w.host, priority=5, flex=True, max_width=24),
    Column("job", "Job", 8, lambda w: w.job_id or "-", lambda w: natural_key(w.job_id or ""), priority=2),
    Column("status", "Status", 8, lambda w: _short_status(w.status), lambda w: w.status, priority=4),
    Column("threads", "Thr", 3, lambda w: str(w.nthreads), lambda w: w.nthreads, align="right", priority=3),
    Column("cpu", "CPU", 5, lambda w: f"{w.cpu:.0f}%", lambda w: w.cpu, align="right"),
    Column(
        "memory", "Memory", 12, _memory_cell, lambda w: w.memory_fraction,
        style=lambda w: "workers--bar",
    ),
    Column("used", "Used/Limit", 11, _used_limit, lambda w: w.memory, align="right", priority=1),
    Column("managed", "Mngd", 6, lambda w: fmt_bytes(w.managed), lambda w: w.managed, align="right", priority=6),
    Column("unmanaged", "Unmgd", 6, lambda w: fmt_bytes(w.unmanaged), lambda w: w.unmanaged, align="right", priority=6),
    Column(
        "spilled", "Spill", 6, lambda w: fmt_bytes(w.spilled) if w.spilled else "-",
        lambda w: w.spilled, align="right", priority=1,
        style=lambda w: "workers--spilled" if w.spilled else None,
    ),
    Column("executing", "Exec", 4, lambda w: str(w.executing), lambda w: w.executing, align="right", priority=2),
    Column("ready", "Rdy", 4, lambda w: str(w.ready), lambda w: w.ready, align="right", priority=7),
    Column("in_memory", "InMem", 5, lambda w: str(w.in_memory), lambda w: w.in_memory, align="right", priority=7),
]


def _search_text(w: WorkerRow) -> list[tuple[str, str]]:
    """Tiers for the filter: a worker's name or job first, then its host and address, then
    its status (``1`` finds job 1 and worker 1, not every worker on 127.0.0.1)."""
    return [
        ("name, job", f"{w.name} {w.job_id or ''}"),
        ("host, address", f"{w.host} {w.address}"),
        ("status", w.status),
    ]


class WorkersTable(RowTable[WorkerRow]):
    """Workers, coloured by state: paused, retiring, memory over the spill threshold."""

    COMPONENT_CLASSES = RowTable.COMPONENT_CLASSES | {
        "workers--paused",
        "workers--retiring",
        "workers--over-spill",
        "workers--bar",
        "workers--spilled",
    }

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(
            WORKER_COLUMNS,
            key_of=lambda w: w.address,
            search_text=_search_text,
            row_class=self._state_class,
            sort_column="name",
            empty_text="no workers yet (jobs may still be pending: see the Jobs panel)",
            id=id,
            classes=classes,
        )
        self._spill_threshold = DEFAULT_SPILL_THRESHOLD
        self._retiring: frozenset[str] = frozenset()

    def _state_class(self, w: WorkerRow) -> str | None:
        if w.status in ("closing_gracefully", "closing", "closed") or w.address in self._retiring:
            return "workers--retiring"
        if w.status == "paused":
            return "workers--paused"
        if w.memory_limit and w.memory_fraction >= self._spill_threshold:
            return "workers--over-spill"
        return None

    def update_workers(
        self,
        workers: Iterable[WorkerRow],
        *,
        spill_threshold: float | None = None,
        retiring: frozenset[str] = frozenset(),
    ) -> bool:
        threshold = spill_threshold or DEFAULT_SPILL_THRESHOLD
        if threshold != self._spill_threshold or retiring != self._retiring:
            self._spill_threshold = threshold
            self._retiring = retiring
            self._strips.clear()
            self.refresh()
        return self.set_rows(workers)
