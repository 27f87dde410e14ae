"""A run's output: what its thread prints goes to its own bounded buffer, nothing to the terminal.

``sys.stdout`` and ``sys.stderr`` are replaced, while runs are going, by routers that send a
run thread's writes to that run's :class:`BoundedText` and everything else to the stream that
was there before (the screen's own capture, a terminal).

Nothing here imports textual.
"""

from __future__ import annotations

import io
import sys
import threading
from collections import deque
from typing import Any

DEFAULT_MAX_OUTPUT_CHARS = 64 * 1024


class BoundedText:
    """Keeps the first quarter and the last three quarters of ``limit`` characters written."""

    def __init__(self, limit: int = DEFAULT_MAX_OUTPUT_CHARS) -> None:
        self.head_limit = limit // 4
        self.tail_limit = limit - self.head_limit
        self._head: list[str] = []
        self._head_len = 0
        self._tail: deque[str] = deque()
        self._tail_len = 0
        self.cut = 0
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            text = str(text)
        n = len(text)
        with self._lock:
            if self._head_len < self.head_limit:
                take = text[: self.head_limit - self._head_len]
                self._head.append(take)
                self._head_len += len(take)
                text = text[len(take) :]
            if text:
                if len(text) > self.tail_limit:
                    self.cut += len(text) - self.tail_limit
                    text = text[-self.tail_limit :]
                self._tail.append(text)
                self._tail_len += len(text)
                while self._tail_len > self.tail_limit:
                    excess = self._tail_len - self.tail_limit
                    first = self._tail[0]
                    if len(first) <= excess:
                        self._tail.popleft()
                        self._tail_len -= len(first)
                        self.cut += len(first)
                    else:
                        self._tail[0] = first[excess:]
                        self._tail_len -= excess
                        self.cut += excess
        return n

    def getvalue(self) -> str:
        with self._lock:
            head = "".join(self._head)
            tail = "".join(self._tail)
            if self.cut:
                return f"{head}\n[... {self.cut:,} characters of output cut ...]\n{tail}"
            return head + tail


class StreamRouter(io.TextIOBase):
    """Stands in for sys.stdout / sys.stderr: writes from a run's thread go to its buffer,
    everything else to the stream that was there before (the UI's own capture, a terminal)."""

    def __init__(self, fallback: Any) -> None:
        super().__init__()
        self.fallback = fallback
        self.targets: dict[int, BoundedText] = {}

    def write(self, text: str) -> int:  # type: ignore[override]
        target = self.targets.get(threading.get_ident())
        if target is not None:
            return target.write(text)
        return self.fallback.write(text)

    def flush(self) -> None:
        if threading.get_ident() not in self.targets:
            try:
                self.fallback.flush()
            except Exception:
                pass

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self.fallback, "encoding", "utf-8") or "utf-8"


_router_lock = threading.Lock()


def route_thread_output(ident: int, buffer: BoundedText) -> None:
    with _router_lock:
        for name in ("stdout", "stderr"):
            stream = getattr(sys, name)
            if not isinstance(stream, StreamRouter):
                stream = StreamRouter(stream)
                setattr(sys, name, stream)
            stream.targets[ident] = buffer


def unroute_thread_output(ident: int) -> None:
    with _router_lock:
        for name in ("stdout", "stderr"):
            stream = getattr(sys, name)
            if isinstance(stream, StreamRouter):
                stream.targets.pop(ident, None)
                if not stream.targets:
                    setattr(sys, name, stream.fallback)
