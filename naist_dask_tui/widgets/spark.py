"""A one-line sparkline drawn with block characters: cheap to update every second.

Textual's ``Sparkline`` costs ~6-7 ms of CPU an update; this renders one short string.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.segment import Segment
from textual.reactive import reactive
from textual.strip import Strip
from textual.widget import Widget

_BLOCKS = "▁▂▃▄▅▆▇█"


def spark_text(values: Sequence[float], width: int, maximum: float | None = None) -> str:
    """The last ``width`` values as block characters, scaled to ``maximum`` (or their max)."""
    values = list(values)[-width:] if width > 0 else []
    if not values:
        return ""
    top = maximum if maximum else max(values)
    if top <= 0:
        return _BLOCKS[0] * len(values)
    out = []
    for v in values:
        level = int(round(min(max(v / top, 0.0), 1.0) * (len(_BLOCKS) - 1)))
        out.append(_BLOCKS[level])
    return "".join(out)


class Spark(Widget):
    """``data`` (a tuple, assigned, never mutated) drawn right-aligned, as tall as the widget."""

    DEFAULT_CSS = """
    Spark { height: 1; min-height: 1; color: $accent; }
    """

    data: reactive[tuple[float, ...]] = reactive(tuple)
    maximum: reactive[float | None] = reactive(None)

    def render_line(self, y: int) -> Strip:
        width, height = self.size
        values = list(self.data)[-width:]
        if not values:
            return Strip.blank(width, self.rich_style)
        top = self.maximum or max(values) or 1.0
        steps = len(_BLOCKS)
        # Row y (0 = top) shows the eighths of each value between its bottom and top edges.
        floor = (height - 1 - y) * steps
        cells = []
        for v in values:
            level = int(round(min(max(v / top, 0.0), 1.0) * height * steps))
            part = level - floor
            if part <= 0:
                cells.append(" " if y < height - 1 else _BLOCKS[0])
            elif part >= steps:
                cells.append(_BLOCKS[-1])
            else:
                cells.append(_BLOCKS[part - 1])
        text = "".join(cells).rjust(width)
        return Strip([Segment(text, self.rich_style)], width)

    @property
    def text(self) -> str:
        return spark_text(self.data, self.size.width or 60, self.maximum)
