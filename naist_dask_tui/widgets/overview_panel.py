"""The Overview panel: the whole cluster over time, four graphs from the app's one history.

Memory (managed / unmanaged / spilled stacked, the top at the workers' total limit), CPU (cores
busy, the top at the worker threads), tasks (finished per second, processing, queued) and
workers with the SGE jobs running and pending. ``w`` cycles the window: 5 min, 1 h, since the
screen started (up to 24 h). A screen that attaches later starts with an empty history.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Grid, Vertical
from textual.widgets import Static

from naist_dask_tui.formatting import fmt_bytes
from naist_dask_tui.history import WINDOWS, MemoryHistory, Window
from naist_dask_tui.widgets.timeplot import TimePlot


def fmt_count(n: float) -> str:
    """``1234 -> '1.2k'``, ``150000 -> '150k'``: short counts for legends and labels."""
    n = float(n)
    for unit, size in (("M", 1e6), ("k", 1e3)):
        if abs(n) >= size:
            v = n / size
            return f"{v:.1f}{unit}" if v < 10 else f"{v:.0f}{unit}"
    return f"{n:.0f}" if n >= 10 or n == int(n) else f"{n:.1f}"


def _peak(window: Window, *names: str) -> float:
    """The largest value (of the sum of ``names``, sample by sample) in the window."""
    columns = [window.values[n] for n in names]
    if not len(columns[0]):
        return 0.0
    if len(columns) == 1:
        return max(columns[0])
    return max(map(sum, zip(*columns, strict=False)))


def _now(window: Window, name: str) -> float:
    value = window.last(name)
    return 0.0 if value is None else value


class OverviewPanel(Vertical):
    """Four :class:`TimePlot` s fed by :meth:`show`; ``window_index`` picks the time window."""

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.window_index = 0

    def compose(self) -> ComposeResult:
        yield Static(id="overview-header", classes="dim")
        with Grid(id="overview-grid"):
            yield TimePlot("stack", id="plot-memory")
            yield TimePlot("stack", id="plot-cpu")
            yield TimePlot("lines", id="plot-tasks")
            yield TimePlot("lines", id="plot-workers")

    @property
    def window_name(self) -> str:
        return WINDOWS[self.window_index][0]

    def cycle_window(self) -> str:
        self.window_index = (self.window_index + 1) % len(WINDOWS)
        return self.window_name

    def show(self, history: MemoryHistory) -> None:
        name, seconds = WINDOWS[self.window_index]
        others = " / ".join(n for n, _ in WINDOWS if n != name)
        header = self.query_one("#overview-header", Static)
        text = f"window: {name} (w: {others})"
        if header.content != text:  # (Static.content: what it was last given)
            header.update(text)
        w = history.window(seconds)
        version = (history.version, self.window_index)
        v = w.values

        managed, unmanaged, spilled = (_now(w, k) for k in ("managed", "unmanaged", "spilled"))
        # the top is the workers' total memory limit (or the stack, when it goes above)
        top = max(_peak(w, "limit"), _peak(w, "managed", "unmanaged", "spilled"), 1.0)
        self.query_one("#plot-memory", TimePlot).show(
            [("Mem ", None), (f"mngd {fmt_bytes(managed)} ", 0), (f"unm {fmt_bytes(unmanaged)} ", 1),
             (f"spill {fmt_bytes(spilled)}", 2)],
            w.times, [v["managed"], v["unmanaged"], v["spilled"]], w.start, w.end, [top],
            label=fmt_bytes, version=version,
        )

        cores, threads = _now(w, "cpu"), _now(w, "threads")
        pct = f"{100 * cores / threads:.0f}% of " if threads else ""
        self.query_one("#plot-cpu", TimePlot).show(
            [("CPU ", None), (f"{fmt_count(cores)} cores busy", 0), (f" {pct}{fmt_count(threads)} threads", None)],
            w.times, [v["cpu"]], w.start, w.end, [max(_peak(w, "threads"), _peak(w, "cpu"), 1.0)],
            label=fmt_count, version=version,
        )

        rate_top = max(_peak(w, "rate"), 1.0)
        self.query_one("#plot-tasks", TimePlot).show(
            [("Tasks ", None), (f"done {fmt_count(_now(w, 'rate'))}/s ", 0),
             (f"proc {fmt_count(_now(w, 'processing'))} ", 1), (f"queued {fmt_count(_now(w, 'queued'))}", 2)],
            w.times, [v["rate"], v["processing"], v["queued"]], w.start, w.end,
            # processing and queued are each drawn to their own peak (the top label is tasks/s)
            [rate_top, max(_peak(w, "processing"), 1.0), max(_peak(w, "queued"), 1.0)],
            label=lambda x: fmt_count(x) + "/s", version=version,
        )

        count_top = max(_peak(w, "workers"), _peak(w, "jobs_running"), _peak(w, "jobs_pending"), 1.0)
        self.query_one("#plot-workers", TimePlot).show(
            [("Workers ", None), (f"{fmt_count(_now(w, 'workers'))} ", 0),
             (f"jobs run {fmt_count(_now(w, 'jobs_running'))} ", 1),
             (f"pend {fmt_count(_now(w, 'jobs_pending'))}", 2)],
            w.times, [v["workers"], v["jobs_running"], v["jobs_pending"]], w.start, w.end,
            [count_top] * 3, label=fmt_count, version=version,
        )
