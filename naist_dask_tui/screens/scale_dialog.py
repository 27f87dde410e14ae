"""Dialogs that ask for numbers: an exact job count, adaptive min/max.

They validate before anything is sent: a bad entry shows a message in the dialog and the
dialog stays open.
"""

from __future__ import annotations

from typing import Any, TypeVar

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

T = TypeVar("T")


def parse_job_count(text: str, *, field: str = "job count") -> int:
    """A non-negative whole number, or ValueError with a sentence for the user."""
    text = text.strip()
    if not text:
        raise ValueError(f"Type a {field}: a whole number such as 4.")
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a whole number: type a {field} such as 4.") from None
    if value < 0:
        raise ValueError(f"The {field} cannot be negative (0 deletes every job).")
    return value


def scale_problem(limits: Any, jobs: int, what: str = "scale") -> str | None:
    """The one line refusing ``jobs`` (above ``max_jobs``), or None when it is allowed."""
    if limits is None:
        return None
    try:
        limits.check(jobs, what)
    except ValueError as exc:
        return str(exc)
    return None


def scale_question(limits: Any, current: int, jobs: int, *, stepwise: bool = False) -> str | None:
    """The question to ask before scaling from ``current`` to ``jobs``, or None.

    Scaling to 0 deletes every job's data. Scaling above what the queue runs at once leaves
    the rest pending: asked each time for an exact count, and once, when the line is crossed,
    for one job more at a time (``stepwise``)."""
    if jobs == 0 and current > 0:
        return (
            f"Scale to 0 jobs? All {current} job(s) are deleted and the data their workers "
            "hold is lost."
        )
    if limits is None or jobs <= current:
        return None
    waiting = limits.pending(jobs)
    if not waiting or (stepwise and limits.pending(current)):
        return None
    return f"Scale to {jobs} jobs? {limits.pend_sentence(jobs)} until others finish."


class _NumberDialog(ModalScreen[T]):
    """What both dialogs share: validate on enter or OK, show the error and stay open, or
    dismiss with the value; escape or Cancel dismiss with None."""

    def _read(self) -> T:
        """The dialog's value, or ValueError with a sentence for the user."""
        raise NotImplementedError

    def _submit(self) -> None:
        error = self.query_one("#error", Static)
        try:
            value = self._read()
        except ValueError as exc:
            error.update(str(exc))
            error.display = True
            return
        self.dismiss(value)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "ok":
            self._submit()
        else:
            self.dismiss(None)

    def action_cancel(self) -> None:
        self.dismiss(None)


class ScaleDialog(_NumberDialog[int | None]):
    """Type an exact number of jobs."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="scale.cancel")]

    def __init__(self, current: int, limits: Any = None) -> None:
        super().__init__(classes="dialog-screen")
        self.current = current
        self.limits = limits

    def compose(self) -> ComposeResult:
        ceiling = f", at most {self.limits.max_jobs}" if self.limits is not None else ""
        with Vertical(classes="dialog"):
            yield Label(f"Scale to how many jobs? (now {self.current}{ceiling})")
            yield Input(str(self.current), placeholder="number of jobs", id="jobs")
            yield Static("", id="error", classes="error")
            with Horizontal(classes="buttons"):
                yield Button("Scale (enter)", variant="primary", id="ok")
                yield Button("Cancel (esc)", id="cancel")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def _read(self) -> int:
        jobs = parse_job_count(self.query_one("#jobs", Input).value)
        problem = scale_problem(self.limits, jobs)
        if problem:
            raise ValueError(problem)
        return jobs

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self._submit()


class AdaptDialog(_NumberDialog[tuple[int, int] | None]):
    """Adaptive scaling bounds, in jobs."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="adapt.cancel")]

    def __init__(self, minimum: int, maximum: int, limits: Any = None) -> None:
        super().__init__(classes="dialog-screen")
        self.minimum = minimum
        self.maximum = maximum
        self.limits = limits

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label("Adaptive scaling: keep between min and max jobs")
            with Horizontal(classes="fields"):
                yield Label("min", classes="field-label")
                yield Input(str(self.minimum), id="min")
                yield Label("max", classes="field-label")
                yield Input(str(self.maximum), id="max")
            yield Static("", id="error", classes="error")
            with Horizontal(classes="buttons"):
                yield Button("Start (enter)", variant="primary", id="ok")
                yield Button("Cancel (esc)", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#min", Input).focus()

    def _read(self) -> tuple[int, int]:
        lo = parse_job_count(self.query_one("#min", Input).value, field="minimum")
        hi = parse_job_count(self.query_one("#max", Input).value, field="maximum")
        if hi < lo:
            raise ValueError(f"The maximum ({hi}) must be at least the minimum ({lo}).")
        if hi == 0:
            raise ValueError("The maximum must be at least 1 job.")
        problem = scale_problem(self.limits, hi, "adaptive maximum")
        if problem:
            raise ValueError(problem)
        return lo, hi

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if event.input.id == "min":
            self.query_one("#max", Input).focus()
        else:
            self._submit()
