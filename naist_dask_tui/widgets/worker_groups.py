"""The Workers panel at scale: one row per SGE job or per host, and the outliers above it.

``g`` cycles the panel's view: every worker (the default), grouped by job, grouped by host.
It is offered from ``WORKERS_VIEW_MIN`` workers on (MainScreen.check_action); below that a
row per worker is readable.
"""

from __future__ import annotations

from collections.abc import Sequence

from textual.markup import escape
from textual.widget import Widget
from textual.widgets import Static

from naist_dask_tui.core.aggregate import GroupRow, Outliers, group_workers, outliers
from naist_dask_tui.core.snapshot import WorkerRow
from naist_dask_tui.formatting import fmt_bytes, natural_key
from naist_dask_tui.widgets.row_table import Column, RowTable

VIEWS = ("workers", "job", "host")
VIEW_TITLES = {"workers": "one row per worker", "job": "grouped by SGE job", "host": "grouped by host"}


def _pcts(s, scale: float = 100.0) -> str:
    return f"{s.low * scale:.0f}/{s.mid * scale:.0f}/{s.high * scale:.0f}"


GROUP_COLUMNS: list[Column[GroupRow]] = [
    Column("key", "Group", 10, lambda g: g.key, lambda g: natural_key(g.key), flex=True, max_width=24),
    Column("workers", "Wkrs", 4, lambda g: str(g.workers), lambda g: g.workers, align="right"),
    Column("memory", "Mem Σ", 6, lambda g: fmt_bytes(g.memory.total), lambda g: g.memory.total, align="right"),
    Column("fraction", "Mem% min/med/max", 16, lambda g: _pcts(g.fraction), lambda g: g.fraction.high,
           align="right", style=lambda g: "groups--hot" if g.fraction.high >= 0.8 else None),
    Column("cpu", "CPU Σ", 6, lambda g: f"{g.cpu.total:.0f}%", lambda g: g.cpu.total, align="right", priority=2),
    Column("cpu_spread", "CPU% min/med/max", 16, lambda g: _pcts(g.cpu, 1.0), lambda g: g.cpu.high,
           align="right", priority=1),
    Column("tasks", "Tasks Σ", 7, lambda g: f"{g.tasks.total:.0f}", lambda g: g.tasks.total, align="right", priority=3),
    Column("tasks_spread", "min/med/max", 11, lambda g: _pcts(g.tasks, 1.0), lambda g: g.tasks.high,
           align="right", priority=2),
    Column("spilled", "Spill", 6, lambda g: fmt_bytes(g.spilled) if g.spilled else "-", lambda g: g.spilled,
           align="right", priority=1, style=lambda g: "groups--spilled" if g.spilled else None),
]


class GroupsTable(RowTable[GroupRow]):
    COMPONENT_CLASSES = RowTable.COMPONENT_CLASSES | {"groups--hot", "groups--spilled"}

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(
            GROUP_COLUMNS,
            key_of=lambda g: g.key,
            search_text=lambda g: g.key,
            sort_column="key",
            empty_text="no workers yet",
            id=id,
        )


def _names(rows: Sequence[WorkerRow], what) -> str:
    return ", ".join(f"{escape(w.name)} {what(w)}" for w in rows)


def outlier_text(o: Outliers, n: int) -> str:
    """Three lines: highest memory, spilling, stragglers (each says 'none' when there are none)."""
    def mem(w: WorkerRow) -> str:
        if w.memory_limit:
            return f"{fmt_bytes(w.memory)} ({w.memory_fraction * 100:.0f}%)"
        return fmt_bytes(w.memory)

    high = _names(o.highest_memory, mem) or "-"
    if o.spilling_count:
        spill = f"[$warning]{o.spilling_count} spilling[/]: " + _names(o.spilling, lambda w: fmt_bytes(w.spilled))
    else:
        spill = "none spilling"
    if o.straggler_count:
        strag = (f"[$error]{o.straggler_count} straggler(s)[/] executing while {o.idle} of {n} are idle: "
                 + _names(o.stragglers, lambda w: f"({w.executing} tasks)"))
    else:
        strag = "no stragglers"
    return f"highest memory: {high}\n{spill}\n{strag}"


class WorkersView:
    """Which view the Workers panel shows, and its data; owned by the main screen."""

    def __init__(self, panel: Widget, table: Widget, groups: GroupsTable, outliers_box: Static) -> None:
        self.panel, self.table, self.groups, self.box = panel, table, groups, outliers_box
        self.view = "workers"
        self._workers: tuple[WorkerRow, ...] = ()
        self._shown: tuple | None = None
        self.apply()

    @property
    def grouped(self) -> bool:
        return self.view != "workers"

    def cycle(self) -> str:
        self.view = VIEWS[(VIEWS.index(self.view) + 1) % len(VIEWS)]
        self._shown = None
        self.apply()
        self.update(self._workers)
        (self.groups if self.grouped else self.table).focus()
        return VIEW_TITLES[self.view]

    def selected_job(self) -> tuple[str, str] | None:
        """(job id, label) of the selected group when grouped by job (what ``r`` retires)."""
        row = self.groups.cursor_row
        if self.view != "job" or row is None or row.key == "-":
            return None
        return (row.key, f"job {row.key} ({row.workers} worker{'s' if row.workers != 1 else ''})")

    def show_workers(self) -> None:
        if self.grouped:
            self.view = "workers"
            self.apply()
            self.table.focus()

    def subtitle(self, n: int, offered_from: int) -> str:
        """What the panel's subtitle adds: the view, and the key when it is offered."""
        if self.grouped:
            return f", {VIEW_TITLES[self.view]} (g: next view)"
        return " (g: group by job / host)" if n >= offered_from else ""

    def apply(self) -> None:
        self.table.display = not self.grouped
        self.groups.display = self.grouped
        self.box.display = self.grouped

    def update(self, workers: tuple[WorkerRow, ...]) -> None:
        """Keep the workers; when grouped, rebuild the groups and the outliers (only when a
        worker changed: the snapshot reuses unchanged rows, so the tuple compares cheaply)."""
        self._workers = workers
        if not self.grouped:
            return
        key = (self.view, workers)
        if self._shown is not None and self._shown[0] == self.view and self._shown[1] is workers:
            return
        self._shown = key
        self.groups.set_rows(group_workers(workers, self.view))
        text = outlier_text(outliers(workers), len(workers))
        if self.box.content != text:  # (Static.content: what it was last given)
            self.box.update(text)
