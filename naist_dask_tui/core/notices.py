"""Things the controller wants the user to know ("job 123 left the queue ..."), kept bounded.

Iterating gives the texts (newest last). Each notice also has a sequence number and a time,
so that a screen attaching later shows only what happened while it watches, and a keeper can
send its screens only the notices they have not seen.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterator


class NoticeLog:
    def __init__(self, maxlen: int = 50) -> None:
        self._items: deque[tuple[int, float, str]] = deque(maxlen=maxlen)
        self._seq = 0
        self._lock = threading.Lock()

    def append(self, text: str) -> None:
        with self._lock:
            self._seq += 1
            self._items.append((self._seq, time.time(), text))

    def __iter__(self) -> Iterator[str]:
        with self._lock:
            items = list(self._items)
        return iter([text for _, _, text in items])

    def __len__(self) -> int:
        return len(self._items)

    @property
    def last_seq(self) -> int:
        return self._seq

    def entries(self, after: int = 0) -> list[tuple[int, float, str]]:
        """(seq, time, text) of the notices after sequence number ``after``."""
        with self._lock:
            return [item for item in self._items if item[0] > after]
