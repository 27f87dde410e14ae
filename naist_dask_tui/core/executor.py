"""One background thread running submitted calls in order, like ``ThreadPoolExecutor(1)``, but
a daemon: a pass stuck in a hung ``qsub`` must not keep the process alive at exit
(concurrent.futures joins its threads at interpreter exit)."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future


class DaemonExecutor:
    def __init__(self, name: str) -> None:
        self._name = name
        self._queue: deque[tuple[Future, Callable[[], object]]] = deque()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._shutdown = False

    def submit(self, fn: Callable[..., object], *args) -> Future:
        fut: Future = Future()
        with self._cond:
            if self._shutdown:
                fut.cancel()
                return fut
            self._queue.append((fut, lambda: fn(*args)))
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name=self._name, daemon=True)
                self._thread.start()
            self._cond.notify()
        return fut

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._shutdown:
                    self._cond.wait()
                if not self._queue:
                    return
                fut, call = self._queue.popleft()
            if not fut.set_running_or_notify_cancel():
                continue
            try:
                fut.set_result(call())
            except BaseException as exc:  # noqa: BLE001 - handed to the future
                fut.set_exception(exc)

    def shutdown(self, wait: bool = False, cancel_futures: bool = True) -> None:
        with self._cond:
            self._shutdown = True
            if cancel_futures:
                while self._queue:
                    self._queue.popleft()[0].cancel()
            self._cond.notify_all()
