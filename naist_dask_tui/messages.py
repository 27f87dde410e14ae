"""Messages from thread workers back to the UI thread."""

from __future__ import annotations

from textual.message import Message

from naist_dask_tui.core.snapshot import ConsoleSnapshot


class SnapshotFetched(Message):
    """One poll's result; a newer one replaces an older one still in the queue."""

    def __init__(self, snapshot: ConsoleSnapshot) -> None:
        super().__init__()
        self.snapshot = snapshot

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, SnapshotFetched)


class ActionDone(Message):
    """A controller call (scale, adapt, retire) finished: ``text`` says what happened."""

    def __init__(self, action: str, text: str) -> None:
        super().__init__()
        self.action = action
        self.text = text


class ActionFailed(Message):
    """A controller call raised: ``text`` is the reason in words."""

    def __init__(self, action: str, text: str) -> None:
        super().__init__()
        self.action = action
        self.text = text


# ---- intents: the main screen asks, the app carries them out on the controller ----------------


class ScaleRequested(Message):
    """Ask for ``jobs`` jobs (a manual scale turns adaptive scaling off)."""

    def __init__(self, jobs: int) -> None:
        super().__init__()
        self.jobs = jobs


class AdaptRequested(Message):
    """Adaptive scaling between ``bounds`` = (min, max) jobs, or off when None."""

    def __init__(self, bounds: tuple[int, int] | None) -> None:
        super().__init__()
        self.bounds = bounds


class RetireRequested(Message):
    """Retire one job gracefully: ``target`` is its id or name, ``label`` how to say it."""

    def __init__(self, target: str, label: str) -> None:
        super().__init__()
        self.target = target
        self.label = label


class LeaveRequested(Message):
    """Close the screen: ``outcome`` is "stop" (the cluster and its jobs go), "detach" (the
    cluster keeps running without this screen) or "exit" (a cluster this console does not own)."""

    def __init__(self, outcome: str) -> None:
        super().__init__()
        self.outcome = outcome
