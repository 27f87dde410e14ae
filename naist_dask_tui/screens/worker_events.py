"""Worker events (``e``): workers joining, leaving and coming back, with the reason.

Retired (their data moved: a scale-down, adaptive scaling, the user's ``r``), at their
lifetime, killed by memory (their nanny restarts them), lost (no heartbeat: a dead node; a
closed connection: killed, crashed, or their job ended). The newest first; the scheduler keeps
the last 1,000.
"""

from __future__ import annotations

import time

from textual.app import ComposeResult
from textual.binding import Binding

from naist_dask_tui.core.diagnostics import WorkerEvent
from naist_dask_tui.formatting import natural_key
from naist_dask_tui.screens.inquiry import InquiryScreen
from naist_dask_tui.widgets.row_table import Column, RowTable

EVENT_COLUMNS: list[Column[WorkerEvent]] = [
    Column("time", "Time", 8, lambda e: time.strftime("%H:%M:%S", time.localtime(e.time)), lambda e: e.time),
    Column("kind", "Event", 9, lambda e: e.kind, lambda e: e.kind, style=lambda e: f"events--{e.kind}"),
    Column("worker", "Worker", 10, lambda e: e.name, lambda e: natural_key(e.name), max_width=20),
    Column("job", "Job", 7, lambda e: e.job_id or "-", lambda e: natural_key(e.job_id or ""), priority=1),
    Column("host", "Host", 8, lambda e: e.host or "-", lambda e: e.host or "", priority=2),
    Column("reason", "Why", 20, lambda e: e.reason, lambda e: e.reason, flex=True, max_width=200),
]


class WorkerEventsTable(RowTable[WorkerEvent]):
    COMPONENT_CLASSES = RowTable.COMPONENT_CLASSES | {"events--joined", "events--left", "events--restarted"}


class WorkerEventsScreen(InquiryScreen):
    TITLE_TEXT = "Worker events"
    BINDINGS = [Binding("escape,q,e", "close", "Close", tooltip="Close the worker events", id="events.close")]

    def compose_body(self) -> ComposeResult:
        yield WorkerEventsTable(EVENT_COLUMNS, key_of=lambda e: (e.time, e.address, e.kind),
                                sort_column="time", sort_reverse=True, empty_text="no worker has come or gone",
                                id="events-table")

    def on_mount(self) -> None:
        self.query_one(WorkerEventsTable).focus()
        super().on_mount()

    def fetch(self) -> list[WorkerEvent]:
        return self.controller.diagnostics.worker_events()

    def show(self, events: list[WorkerEvent]) -> None:
        self.query_one(WorkerEventsTable).set_rows(events)

    def status_text(self, events: list[WorkerEvent]) -> str:
        left = sum(1 for e in events if e.kind == "left")
        return f"{len(events)} event(s), {left} departure(s), newest first; as of {time.strftime('%H:%M:%S')}"
