"""Leaving a keeper's cluster: stop it (every job deleted), detach (it keeps running), or cancel."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label

from naist_dask_tui.words import stop_deletes


def quit_question(snapshot, alive: int, *, computing: bool = False) -> str:
    """What the quit dialog says: what a stop deletes, that detaching keeps it, for how long."""
    name = (snapshot.name if snapshot is not None else None) or "this cluster"
    backend = snapshot.backend if snapshot is not None else "sge"
    others = max(0, (snapshot.screens if snapshot is not None else 1) - 1)
    lines = [
        f"Stop {name}? That deletes {stop_deletes(backend, alive)}"
        + (f" ({others} other screen(s) are attached to it)." if others else "."),
        f"Or detach: the cluster keeps running; `naist-dask-tui attach {name}` comes back.",
    ]
    idle = snapshot.idle_timeout if snapshot is not None else None
    if idle:
        minutes = f"{idle / 60:g} min" if idle >= 60 else f"{idle:g} s"
        lines.append(f"Detached, it stops by itself after {minutes} with no screen, no computation and no task.")
    if computing:
        lines.append("A computation is running in the compute pane: stopping cancels it; "
                     "detached, it goes on and its result waits for you.")
    return "\n".join(lines)


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
