"""What a keeper publishes for its screens, and who is looking (see :mod:`keeper`)."""

from __future__ import annotations

import threading
import time
from typing import Any

SCREEN_TTL = 30.0  # seconds after its last poll that a screen still counts as attached


class StateBoard:
    """What the keeper publishes for its screens, and who is looking.

    ``publish(body)`` bumps the version when the body changed; ``state_for(token, version)``
    runs on the scheduler's event loop inside every screen's probe call, so it is a lookup:
    ``{"version": v}`` when the caller is up to date, the whole state otherwise. Each call also
    counts its caller as an attached screen for ``SCREEN_TTL`` seconds (until it detaches).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._screens: dict[str, float] = {}
        self._detached: set[str] = set()
        self._body: dict[str, Any] = {}
        self._state: tuple[int, dict[str, Any]] = (0, {"version": 0})

    def publish(self, body: dict[str, Any]) -> int:
        with self._lock:
            version = self._state[0]
            if body != self._body:
                version += 1
                self._body = body
                self._state = (version, {**body, "version": version})
            return version

    @property
    def state(self) -> dict[str, Any]:
        return self._state[1]

    def state_for(self, token: str | None, version: int) -> dict[str, Any]:
        if token is not None:
            now = time.time()
            with self._lock:
                if token not in self._detached:
                    self._screens[token] = now
        current, state = self._state
        return {"version": current} if version == current else state

    def detach(self, token: str) -> None:
        with self._lock:
            self._screens.pop(token, None)
            self._detached.add(token)

    def screen_count(self, now: float | None = None) -> int:
        now = time.time() if now is None else now
        with self._lock:
            for token in [t for t, seen in self._screens.items() if now - seen > SCREEN_TTL]:
                del self._screens[token]
            return len(self._screens)
