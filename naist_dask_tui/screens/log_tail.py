"""Follow a job's output file live (an SGE job's output file, or a local worker's log file),
like ``tail -f``."""

from __future__ import annotations

import os
import time

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, Log
from textual.worker import get_current_worker

TAIL_BYTES = 64 * 1024


class LogTailScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,l", "close", "Close log", id="log.close")]

    def __init__(
        self, title: str, path: str | None, *, interval: float = 0.5, backend: str | None = "sge"
    ) -> None:
        super().__init__(classes="dialog-screen")
        self.title_text = title
        self.path = path
        self.interval = interval
        self.backend = backend

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog log-dialog"):
            yield Label(f"{self.title_text}: {self.path or 'no output file known'}  (esc closes)", id="log-title")
            yield Log(id="log", max_lines=5000, auto_scroll=True)

    def on_mount(self) -> None:
        if self.path:
            self.follow(self.path)
        else:
            from naist_dask_tui.words import no_log_text

            self.query_one(Log).write_line(no_log_text(self.backend))

    def _write(self, text: str) -> None:
        self.query_one(Log).write(text)

    def _post(self, text: str) -> bool:
        """Hand text to the UI thread; False once the app is gone (then the loop stops)."""
        try:
            self.app.call_from_thread(self._write, text)
        except Exception:
            return False
        return True

    @work(thread=True, exclusive=True, group="log-tail", exit_on_error=False)
    def follow(self, path: str) -> None:
        worker = get_current_worker()
        offset = None
        waiting_said = False
        while not worker.is_cancelled:
            try:
                size = os.path.getsize(path)
                if offset is None or size < offset:  # first read, or truncated/rotated
                    if offset is not None and not self._post("\n--- file truncated ---\n"):
                        return
                    offset = max(0, size - TAIL_BYTES)
                if size > offset:
                    with open(path, "rb") as f:
                        f.seek(offset)
                        data = f.read(size - offset)
                    offset = size
                    if not self._post(data.decode("utf-8", "replace")):
                        return
            except FileNotFoundError:
                if not waiting_said:
                    waiting_said = True
                    what = ("the worker may still be starting" if self.backend == "local"
                            else "the job may still be pending")
                    if not self._post(f"waiting for {path} ({what})\n"):
                        return
            except OSError as exc:
                self._post(f"cannot read {path}: {exc}\n")
                return
            time.sleep(self.interval)

    def action_close(self) -> None:
        self.workers.cancel_group(self, "log-tail")
        self.dismiss(None)
