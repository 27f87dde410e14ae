"""Progress of the running computation: one row per task group, then the overall bar.

Renders a ``ProgressSnapshot`` (built off the UI thread by the core) as one Rich table; the
snapshot is a reactive, so an unchanged snapshot costs no repaint.
"""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.style import Style
from rich.table import Table
from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from naist_dask_tui.core.progress import GroupProgress, ProgressSnapshot

NAME_WIDTH = 24
MAX_GROUPS = 12  # the busiest groups are shown when a graph has more
# dask's internal task groups, shown by what they do
_INTERNAL_NAMES = (
    ("finalize-hlgfinalizecompute", "finalize (gather)"),
    ("finalize-", "finalize"),
)


def display_name(name: str) -> str:
    """A task group's name as a person reads it (dask's internal names made short)."""
    for prefix, shown in _INTERNAL_NAMES:
        if name.startswith(prefix):
            return shown
    return name


def _fmt_int(n: int) -> str:
    return f"{n:,}"


def _fmt_seconds(s: float) -> str:
    if s < 60:
        return f"{s:.1f} s"
    m, sec = divmod(int(s), 60)
    if m < 60:
        return f"{m}m{sec:02d}s"
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m"


class ProgressView(Widget):
    """Per task group bars: done (green), erred (red), processing (yellow), the rest dim."""

    DEFAULT_CSS = """
    ProgressView { height: auto; max-height: 16; }
    ProgressView > .progress--done { color: $success; }
    ProgressView > .progress--erred { color: $error; }
    ProgressView > .progress--processing { color: $warning; }
    ProgressView > .progress--rest { color: $text-muted; }
    ProgressView > .progress--name { color: $text; }
    ProgressView > .progress--muted { color: $text-muted; }
    """
    COMPONENT_CLASSES = {
        "progress--done",
        "progress--erred",
        "progress--processing",
        "progress--rest",
        "progress--name",
        "progress--muted",
    }

    snapshot: reactive[ProgressSnapshot | None] = reactive(None, layout=True)
    status: reactive[str] = reactive("", layout=True)  # shown when there is no snapshot
    # how the run ended, for the overall row: "done", "failed", "cancelled" ("" while running)
    outcome: reactive[str] = reactive("")
    # at most 3 lines (the overall bar with its rate, and the 2 groups in flight): the compute
    # pane sets it on a small terminal so that the output stays in sight
    compact: reactive[bool] = reactive(False, layout=True)

    def update_snapshot(self, snapshot: ProgressSnapshot | None) -> None:
        self.snapshot = snapshot

    def _style(self, name: str) -> Style:
        return self.get_component_rich_style(f"progress--{name}", partial=True)

    def _bar(self, width: int, total: int, done: int, erred: int, processing: int) -> Text:
        width = max(width, 4)
        bar = Text()
        if total <= 0:
            bar.append("─" * width, self._style("rest"))
            return bar
        cells = [done, erred, processing]
        widths = [int(width * c / total) for c in cells]
        # a non-zero count gets at least one cell, so errors are never invisible
        widths = [max(w, 1) if c else 0 for w, c in zip(widths, cells, strict=True)]
        while sum(widths) > width:
            i = widths.index(max(widths))
            widths[i] -= 1
        if done == total:
            widths[0] = width - widths[1] - widths[2]
        for w, name in zip(widths, ("done", "erred", "processing"), strict=True):
            if w:
                bar.append("━" * w, self._style(name))
        rest = width - sum(widths)
        if rest:
            bar.append("─" * rest, self._style("rest"))
        return bar

    def _group_row(self, g: GroupProgress, bar_width: int) -> list[RenderableType]:
        name = display_name(g.name)
        name = name if len(name) <= NAME_WIDTH else name[: NAME_WIDTH - 1] + "…"
        counts = Text(f"{_fmt_int(g.done)}/{_fmt_int(g.total)}", no_wrap=True)
        extra = Text(no_wrap=True)
        if g.erred:
            extra.append(f"✗ {_fmt_int(g.erred)} erred ", self._style("erred"))
        if g.processing:
            extra.append(f"▶ {_fmt_int(g.processing)} ", self._style("processing"))
        waiting = g.queued + g.waiting + g.no_worker
        if waiting:
            extra.append(f"… {_fmt_int(waiting)}", self._style("muted"))
        return [
            Text(name, self._style("name"), no_wrap=True, overflow="ellipsis"),
            self._bar(bar_width, g.total, g.done, g.erred, g.processing),
            counts,
            extra,
        ]

    def render(self) -> RenderableType:
        snap = self.snapshot
        if snap is None:
            return Text(self.status or "No computation has run yet.", self._style("muted"))
        width = self.size.width or 80
        counts_w = max(
            [len(f"{_fmt_int(g.done)}/{_fmt_int(g.total)}") for g in snap.groups]
            + [len(f"{_fmt_int(snap.done)}/{_fmt_int(snap.total)}")]
        )
        extra_w = 18
        bar_width = max(8, min(60, width - NAME_WIDTH - counts_w - extra_w - 3))
        table = Table.grid(padding=(0, 1))
        table.add_column(width=NAME_WIDTH, no_wrap=True)
        table.add_column(width=bar_width, no_wrap=True)
        table.add_column(width=counts_w, justify="right", no_wrap=True)
        extra_max = max(extra_w, width - NAME_WIDTH - bar_width - counts_w - 3)
        table.add_column(no_wrap=True, overflow="ellipsis", max_width=extra_max)
        groups = list(snap.groups)
        limit = 2 if self.compact else MAX_GROUPS
        if len(groups) > limit:
            # the groups still in flight first, then the biggest
            groups.sort(key=lambda g: (g.done == g.total, -g.total))
            hidden = len(groups) - limit
            groups = groups[:limit]
        else:
            hidden = 0
        for g in groups:
            table.add_row(*self._group_row(g, bar_width))
        if hidden and not self.compact:
            table.add_row(Text(f"(+{hidden} groups)", self._style("muted")), "", "", "")
        pct = f"{100 * snap.fraction:.0f}%"
        if not snap.finished:
            state = "running"
        elif self.outcome:
            state = self.outcome
        else:
            state = "failed" if snap.erred else "done"
        if self.compact:
            # the tail's figures go on the overall row: 3 lines in all
            pct = f"{pct} {_fmt_seconds(snap.elapsed)} {snap.rate:,.0f}/s"
            if snap.erred:
                pct += f" ✗{_fmt_int(snap.erred)}"
        table.add_row(
            Text(f"overall ({state})", Style(bold=True), no_wrap=True),
            self._bar(bar_width, snap.total, snap.done, snap.erred, snap.processing),
            Text(f"{_fmt_int(snap.done)}/{_fmt_int(snap.total)}", Style(bold=True), no_wrap=True),
            Text(pct, Style(bold=True), no_wrap=True, overflow="ellipsis"),
        )
        if self.compact:
            return table
        tail = Text(no_wrap=True, overflow="ellipsis")
        tail.append(f"elapsed {_fmt_seconds(snap.elapsed)} · {snap.rate:,.1f} tasks/s")
        if snap.processing:
            tail.append(f" · {_fmt_int(snap.processing)} processing", self._style("processing"))
        if not snap.finished and snap.queued:
            tail.append(f" · {_fmt_int(snap.queued)} queued", self._style("muted"))
        if not snap.finished and snap.waiting:
            tail.append(f" · {_fmt_int(snap.waiting)} waiting", self._style("muted"))
        if snap.erred:
            tail.append(f" · ✗ {_fmt_int(snap.erred)} erred", self._style("erred"))
            if snap.first_erred:
                tail.append(f" (first in {snap.first_erred})", self._style("erred"))
        return Group(table, tail)
