"""One graph over time, drawn in the terminal: stacked areas in eighth blocks, or lines in
braille dots. Cheap to redraw at 1 Hz.

Why our own and not textual-plotext or textual-plot: measured on 2026-11-30 (``python -m
bench.bench_overview --compare``, in a scratch venv that has both), four graphs of 300 samples
(3 series each) redrawn at 80x24 cost 185 ms of CPU through textual-plotext (plotext renders a
whole ANSI canvas, which is then parsed back into Textual text) and 59 ms through textual-plot,
against 6.6 ms for this widget, frame included: it bins the samples once per column and builds
one ``Strip`` per line, only when the data or the size changed. The graphs need no zoom, mouse
or markers, and the console's refresh budget is 20 ms.

A graph is: a title line (title and legend, given as text pieces with a series' colour), the
plot rows with the top value on the left, and a time axis (``-5m ... now``). Colours are
component classes (``timeplot--s0`` ... ``timeplot--s3``) set from theme variables that stay
apart in a 16-colour terminal: green, blue, red ($warning and $error both become red there).
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Sequence
from itertools import groupby
from operator import itemgetter

from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip
from textual.widget import Widget

_EIGHTHS = " ▁▂▃▄▅▆▇█"
# braille dot bits, [column][row from the top]
_DOTS = ((0x01, 0x02, 0x04, 0x40), (0x08, 0x10, 0x20, 0x80))
LABEL_WIDTH = 6  # the y-axis label column
_CHAR, _KEY = itemgetter(0), itemgetter(1, 2)


def fmt_ago(seconds: float) -> str:
    """``300 -> '5m'``, ``5400 -> '1.5h'``: a time-axis label."""
    if seconds >= 3600:
        h = seconds / 3600
        return f"{h:.0f}h" if h >= 10 or h == int(h) else f"{h:.1f}h"
    if seconds >= 60:
        m = seconds / 60
        return f"{m:.0f}m" if m >= 10 or m == int(m) else f"{m:.1f}m"
    return f"{seconds:.0f}s"


def bin_columns(
    times: Sequence[float], columns: Sequence[Sequence[float]], start: float, end: float, n: int
) -> list[list[float | None]]:
    """Means of each series over ``n`` equal time bins of [start, end]; None where a bin has
    no sample (before the history starts, or while the scheduler did not answer)."""
    k = len(columns)
    sums = [[0.0] * n for _ in range(k)]
    counts = [0] * n
    span = end - start
    if span <= 0 or n <= 0:
        return [[None] * n for _ in range(k)]
    scale = n / span
    for j, t in enumerate(times):
        b = int((t - start) * scale)
        if b < 0:
            continue
        if b >= n:
            b = n - 1
        counts[b] += 1
        for s in range(k):
            sums[s][b] += columns[s][j]
    out = [[(row[b] / counts[b]) if counts[b] else None for b in range(n)] for row in sums]
    # Bins narrower than the samples' spacing (a wide graph, a coarse tier) fall between two
    # samples: carry the previous value across such short gaps. A longer gap (the scheduler did
    # not answer) stays empty.
    if len(times) >= 2:
        spacing = (times[-1] - times[0]) / (len(times) - 1)
        reach = int(spacing * scale * 1.5) + 1
        filled = [b for b in range(n) if counts[b]]
        for left, right in zip(filled, filled[1:], strict=False):
            if 1 < right - left <= reach:
                for row in out:
                    for b in range(left + 1, right):
                        row[b] = row[left]
    return out


Cells = list[list[tuple[str, int | None, int | None]]]  # rows of (character, fg series, bg series)


def stacked_rows(bins: list[list[float | None]], top: float, rows: int) -> Cells:
    """Cells (char, fg series, bg series) of a stacked area: series 0 at the bottom; a cell
    where one series ends shows an eighth block of it over the next one's colour."""
    n = len(bins[0]) if bins else 0
    levels = rows * 8
    out = [[(" ", None, None)] * n for _ in range(rows)]
    if top <= 0:
        return out
    k = len(bins)
    for c in range(n):
        if bins[0][c] is None:
            continue
        edges = []  # cumulative top level of each series
        acc = 0.0
        for s in range(k):
            acc += max(0.0, bins[s][c] or 0.0)
            edges.append(min(levels, int(round(acc / top * levels))))
        s = 0  # the series at the bottom of the current cell, walking up from the bottom row
        for r in range(rows - 1, -1, -1):
            bottom = (rows - 1 - r) * 8
            while s < k and edges[s] <= bottom:
                s += 1
            if s == k:
                break
            e = edges[s]
            if e - bottom >= 8:
                out[r][c] = ("█", s, None)
                continue
            u = s + 1
            while u < k and edges[u] <= e:
                u += 1
            out[r][c] = (_EIGHTHS[e - bottom], s, u if u < k else None)
    return out


def braille_rows(bins: list[list[float | None]], tops: Sequence[float], rows: int) -> Cells:
    """Cells of line graphs in braille (2 bins per cell across, 4 dots down); each series
    scaled to its own top; consecutive points joined; a cell takes its last series' colour."""
    n = len(bins[0]) if bins else 0
    width = (n + 1) // 2
    masks = [[0] * width for _ in range(rows)]
    colour: list[list[int | None]] = [[None] * width for _ in range(rows)]
    dots = rows * 4
    for s, series in enumerate(bins):
        top = tops[s] if s < len(tops) else 0.0
        prev = None
        for x, v in enumerate(series):
            if v is None:
                prev = None
                continue
            level = 0 if top <= 0 else min(dots - 1, max(0, int(v / top * (dots - 1) + 0.5)))
            # joined to the previous point: the dots between them, in this column
            lo, hi = (level, level) if prev is None else (min(prev + 1, level), max(prev - 1, level))
            cell_x, sub = divmod(x, 2)
            for d in range(lo, hi + 1):
                row, dot = divmod(dots - 1 - d, 4)
                masks[row][cell_x] |= _DOTS[sub][dot]
                colour[row][cell_x] = s
            prev = level
    return [
        [(chr(0x2800 + m) if m else " ", colour[r][c] if m else None, None) for c, m in enumerate(masks[r])]
        for r in range(rows)
    ]


class TimePlot(Widget):
    """A graph of some series over a time window; feed it with :meth:`show`."""

    DEFAULT_CSS = """
    TimePlot { height: 1fr; min-height: 4; }
    TimePlot > .timeplot--title { text-style: bold; }
    TimePlot > .timeplot--axis { color: $text-muted; }
    TimePlot > .timeplot--s0 { color: $success; }
    TimePlot > .timeplot--s1 { color: $primary; }
    TimePlot > .timeplot--s2 { color: $error; }
    TimePlot > .timeplot--s3 { color: $accent; }
    """
    COMPONENT_CLASSES = {"timeplot--title", "timeplot--axis", "timeplot--s0", "timeplot--s1",
                         "timeplot--s2", "timeplot--s3"}

    def __init__(self, kind: str = "lines", *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        if kind not in ("lines", "stack"):
            raise ValueError(f"kind: {kind!r}; use 'lines' or 'stack'")
        self.kind = kind
        self._data: tuple | None = None
        self._key: tuple | None = None
        self._strips: list[Strip] = []
        self.redraws = 0  # how many times the graph was rebuilt (tests, bench)
        self._style_cache: dict[str, Style] = {}

    def show(
        self,
        legend: Sequence[tuple[str, int | None]],
        times: array | Sequence[float],
        columns: Sequence[Sequence[float]],
        start: float,
        end: float,
        tops: Sequence[float],
        label: Callable[[float], str] = lambda v: f"{v:.0f}",
        version: object = None,
    ) -> None:
        """``legend``: text pieces, each with the series whose colour it takes (None: plain);
        ``tops``: the stack's top (one value) or each line's top; ``version`` names the data:
        the same version and size redraw nothing."""
        data = (tuple(legend), version, start, end, tuple(tops))
        if version is not None and self._data is not None and self._data[:5] == data:
            return
        self._data = (*data, times, columns, label)
        self._key = None
        self.refresh()

    def _style(self, name: str) -> Style:
        # Looking a component style up costs more than drawing a graph line: kept until the
        # styles change (a theme switch, a CSS reload).
        style = self._style_cache.get(name)
        if style is None:
            style = self._style_cache[name] = self.get_component_rich_style(name, partial=True)
        return style

    def notify_style_update(self) -> None:
        self._style_cache.clear()
        self._key = None
        super().notify_style_update()

    def _build(self, width: int, height: int) -> list[Strip]:
        self.redraws += 1
        base = self.rich_style
        blank = Strip.blank(width, base)
        if self._data is None or width <= LABEL_WIDTH + 2 or height < 1:
            return [blank] * height
        legend, _version, start, end, tops, times, columns, label = self._data
        series = [self._style(f"timeplot--s{i % 4}") for i in range(4)]
        title: list[Segment] = []
        used = 0
        for text, s in legend:
            text = text[: max(0, width - used)]
            if not text:
                break
            style = base + (series[s] if s is not None else self._style("timeplot--title"))
            title.append(Segment(text, style))
            used += len(text)
        lines = [Strip(title).adjust_cell_length(width, base)]
        if height < 3:
            return (lines + [blank] * height)[:height]
        rows = height - 2
        plot_w = width - LABEL_WIDTH
        if self.kind == "stack":
            bins = bin_columns(times, columns, start, end, plot_w)
            cells = stacked_rows(bins, tops[0] if tops else 0.0, rows)
        else:
            bins = bin_columns(times, columns, start, end, plot_w * 2)
            cells = braille_rows(bins, tops, rows)
        axis = self._style("timeplot--axis")
        styles: dict[tuple[int | None, int | None], Style] = {}  # (fg, bg) -> one Style object
        top_label = label(tops[0] if tops else 0.0)  # (lines: the first series sets the axis)
        for r in range(rows):
            text = top_label if r == 0 else ("0" if r == rows - 1 and self.kind == "stack" else "")
            segments = [Segment(text[: LABEL_WIDTH - 1].rjust(LABEL_WIDTH - 1) + "│", base + axis)]
            row = cells[r]
            chars = "".join(map(_CHAR, row))
            pos = 0
            for key, group in groupby(map(_KEY, row)):  # runs of one colour: C-level loops
                length = len(list(group))
                style = styles.get(key)
                if style is None:
                    fg, bg = key
                    style = base if fg is None else base + series[fg]
                    if bg is not None:
                        style = style + Style(bgcolor=series[bg].color)
                    styles[key] = style
                segments.append(Segment(chars[pos : pos + length], style))
                pos += length
            lines.append(Strip(segments).adjust_cell_length(width, base))
        span = end - start
        left, mid = f"-{fmt_ago(span)}", f"-{fmt_ago(span / 2)}"
        axis_text = [" "] * plot_w
        for pos, text in ((0, left), (plot_w // 2 - len(mid) // 2, mid), (plot_w - 3, "now")):
            for i, ch in enumerate(text):
                if 0 <= pos + i < plot_w:
                    axis_text[pos + i] = ch
        axis_line = Strip([Segment(" " * LABEL_WIDTH + "".join(axis_text), base + axis)])
        lines.append(axis_line.adjust_cell_length(width, base))
        return lines

    def render_line(self, y: int) -> Strip:
        width, height = self.size
        key = (width, height, self._data[:5] if self._data else None, id(self._data))
        if key != self._key:
            self._strips = self._build(width, height)
            self._key = key
        return self._strips[y] if y < len(self._strips) else Strip.blank(width, self.rich_style)

    @property
    def text(self) -> str:
        """The graph as plain text (tests)."""
        width, height = self.size
        return "\n".join(self.render_line(y).text for y in range(height))
