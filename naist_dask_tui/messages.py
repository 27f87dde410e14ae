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
