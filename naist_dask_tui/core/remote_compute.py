"""The compute pane's session when the runs live in the keeper's runner (see :mod:`runner`).

It speaks the pane's session interface (``run``, ``progress``, ``cancel``, ``snippets``,
``run_count``) over the keeper's control handler, and adds what a pane needs to show runs it
did not start: :meth:`status` (the run going, with its progress, and the results since a
number), so a screen attaching mid-run follows it and one attaching later shows its result.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from naist_dask_tui.core.runner import progress_from_wire, result_from_wire

POLL_INTERVAL = 0.25  # s, while a run this pane follows is going


class RemoteComputeSession:
    """``controller``: a :class:`~naist_dask_tui.core.remote.RemoteController`."""

    records_history = False  # the runner writes history.jsonl, not the screen

    def __init__(self, controller, *, poll_interval: float = POLL_INTERVAL) -> None:
        self.controller = controller
        self.poll_interval = poll_interval
        self._progress = None
        self._count = 0
        self._detached = threading.Event()
        self.running_number: int | None = None

    # -- the pane's interface ----------------------------------------------------------------
    @property
    def run_count(self) -> int:
        return self._count

    @property
    def is_local(self) -> bool:
        return self.controller.backend == "local"

    def snippets(self):
        from naist_dask_tui.core.compute import snippets

        return snippets(full=not self.is_local)

    def progress(self):
        return self._progress

    def cancel(self) -> bool:
        try:
            return bool(self.controller._control("compute_cancel"))
        except Exception:
            return False

    def run(self, code: str, *, persist: bool = False):
        """Start a run in the runner and follow it to its end (blocks: call from a thread)."""
        from naist_dask_tui.core.compute import RunResult

        try:
            self.controller.connect()
            number = int(self.controller._control("compute_run", code=code, persist=persist))
        except Exception as exc:
            return RunResult(number=self._count + 1, code=code, ok=False, error=str(exc), started_at=time.time())
        return self.follow(number)

    def detach(self) -> None:
        """The screen is going: stop following (the run itself goes on in the runner)."""
        self._detached.set()

    # -- runs started elsewhere --------------------------------------------------------------
    def status(self, since: int = 0, wait: float = 0.0) -> dict[str, Any]:
        """The runner's status: ``running`` (number, code, started_at, persist, progress),
        ``results`` (RunResult, numbers > since), ``count``. ``wait``: when a run is going,
        up to that long for it to end first (the answer then carries its result)."""
        self.controller.connect()
        raw = self.controller._control("compute_status", since=since, wait=wait)
        self._count = int(raw.get("count") or 0)
        running = raw.get("running")
        if running:
            running = dict(running)
            running["progress"] = progress_from_wire(running.get("progress"))
            self._progress = running["progress"]
        return {
            "running": running,
            "results": [result_from_wire(r) for r in raw.get("results") or ()],
            "count": self._count,
            "alive": raw.get("alive", True),
            "death": raw.get("death"),
        }

    def follow(self, number: int):
        """Wait for run ``number`` to end (it may have been started by another screen)."""
        from naist_dask_tui.core.compute import RunResult

        self.running_number = number
        unknown = 0
        try:
            while not self._detached.is_set():
                asked = time.monotonic()
                try:
                    status = self.status(since=number - 1, wait=self.poll_interval)
                except Exception as exc:
                    return RunResult(number=number, code="", ok=False,
                                     error=f"lost the cluster's runner while following run {number}: {exc}")
                for result in status["results"]:
                    if result.number == number:
                        self._progress = result.progress or self._progress
                        return result
                running = status["running"]
                if running is None or running.get("number") != number:
                    unknown += 1
                    if not status["alive"] and status.get("death"):
                        return RunResult(number=number, code="", ok=False, error=status["death"])
                    if not status["alive"] or unknown > 8:
                        return RunResult(
                            number=number, code="", ok=False,
                            error=f"run {number} is no longer known to the cluster's runner (it "
                            "stopped or was started again); see the keeper's log (L)",
                        )
                else:
                    unknown = 0
                # the status waited for the run already; sleep only what it did not
                self._detached.wait(max(0.0, self.poll_interval - (time.monotonic() - asked)))
            return RunResult(number=number, code="", ok=False,
                             error=f"detached: run {number} goes on in the cluster's runner")
        finally:
            self.running_number = None
