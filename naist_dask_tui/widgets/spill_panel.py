"""The Spill panel: who spills to disk, how much, how fast, where, and what to do about it."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.markup import escape
from textual.widgets import Static

from naist_dask_tui.core.snapshot import ConsoleSnapshot, WorkerRow
from naist_dask_tui.formatting import fmt_bytes, fmt_rate, natural_key
from naist_dask_tui.history import ClusterTotals, MemoryHistory
from naist_dask_tui.widgets.row_table import Column, RowTable
from naist_dask_tui.widgets.spark import Spark

HEAVY_RATE = 10 * 2**20  # bytes/s written to disk, averaged over 30 s
HEAVY_FRACTION = 0.2  # of the cluster's memory limit spilled


SPILL_COLUMNS: list[Column[WorkerRow]] = [
    Column("name", "Worker", 14, lambda w: w.name, lambda w: natural_key(w.name), flex=True, max_width=28),
    Column("host", "Host", 10, lambda w: w.host, lambda w: w.host, priority=2),
    Column("spilled", "Spilled", 7, lambda w: fmt_bytes(w.spilled), lambda w: w.spilled, align="right"),
    Column("managed", "In RAM", 7, lambda w: fmt_bytes(w.managed), lambda w: w.managed, align="right", priority=1),
    Column(
        "fraction", "Mem%", 5, lambda w: f"{w.memory_fraction * 100:.0f}%" if w.memory_limit else "-",
        lambda w: w.memory_fraction, align="right", priority=1,
    ),
]


class SpillTable(RowTable[WorkerRow]):
    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(
            SPILL_COLUMNS,
            key_of=lambda w: w.address,
            search_text=lambda w: f"{w.name} {w.host}",
            sort_column="spilled",
            sort_reverse=True,
            empty_text="no worker has spilled to disk",
            id=id,
        )


def heavy_spill_advice(spilled: int, limit: int, rate: float, directory: str | None) -> str | None:
    """The warning shown when spilling is heavy, or None."""
    heavy = rate >= HEAVY_RATE or (limit and spilled >= HEAVY_FRACTION * limit)
    if not heavy:
        return None
    where = f" to {directory}" if directory else ""
    return (
        f"Heavy spilling{where} ({fmt_bytes(spilled)} on disk, {fmt_rate(rate)}): disk is ~100x "
        "slower than RAM. Give each job more memory (a bigger memory / -l mem request), add jobs "
        "(+ or s), or persist fewer/smaller chunks; keep local_directory on a fast local disk, not NFS."
    )


class SpillPanel(Vertical):
    def compose(self) -> ComposeResult:
        yield Static(id="spill-summary")
        yield Static(id="spill-warning")
        yield Static("spill rate, last minutes:", classes="dim")
        yield Spark(id="spill-spark")
        yield SpillTable(id="spill-table")

    def show(
        self, snapshot: ConsoleSnapshot, history: MemoryHistory, totals: ClusterTotals | None = None
    ) -> None:
        if snapshot.cluster is None:
            return
        spilling = [w for w in snapshot.cluster.workers if w.spilled]
        cluster = totals or ClusterTotals.of(snapshot.cluster)
        rate = history.recent_spill_rate()
        directory = snapshot.local_directory
        text = (
            f"on disk [b]{fmt_bytes(cluster.spilled)}[/b] from {len(spilling)} of "
            f"{cluster.n_workers} workers · rate {fmt_rate(rate)}\n"
            f"local_directory: {escape(directory or '(worker default)')}"
        )
        summary = self.query_one("#spill-summary", Static)
        if summary.content != text:  # (Static.content: what it was last given)
            summary.update(text)
        advice = heavy_spill_advice(cluster.spilled, cluster.memory_limit, rate, directory)
        warning = self.query_one("#spill-warning", Static)
        warning.display = advice is not None
        if advice and warning.content != escape(advice):
            warning.update(escape(advice))
        self.query_one("#spill-spark", Spark).data = history.rates
        self.query_one(SpillTable).set_rows(spilling)
