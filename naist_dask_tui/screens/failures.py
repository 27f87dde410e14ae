"""The Failures view (``f``): tasks that raised, grouped by exception type and message.

Each group: how many tasks, one key, the worker and SGE job it ran on, the traceback. A
``KilledWorker`` group lists the jobs whose workers died running the task; Enter opens the
post-mortem of that job (or of the job the task failed on). ``a`` switches between the
compute pane's current run and everything since the cluster started.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.markup import escape
from textual.widgets import Static

from naist_dask_tui.core.diagnostics import FailureGroup
from naist_dask_tui.formatting import natural_key
from naist_dask_tui.screens.inquiry import InquiryScreen
from naist_dask_tui.widgets.row_table import Column, RowTable


def _count(g: FailureGroup) -> str:
    return f"{g.count_since}{'+' if g.more else ''}"


FAILURE_COLUMNS: list[Column[FailureGroup]] = [
    Column("count", "Tasks", 6, _count, lambda g: g.count_since, align="right"),
    Column("type", "Exception", 14, lambda g: g.type, lambda g: g.type, max_width=24),
    Column("message", "Message", 20, lambda g: g.message.replace("\n", " "), lambda g: g.message,
           flex=True, max_width=80),
    Column("job", "Job", 8, lambda g: g.job_id or "-", lambda g: natural_key(g.job_id or ""), priority=1),
    Column("worker", "Worker", 10, lambda g: g.worker_name or "-", lambda g: g.worker_name or "", priority=2),
    Column("key", "One key", 16, lambda g: g.key, lambda g: g.key, priority=3, max_width=40),
]


def group_text(g: FailureGroup) -> str:
    """The selected group's detail, as markup."""
    lines = [
        f"[b]{escape(g.type)}[/b]: {escape(g.message)}",
        f"[b]{_count(g)}[/b] task(s) (all since the start: {g.count}), last at "
        f"{time.strftime('%H:%M:%S', time.localtime(g.last))}; one key: {escape(g.key)}",
        f"ran on worker {escape(g.worker_name or '?')}" + (f", SGE job {g.job_id}" if g.job_id else ""),
    ]
    if g.died:
        jobs = ", ".join(g.died_jobs) or "unknown"
        lines.append(f"[b $error]workers that died running it:[/] {escape(', '.join(g.died))} "
                     f"(SGE jobs: {escape(jobs)}): Enter shows why their job ended")
    if g.traceback:
        lines += ["", "[b]Traceback[/b] (the task's frames):", escape(g.traceback.rstrip())]
    return "\n".join(lines)


class FailuresScreen(InquiryScreen):
    TITLE_TEXT = "Failed tasks"
    BINDINGS = [
        Binding("escape,q,f", "close", "Close", tooltip="Close the Failures view", id="failures.close"),
        Binding("a", "toggle_scope", "This run / all", tooltip="Failures of the current run, or all since the start",
                id="failures.scope"),
        Binding("enter", "job", "Job post-mortem", tooltip="The post-mortem of the job the task died or failed on",
                id="failures.job"),
    ]

    def __init__(self, controller: Any, run_started: Callable[[], float | None] | None = None) -> None:
        super().__init__(controller)
        self.run_started = run_started or (lambda: getattr(controller, "run_started", None))
        self.since = self.run_started()  # None: since the cluster started
        self.this_run = self.since is not None

    def compose_body(self) -> ComposeResult:
        yield RowTable(FAILURE_COLUMNS, key_of=lambda g: (g.type, g.message), sort_column="count",
                       sort_reverse=True, empty_text="no task has failed", id="failures-table")
        with VerticalScroll(classes="inquiry-detail"):
            yield Static("", id="failure-detail")

    def on_mount(self) -> None:
        self.query_one(RowTable).focus()
        super().on_mount()

    def fetch(self) -> list[FailureGroup]:
        since = self.run_started() if self.this_run else None
        self.since = since
        return self.controller.diagnostics.failures(since=since or 0.0)

    def show(self, groups: list[FailureGroup]) -> None:
        self.query_one(RowTable).set_rows(groups)
        self._show_detail()

    def status_text(self, groups: list[FailureGroup]) -> str:
        scope = (f"the current run (since {time.strftime('%H:%M:%S', time.localtime(self.since))})"
                 if self.this_run and self.since else "everything since the cluster started")
        n = sum(g.count_since for g in groups)
        other = "a: all since the start" if self.this_run else "a: the current run"
        return f"{n} failed task(s) in {len(groups)} group(s), {scope}; {other}; as of {time.strftime('%H:%M:%S')}"

    def on_row_table_cursor_moved(self, event: RowTable.CursorMoved) -> None:
        self._show_detail()

    def _show_detail(self) -> None:
        g = self.query_one(RowTable).cursor_row
        self.query_one("#failure-detail", Static).update(group_text(g) if g is not None else "")

    def action_toggle_scope(self) -> None:
        if self.run_started() is None and not self.this_run:
            self.notify("No compute-pane run yet: these are all the failures since the start.", timeout=3)
            return
        self.this_run = not self.this_run
        self.refresh_data()

    def action_job(self) -> None:
        g = self.query_one(RowTable).cursor_row
        job = (g.died_jobs[0] if g and g.died_jobs else None) or (g.job_id if g else None)
        if not job:
            self.notify("No SGE job is known for this failure.", timeout=3)
            return
        from naist_dask_tui.core.snapshot import JobRow, JobState
        from naist_dask_tui.screens.inquiries import open_job

        open_job(self, JobRow(name=job, job_id=job, state=JobState.GONE))
