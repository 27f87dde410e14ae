"""Waiting in tests for something a real cluster does in its own time (no fixed sleeps)."""

from __future__ import annotations

import time


def wait_until(pred, timeout: float = 60.0, interval: float = 0.1, what: str = "condition"):
    """``pred()``'s first true value within ``timeout`` seconds, or AssertionError naming
    ``what`` and the last value seen."""
    end = time.time() + timeout
    last = None
    while time.time() < end:
        last = pred()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})")
