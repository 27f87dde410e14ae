"""No job outlives the console: signals and interpreter exit both end in ``close()``.

SIGTERM (kill, a batch system), SIGHUP (the SSH connection dropped; ``atexit`` handlers do not
run on it by default) and SIGINT all become a clean stop. ``close`` is also registered with
``atexit`` as the last line of defence; the controller's close is idempotent.
"""

from __future__ import annotations

import atexit
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)


class Stop(BaseException):
    """Raised in the main thread by a stop signal (a BaseException, like KeyboardInterrupt,
    so that ``except Exception`` in user code cannot swallow it)."""

    def __init__(self, signum: int):
        self.signum = signum
        super().__init__(signal.Signals(signum).name)


@contextmanager
def close_on_exit(
    close: Callable[[], None],
    on_signal: Callable[[int], None] | None = None,
) -> Iterator[threading.Event]:
    """Run ``close`` when the block ends, however it ends.

    A stop signal sets the yielded event and calls ``on_signal(signum)`` if given (e.g. to ask
    an app to exit); without ``on_signal`` it raises :class:`Stop` in the main thread.
    Previous handlers are restored afterwards. Must be entered from the main thread.
    """
    stopped = threading.Event()

    def handler(signum, frame):
        stopped.set()
        # Ignore repeats (a second SIGHUP as the terminal goes away): the first one is enough.
        for sig in STOP_SIGNALS:
            signal.signal(sig, signal.SIG_IGN)
        if on_signal is not None:
            on_signal(signum)
        else:
            raise Stop(signum)

    previous = {sig: signal.signal(sig, handler) for sig in STOP_SIGNALS}
    atexit.register(close)
    try:
        yield stopped
    except Stop:
        pass
    finally:
        try:
            close()
        finally:
            atexit.unregister(close)
            for sig, old in previous.items():
                signal.signal(sig, old)
