"""``run_console(settings)``: start the cluster, run the screen, always delete the jobs.

Every way out ends in ``controller.close()``: ``q``, Ctrl+C (a key in the raw terminal, bound
to quit), SIGTERM, SIGHUP (the SSH connection dropped), an exception in the app. The app turns
SIGTERM/SIGHUP into ``exit()`` while it runs (its own loop handlers); ``close_on_exit`` covers
the moments before and after, ignores repeats while closing, and registers ``atexit``.
"""

from __future__ import annotations

import signal
import sys
from typing import Any, Callable, TextIO

PROG = "naist-dask-tui"


def _say(text: str, out: TextIO) -> None:
    # After SIGHUP the terminal is gone: writing may fail, which must not stop the cleanup.
    try:
        print(text, file=out, flush=True)
    except (OSError, ValueError):
        pass


def run_console(
    settings: Any,
    *,
    controller_factory: Callable[[Any], Any] | None = None,
    err: TextIO | None = None,
) -> int:
    from naist_dask_tui.core.shutdown import Stop, close_on_exit

    err = err or sys.stderr
    if controller_factory is None:
        from naist_dask_tui.core.cluster import ClusterController

        controller_factory = ClusterController
    controller = controller_factory(settings)
    app = None
    code = 0

    def on_signal(signum: int) -> None:
        name = signal.Signals(signum).name
        if app is not None and app.exit_threadsafe(128 + signum, reason=name):
            return
        raise Stop(signum)  # not in the app (starting or closing): unwind to the finally

    def close() -> None:
        jobs = getattr(controller, "requested_jobs", 0)
        backend = getattr(controller, "backend", None)
        if backend == "sge":
            _say(f"{PROG}: closing the cluster and deleting its SGE jobs ({jobs} requested)…", err)
        controller.close()
        if backend == "sge":
            _say(f"{PROG}: done, no job of this console is left in the queue.", err)

    with close_on_exit(close, on_signal) as stopped:
        try:
            controller.start()
        except Stop:
            raise
        except Exception as exc:
            _say(f"{PROG}: could not start the cluster: {exc}", err)
            return 1
        for note in list(getattr(controller, "notices", ())):
            _say(f"{PROG}: note: {note}", err)
        from naist_dask_tui.app import make_app

        app = make_app(settings, controller, handle_signals=True)
        result = app.run()
        code = result if isinstance(result, int) else 0
        if app.exit_reason:
            _say(f"{PROG}: {app.exit_reason}: closing", err)
        if app.return_code not in (None, 0) and not app.exit_reason:
            code = app.return_code or 1
    if stopped.is_set() and code == 0:
        code = 1
    return code
