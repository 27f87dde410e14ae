"""The shape of the screens that answer *why* (failures, slow tasks, worker events, a job's
detail): a modal view whose data is fetched from the cluster off the UI thread when it opens
and again every few seconds while it stays open, with the time of the last answer or why
there is none."""

from __future__ import annotations

import time
from typing import Any

from textual import work
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.markup import escape
from textual.screen import ModalScreen
from textual.widgets import Label, Static


class InquiryScreen(ModalScreen[None]):
    """Subclasses give ``TITLE_TEXT``, ``compose_body()``, ``fetch()`` (runs in a thread) and
    ``show(data)`` (on the UI thread)."""

    TITLE_TEXT = ""
    INTERVAL = 2.0  # seconds between two fetches while open (0: fetch once)

    def __init__(self, controller: Any, **kwargs: Any) -> None:
        super().__init__(classes="dialog-screen", **kwargs)
        self.controller = controller
        self.fetched: Any = None
        self.fetches = 0  # answers shown (tests wait on this)

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog inquiry-dialog"):
            yield Label(self.title_text(), id="inquiry-title")
            yield Static("asking the cluster…", id="inquiry-status")
            yield from self.compose_body()

    def title_text(self) -> str:
        return f"{self.TITLE_TEXT}  (esc closes)"

    def compose_body(self) -> ComposeResult:
        yield from ()

    def on_mount(self) -> None:
        if self.controller is None or not self.available():
            self.query_one("#inquiry-status", Static).update(self.unavailable_text())
            return
        self.refresh_data()
        if self.INTERVAL:
            self.set_interval(self.INTERVAL, self.refresh_data)

    def available(self) -> bool:
        """The controller can answer (the scheduler's diagnostics need a client)."""
        return getattr(self.controller, "client", None) is not None and hasattr(self.controller, "diagnostics")

    def unavailable_text(self) -> str:
        return "No cluster behind this screen: nothing to ask."

    def fetch(self) -> Any:
        raise NotImplementedError

    def show(self, data: Any) -> None:
        raise NotImplementedError

    @work(thread=True, exclusive=True, group="inquiry", exit_on_error=False)
    def refresh_data(self) -> None:
        try:
            data = self.fetch()
        except Exception as exc:
            self._post(self._failed, f"{type(exc).__name__}: {exc}")
        else:
            self._post(self._shown, data)

    def _post(self, fn, *args, **kwargs) -> None:
        try:
            self.app.call_from_thread(fn, *args, **kwargs)
        except Exception:
            pass  # the screen or the app is gone

    def _shown(self, data: Any) -> None:
        if not self.is_attached:
            return
        self.fetched = data
        self.show(data)
        self.fetches += 1
        self.query_one("#inquiry-status", Static).update(self.status_text(data))

    def status_text(self, data: Any) -> str:
        return f"as of {time.strftime('%H:%M:%S')}"

    def _failed(self, error: str) -> None:
        if self.is_attached:
            self.query_one("#inquiry-status", Static).update(f"[b $error]cannot ask the cluster:[/] {escape(error)}")

    def action_close(self) -> None:
        self.workers.cancel_group(self, "inquiry")
        self.dismiss(None)
