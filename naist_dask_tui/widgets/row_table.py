"""A keyed, sortable, filterable table that renders only its visible rows.

Why not ``DataTable``: any ``update_cell`` repaints every visible row (110-190 ms of CPU a
refresh at 100-1,000 rows) and ``clear()`` resets cursor and scroll. Here each row is a frozen
record keyed by a stable id; a row's rendered ``Strip`` is cached until the record changes, and
a refresh repaints only the screen lines whose record (or position) changed, nothing at all when
the visible rows are the same.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import Any, Generic

from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding
from textual.geometry import Region, Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from naist_dask_tui.formatting import truncate
from naist_dask_tui.widgets.row_model import Column, R, matching, sortable

__all__ = ["Column", "RowTable"]


class RowTable(ScrollView, Generic[R], can_focus=True):
    """Rows keyed by ``key_of(record)``; ``set_rows`` diffs against the previous records."""

    DEFAULT_CSS = """
    RowTable {
        height: 1fr;
        scrollbar-size-vertical: 1;
    }
    RowTable > .rowtable--header { text-style: bold; background: $panel; }
    RowTable > .rowtable--cursor { background: $block-cursor-blurred-background; }
    RowTable:focus > .rowtable--cursor {
        background: $block-cursor-background;
        color: $block-cursor-foreground;
        text-style: bold;
    }
    """

    COMPONENT_CLASSES = {"rowtable--header", "rowtable--cursor"}

    BINDINGS = [
        Binding("up,k", "cursor(-1)", "Up", show=False, id="table.up"),
        Binding("down,j", "cursor(1)", "Down", show=False, id="table.down"),
        Binding("pageup", "page(-1)", "Page up", show=False, id="table.page_up"),
        Binding("pagedown", "page(1)", "Page down", show=False, id="table.page_down"),
        Binding("home", "first", "First row", show=False, id="table.first"),
        Binding("end", "last", "Last row", show=False, id="table.last"),
        Binding("o", "sort_next", "Sort by the next column", show=False, id="table.sort_next"),
        Binding("O", "sort_reverse", "Reverse the sort", show=False, id="table.sort_reverse"),
    ]

    cursor = reactive(0, always_update=False, repaint=False)

    class CursorMoved(Message):
        def __init__(self, table: RowTable[Any], key: Hashable | None) -> None:
            super().__init__()
            self.table = table
            self.key = key

        @property
        def control(self) -> RowTable[Any]:
            return self.table

    def __init__(
        self,
        columns: Sequence[Column[R]],
        key_of: Callable[[R], Hashable],
        *,
        search_text: Callable[[R], str | Sequence[tuple[str, str]]] | None = None,
        row_class: Callable[[R], str | None] | None = None,
        sort_column: str | None = None,
        sort_reverse: bool = False,
        empty_text: str = "no rows",
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.columns = list(columns)
        self._key_of = key_of
        self._search_text = search_text
        self._row_class = row_class
        self._rows: dict[Hashable, R] = {}
        self._order: list[Hashable] = []
        self._sort_column = sort_column
        self._sort_reverse = sort_reverse
        self._filter = ""
        self.filter_field = ""  # which field the filter matched ("name, job", "host", ...)
        self._layout: list[tuple[Column[R], int]] = []
        self._layout_width = -1
        self._strips: dict[Hashable, tuple[R, Strip]] = {}
        self._styles: dict[str | None, Style] = {}
        self._header: Strip | None = None
        self._sort_cache: dict[Hashable, tuple[R, Any]] = {}
        self._sort_col_cache: tuple[str | None, Column[R] | None] | None = None
        self.empty_text = empty_text
        # Counters for tests and the benchmark: how much work the last set_rows caused.
        self.rows_rendered = 0
        self.lines_refreshed = 0

    # ---- public API -------------------------------------------------------------------------

    @property
    def row_count(self) -> int:
        """Rows shown (after the filter)."""
        return len(self._order)

    @property
    def total_count(self) -> int:
        return len(self._rows)

    @property
    def keys(self) -> list[Hashable]:
        """Keys of the shown rows, in display order."""
        return list(self._order)

    @property
    def cursor_key(self) -> Hashable | None:
        return self._order[self.cursor] if 0 <= self.cursor < len(self._order) else None

    @property
    def cursor_row(self) -> R | None:
        key = self.cursor_key
        return None if key is None else self._rows[key]

    @property
    def sort_column(self) -> str | None:
        return self._sort_column

    @property
    def sort_reverse(self) -> bool:
        return self._sort_reverse

    @property
    def filter_text(self) -> str:
        return self._filter

    def get_row(self, key: Hashable) -> R | None:
        return self._rows.get(key)

    def row_text(self, key: Hashable) -> list[str]:
        """The cells of one row as shown (all columns, stripped): for tests."""
        row = self._rows[key]
        return [c.text(row).strip() for c in self.columns]

    def set_rows(self, records: Iterable[R]) -> bool:
        """Show ``records``; returns False (and does nothing) when they equal the current ones."""
        key_of = self._key_of
        new = {key_of(r): r for r in records}
        old = self._rows
        if new == old:
            self.rows_rendered = self.lines_refreshed = 0
            return False
        before = self._visible_lines()
        cursor_key = self.cursor_key
        keys_changed = new.keys() != old.keys()
        self._rows = new
        for gone in self._strips.keys() - new.keys():
            del self._strips[gone]
        # Re-sort only when a sort value (or the filter's text) of some row changed: most
        # refreshes change CPU and memory, not the name the table is sorted by.
        resort = keys_changed or bool(self._filter)
        if not resort:
            sort_value = self._sort_value
            for key, row in new.items():
                prev = old[key]
                if prev is not row and sort_value(key, prev) != sort_value(key, row):
                    resort = True
                    break
        if resort:
            self._reorder(cursor_key, keys_changed=keys_changed)
        self._refresh_changed(before)
        return True

    def _sort_value(self, key: Hashable, row: R) -> Any:
        """The row's sort value, cached by row identity (``natural_key`` is not free)."""
        cached = self._sort_cache.get(key)
        if cached is not None and cached[0] is row:
            return cached[1]
        column = self._sort_col
        value = sortable(column.sort(row)) if column is not None else sortable(key)
        self._sort_cache[key] = (row, value)
        return value

    def sort_by(self, column: str | None, reverse: bool | None = None) -> None:
        if column is not None and column not in {c.key for c in self.columns}:
            raise KeyError(column)
        self._sort_column = column
        if reverse is not None:
            self._sort_reverse = reverse
        self._header = None
        self._sort_cache.clear()
        self._reorder(self.cursor_key, keys_changed=True)
        self.refresh()

    def set_filter(self, text: str) -> None:
        text = text.strip().lower()
        if text == self._filter:
            return
        self._filter = text
        self._reorder(self.cursor_key, keys_changed=True)
        self.refresh()

    def move_cursor_to_key(self, key: Hashable) -> bool:
        try:
            self.cursor = self._order.index(key)
        except ValueError:
            return False
        return True

    # ---- ordering ---------------------------------------------------------------------------

    @property
    def _sort_col(self) -> Column[R] | None:
        if self._sort_col_cache is None or self._sort_col_cache[0] != self._sort_column:
            column = next((c for c in self.columns if c.key == self._sort_column), None)
            self._sort_col_cache = (self._sort_column, column)
        return self._sort_col_cache[1]

    def _reorder(self, cursor_key: Hashable | None, *, keys_changed: bool) -> None:
        rows = self._rows
        self.filter_field = ""
        if self._filter and self._search_text is not None:
            keys, self.filter_field = matching(rows, self._search_text, self._filter)
        else:
            keys = list(rows)
        if len(self._sort_cache) > 2 * len(rows) + 64:
            self._sort_cache = {k: v for k, v in self._sort_cache.items() if k in rows}
        sort_value = self._sort_value
        keys.sort(key=lambda k: sort_value(k, rows[k]), reverse=self._sort_reverse)
        self._order = keys
        self.virtual_size = Size(self._content_width(), len(keys) + 1)
        # The cursor follows its row (by key), not its line.
        if cursor_key is not None and cursor_key in rows:
            try:
                index = keys.index(cursor_key)
            except ValueError:
                index = min(self.cursor, max(0, len(keys) - 1))
        else:
            index = min(self.cursor, max(0, len(keys) - 1))
        if index != self.cursor:
            self.set_reactive(RowTable.cursor, index)
            self._scroll_cursor_visible()
            self.post_message(self.CursorMoved(self, self.cursor_key))
        elif keys_changed and cursor_key != self.cursor_key:
            self.post_message(self.CursorMoved(self, self.cursor_key))

    # ---- refresh only what changed ------------------------------------------------------------

    def _visible_lines(self) -> list[tuple[Hashable, Any, bool] | None]:
        top = int(self.scroll_offset.y)
        height = max(0, self.size.height - 1)
        order = self._order
        rows = self._rows
        out: list[tuple[Hashable, Any, bool] | None] = []
        for index in range(top, top + height):
            if index < len(order):
                key = order[index]
                out.append((key, rows[key], index == self.cursor))
            else:
                out.append(None)
        return out

    def _refresh_changed(self, before: list[tuple[Hashable, Any, bool] | None]) -> None:
        after = self._visible_lines()
        if len(before) != len(after):
            self.refresh()
            self.lines_refreshed = len(after)
            return
        width = max(self.virtual_size.width, self.size.width)
        changed = 0
        for y, (old, new) in enumerate(zip(before, after, strict=True)):
            if old is new:
                continue
            if old is None or new is None or old[0] != new[0] or old[2] != new[2] or old[1] != new[1]:
                changed += 1
                self.refresh(Region(0, y + 1, width, 1))
        self.lines_refreshed = changed

    # ---- layout and rendering -----------------------------------------------------------------

    def _content_width(self) -> int:
        self._ensure_layout()
        return sum(w + 1 for _, w in self._layout)

    def _ensure_layout(self) -> None:
        width = self.size.width or 80
        if width == self._layout_width and self._layout:
            return
        self._layout_width = width
        budget = max(1, width - 1)  # keep a cell for the scrollbar's gutter
        chosen = sorted(self.columns, key=lambda c: c.priority)
        keep: list[Column[R]] = []
        used = 0
        for column in chosen:
            if not keep or used + column.width + 1 <= budget:
                keep.append(column)
                used += column.width + 1
        spare = max(0, budget - used)
        layout = []
        for column in self.columns:
            if column in keep:
                w = column.width
                if column.flex and spare:
                    extra = min(spare, column.max_width - w)
                    if extra > 0:
                        w += extra
                        spare -= extra
                layout.append((column, w))
        self._layout = layout
        self._strips.clear()
        self._header = None

    def on_resize(self, event: events.Resize) -> None:
        self._ensure_layout()
        self.virtual_size = Size(self._content_width(), len(self._order) + 1)
        self._scroll_cursor_visible()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._styles.clear()
        self._strips.clear()
        self._header = None

    def _style(self, component: str | None) -> Style:
        style = self._styles.get(component)
        if style is None:
            if component is None:
                style = self.rich_style
            else:
                style = self.rich_style + self.get_component_rich_style(
                    component, partial=True, default=Style()
                )
            self._styles[component] = style
        return style

    def _build_row(self, row: R, cursor: bool) -> Strip:
        row_class = self._row_class(row) if self._row_class else None
        base = self._style(row_class)
        if cursor:
            base = base + self.get_component_rich_style("rowtable--cursor", partial=True)
        segments: list[Segment] = []
        space = Segment(" ", base)
        for column, width in self._layout:
            text = column.text(row)
            if column.align == "right":
                text = text[-width:].rjust(width) if len(text) > width else text.rjust(width)
            else:
                text = truncate(text, width)
            style = base
            if column.style is not None and not cursor:
                component = column.style(row)
                if component:
                    style = base + self.get_component_rich_style(
                        component, partial=True, default=Style()
                    )
            segments.append(Segment(text, style))
            segments.append(space)
        self.rows_rendered += 1
        return Strip(segments).extend_cell_length(self._layout_width, base)

    def _build_header(self) -> Strip:
        style = self._style("rowtable--header")
        segments = []
        for column, width in self._layout:
            label = column.label
            if column.key == self._sort_column:
                # the arrow always shows: a label as wide as its column gives up a letter
                label = label[: max(0, width - 1)] + ("▼" if self._sort_reverse else "▲")
            label = label.rjust(width) if column.align == "right" else label.ljust(width)
            segments.append(Segment(label[:width] + " ", style))
        return Strip(segments).extend_cell_length(self._layout_width, style)

    def render_line(self, y: int) -> Strip:
        self._ensure_layout()
        scroll_x, scroll_y = self.scroll_offset
        width = self.size.width
        if y == 0:
            if self._header is None:
                self._header = self._build_header()
            return self._header.crop_extend(scroll_x, scroll_x + width, self.rich_style)
        index = scroll_y + y - 1
        if index >= len(self._order):
            if index == 0 and not self._order:
                text = self.empty_text if not self._filter else f"no rows match /{self._filter}"
                return Strip([Segment(truncate(" " + text, width), self._style(None))])
            return Strip.blank(width, self.rich_style)
        key = self._order[index]
        row = self._rows[key]
        if index == self.cursor:
            strip = self._build_row(row, cursor=True)
        else:
            cached = self._strips.get(key)
            if cached is not None and (cached[0] is row or cached[0] == row):
                strip = cached[1]
            else:
                strip = self._build_row(row, cursor=False)
                self._strips[key] = (row, strip)
        return strip.crop_extend(scroll_x, scroll_x + width, self.rich_style)

    # ---- cursor and sorting actions ---------------------------------------------------------

    def watch_cursor(self, old: int, new: int) -> None:
        top = int(self.scroll_offset.y)
        width = max(self.virtual_size.width, self.size.width)
        for index in (old, new):
            self.refresh(Region(0, index - top + 1, width, 1))
        self._scroll_cursor_visible()
        self.post_message(self.CursorMoved(self, self.cursor_key))

    def validate_cursor(self, value: int) -> int:
        return max(0, min(value, len(self._order) - 1)) if self._order else 0

    def _scroll_cursor_visible(self) -> None:
        height = self.size.height - 1
        if height <= 0:
            return
        top = int(self.scroll_offset.y)
        if self.cursor < top:
            self.scroll_to(y=self.cursor, animate=False, immediate=True)
        elif self.cursor >= top + height:
            self.scroll_to(y=self.cursor - height + 1, animate=False, immediate=True)

    def action_cursor(self, delta: int) -> None:
        self.cursor += delta

    def action_page(self, direction: int) -> None:
        self.cursor += direction * max(1, self.size.height - 2)

    def action_first(self) -> None:
        self.cursor = 0

    def action_last(self) -> None:
        self.cursor = max(0, len(self._order) - 1)

    def action_sort_next(self) -> None:
        keys = [c.key for c in self.columns]
        if self._sort_column in keys:
            nxt = keys[(keys.index(self._sort_column) + 1) % len(keys)]
        else:
            nxt = keys[0]
        self.sort_by(nxt)
        self.notify(f"sorted by {self._label(nxt)}", timeout=1.5)

    def action_sort_reverse(self) -> None:
        self.sort_by(self._sort_column, not self._sort_reverse)

    def _label(self, key: str) -> str:
        return next(c.label for c in self.columns if c.key == key)

    def on_click(self, event: events.Click) -> None:
        if event.y == 0:
            x = event.x + int(self.scroll_offset.x)
            pos = 0
            for column, width in self._layout:
                if pos <= x < pos + width + 1:
                    reverse = not self._sort_reverse if column.key == self._sort_column else False
                    self.sort_by(column.key, reverse)
                    return
                pos += width + 1
        else:
            self.cursor = int(self.scroll_offset.y) + event.y - 1
