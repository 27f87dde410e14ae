"""Waiting in tests for something a real cluster does in its own time (no fixed sleeps)."""

from __future__ import annotations

import contextlib
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


CLOSE_BOUND = 20.0  # seconds: a close must end within this, whatever state the cluster is in


@contextlib.contextmanager
def closed_within(controller, seconds: float = CLOSE_BOUND):
    """Run the block, then ``controller.close()`` (also when the block fails) and check that it
    took less than ``seconds``."""
    try:
        yield controller
    finally:
        t0 = time.monotonic()
        controller.close()
        took = time.monotonic() - t0
    assert took < seconds, f"close took {took:.1f} s"
