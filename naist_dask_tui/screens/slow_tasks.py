"""Slow and stuck tasks (``t``): tasks running far longer than their group usually takes.

A task is listed when it has been executing for more than 3 times the median duration of its
group's last finished tasks, and at least 10 s; a task whose group has no finished task yet,
after 30 s. Enter fetches the selected task's call stack from
its worker (``client.call_stack``): what it is doing right now.
"""

from __future__ import annotations

from typing import Any

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Log

from naist_dask_tui.core.diagnostics import SLOW_BOUND, SLOW_FACTOR, SLOW_FLOOR, SlowTask
from naist_dask_tui.formatting import fmt_duration, natural_key
from naist_dask_tui.screens.inquiry import InquiryScreen
from naist_dask_tui.widgets.row_table import Column, RowTable

SLOW_COLUMNS: list[Column[SlowTask]] = [
    Column("running", "Running", 8, lambda t: fmt_duration(t.running), lambda t: t.running, align="right"),
    Column("typical", "Median", 8, lambda t: fmt_duration(t.typical) if t.typical else "-",
           lambda t: t.typical or 0, align="right", priority=2),
    Column("group", "Group", 12, lambda t: t.group, lambda t: t.group, max_width=30, priority=3),
    Column("key", "Key", 20, lambda t: t.label, lambda t: t.label, flex=True, max_width=60),
    Column("worker", "Worker", 10, lambda t: t.worker_name, lambda t: natural_key(t.worker_name), priority=1),
    Column("job", "Job", 8, lambda t: t.job_id or "-", lambda t: natural_key(t.job_id or ""), priority=1),
]


class SlowTasksScreen(InquiryScreen):
    TITLE_TEXT = "Slow and stuck tasks"
    BINDINGS = [
        Binding("escape,q,t", "close", "Close", tooltip="Close the slow tasks", id="slow.close"),
        Binding("enter,c", "call_stack", "Call stack", tooltip="The selected task's call stack, from its worker",
                id="slow.call_stack"),
    ]

    def __init__(self, controller: Any, *, factor: float = SLOW_FACTOR, floor: float = SLOW_FLOOR,
                 bound: float = SLOW_BOUND) -> None:
        super().__init__(controller)
        self.limits = (factor, floor, bound)
        self.stack: list[str] = []

    def compose_body(self) -> ComposeResult:
        yield RowTable(SLOW_COLUMNS, key_of=lambda t: t.label, sort_column="running", sort_reverse=True,
                       empty_text="no task runs unusually long", id="slow-table")
        yield Log(id="call-stack", max_lines=2000, auto_scroll=False)

    def on_mount(self) -> None:
        self.query_one(RowTable).focus()
        self.query_one("#call-stack", Log).write_line("Enter on a task shows its call stack here.")
        super().on_mount()

    def fetch(self) -> list[SlowTask]:
        factor, floor, bound = self.limits
        return self.controller.diagnostics.slow_tasks(factor=factor, floor=floor, bound=bound)

    def show(self, tasks: list[SlowTask]) -> None:
        self.query_one(RowTable).set_rows(tasks)

    def status_text(self, tasks: list[SlowTask]) -> str:
        factor, floor, bound = self.limits
        return (f"{len(tasks)} task(s) running over {factor:g}x their group's median time (at least "
                f"{fmt_duration(floor)}), or over {fmt_duration(bound)} with no finished task to compare; "
                "enter: call stack")

    def action_call_stack(self) -> None:
        task = self.query_one(RowTable).cursor_row
        if task is None:
            self.notify("No task selected.", timeout=2)
            return
        self.fetch_stack(task)

    @work(thread=True, exclusive=True, group="call-stack", exit_on_error=False)
    def fetch_stack(self, task: SlowTask) -> None:
        try:
            lines = self.controller.diagnostics.call_stack(task.key)
        except Exception as exc:
            lines = [f"cannot get the call stack: {type(exc).__name__}: {exc}"]
        if not lines:
            lines = [f"{task.label} is not running any more (no call stack)"]
        self._post(self._show_stack, lines)

    def _show_stack(self, lines: list[str]) -> None:
        self.stack = lines
        log = self.query_one("#call-stack", Log)
        log.clear()
        log.write_lines(lines)
