"""Leaving a keeper's cluster: stop it (every job deleted), detach (it keeps running), or cancel."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label


class QuitDialog(ModalScreen[str | None]):
    """Dismisses with "stop", "detach" or None (cancel)."""

    BINDINGS = [
        Binding("s", "answer('stop')", "Stop the cluster", id="quit.stop"),
        Binding("d", "answer('detach')", "Detach", id="quit.detach"),
        Binding("escape,n,c", "answer(None)", "Cancel", id="quit.cancel"),
    ]

    def __init__(self, question: str, *, stop_label: str = "Stop cluster") -> None:
        super().__init__(id="quit-dialog", classes="dialog-screen")
        self.question = question
        self.stop_label = stop_label

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.question, id="question")
            with Horizontal(classes="buttons"):
                yield Button(f"{self.stop_label} (s)", variant="error", id="stop")
                yield Button("Detach (d)", variant="primary", id="detach")
                yield Button("Cancel (esc)", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#detach", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(None if event.button.id == "cancel" else event.button.id)

    def action_answer(self, answer: str | None) -> None:
        self.dismiss(answer)
