"""The Memory panel: cluster managed / unmanaged / spilled against the limit, and its history."""

from __future__ import annotations

from rich.segment import Segment
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.strip import Strip
from textual.widget import Widget
from textual.widgets import Static

from naist_dask_tui.core.snapshot import ClusterSnapshot
from naist_dask_tui.formatting import fmt_bytes
from naist_dask_tui.history import ClusterTotals, MemoryHistory
from naist_dask_tui.widgets.spark import Spark


class StackBar(Widget):
    """One line split into managed / unmanaged / free parts of the memory limit."""

    COMPONENT_CLASSES = {"stackbar--managed", "stackbar--unmanaged", "stackbar--free"}

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.parts: tuple[int, int, int] = (0, 0, 0)  # managed, unmanaged, limit

    def set_parts(self, managed: int, unmanaged: int, limit: int) -> None:
        if (managed, unmanaged, limit) != self.parts:
            self.parts = (managed, unmanaged, limit)
            self.refresh()

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        managed, unmanaged, limit = self.parts
        total = max(limit, managed + unmanaged, 1)
        m = int(width * managed / total)
        u = int(width * (managed + unmanaged) / total) - m
        f = max(0, width - m - u)
        style = self.get_component_rich_style
        return Strip(
            [
                Segment("█" * m, style("stackbar--managed")),
                Segment("▓" * u, style("stackbar--unmanaged")),
                Segment("░" * f, style("stackbar--free")),
            ],
            width,
        )


class MemoryPanel(Vertical):
    def compose(self) -> ComposeResult:
        yield Static(id="memory-summary")
        yield StackBar(id="memory-bar")
        yield Static("used memory, last minutes:", id="memory-spark-label", classes="dim")
        yield Spark(id="memory-spark")

    def show(
        self, cluster: ClusterSnapshot | None, history: MemoryHistory, totals: ClusterTotals | None = None
    ) -> None:
        if cluster is None:
            return
        cluster = totals or ClusterTotals.of(cluster)  # type: ignore[assignment]
        limit = cluster.memory_limit
        used = cluster.managed + cluster.unmanaged
        pct = f"{100 * used / limit:.0f}% of limit" if limit else "no limit"
        text = (
            f"[$success]managed[/]   {fmt_bytes(cluster.managed):>7}   "
            f"[$warning]unmanaged[/] {fmt_bytes(cluster.unmanaged):>7}\n"
            f"[$error]spilled[/]   {fmt_bytes(cluster.spilled):>7}   "
            f"limit     {fmt_bytes(limit):>7}   ({pct})"
        )
        summary = self.query_one("#memory-summary", Static)
        if summary.content != text:  # (Static.content: what it was last given)
            summary.update(text)
        self.query_one(StackBar).set_parts(cluster.managed, cluster.unmanaged, limit)
        spark = self.query_one("#memory-spark", Spark)
        spark.maximum = float(limit) if limit else None
        spark.data = history.used
