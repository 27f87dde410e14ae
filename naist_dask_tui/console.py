"""Run the screen on a cluster, and do what the user chose when it closes.

* :func:`run_attached`: the screen of a cluster kept by a keeper process (the normal case). It
  ends in a *detach* (``d``, the quit dialog's detach, a dropped SSH connection: SIGHUP, or
  SIGTERM: the cluster keeps running) or a *stop* (the quit dialog's stop, a second Ctrl+C:
  the keeper deletes every job and exits, and this waits for it).
* :func:`run_console`: a cluster in this process (``--attach ADDRESS``: watch only; tests).
  Every way out ends in ``controller.close()``.

While the screen is up, every log record goes to the screen's log file, not to the terminal.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable, Sequence
from typing import Any, TextIO

PROG = "naist-dask-tui"


def _say(text: str, out: TextIO) -> None:
    # After SIGHUP the terminal is gone: writing may fail, which must not stop what follows.
    try:
        print(text, file=out, flush=True)
    except (OSError, ValueError):
        pass


class _GoneTerminalSafe:
    """The terminal stream Textual writes to, minus the error of a terminal that went away.

    Textual's output thread dies on the first write that fails (EIO once an SSH connection or
    a tmux server is gone); its queue then fills and the app's exit blocks for ever on it, so
    the screen never detaches (or a local cluster's jobs are never deleted). Writes to a gone
    terminal are dropped instead; everything else is the real stream."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self.gone = False

    def write(self, text: str) -> int:
        if not self.gone:
            try:
                return self._stream.write(text)
            except (OSError, ValueError):
                self.gone = True
        return len(text)

    def flush(self) -> None:
        if not self.gone:
            try:
                self._stream.flush()
            except (OSError, ValueError):
                self.gone = True

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _run_app(settings: Any, controller: Any, notes: Sequence[str] = ()) -> Any:
    from naist_dask_tui.app import make_app
    from naist_dask_tui.core import logcapture

    app = make_app(settings, controller, handle_signals=True, notes=notes)
    logcapture.log_to_file()
    real = sys.__stderr__
    sys.__stderr__ = _GoneTerminalSafe(real)  # Textual's driver writes the screen here
    try:
        app.run()
    finally:
        sys.__stderr__ = real
    # Logging stays in the file for the rest of the process (a screen's process ends after
    # this): a client of a cluster that just stopped logs its reconnect attempts, even at
    # exit, and they are nothing for the terminal. What the user must read is printed.
    return app


def _minutes(seconds: float | None) -> str:
    if not seconds:
        return ""
    return f"{seconds / 60:g} min" if seconds >= 60 else f"{seconds:g} s"


def run_attached(
    settings: Any, controller: Any, *, notes: Sequence[str] = (), err: TextIO | None = None
) -> int:
    """The screen of a keeper's cluster (a ``RemoteController``, connected or not: the screen
    paints first and connects, or waits for a keeper still starting, on its first poll).
    Returns the exit status. ``notes`` are shown once the screen is up."""
    err = err or sys.stderr
    name = controller.name
    # A signal before the app installs its own handlers detaches too; once the screen is gone,
    # one (the terminal closing) must not cut short what follows (a stop waits for the keeper).
    previous = {
        sig: signal.signal(sig, signal.default_int_handler) for sig in (signal.SIGHUP, signal.SIGTERM)
    }
    try:
        app = _run_app(settings, controller, notes)
    except KeyboardInterrupt:
        app = None
    finally:
        for sig in previous:
            signal.signal(sig, signal.SIG_IGN)
    outcome = app.outcome if app is not None and app.outcome else "detach"
    code = 0
    if outcome == "failed":
        _say(f"{PROG}: error: {app.exit_reason}", err)
        return 1
    if app is not None and app.exit_reason:
        _say(f"{PROG}: {app.exit_reason}", err)
        code = app.return_code or 0
    if outcome == "exit" or controller.gone:
        controller.close()
        log = controller.log_files()[0][1] if controller.log_files() else "-"
        _say(f"{PROG}: cluster {name} is gone (its keeper exited); its log: {log}", err)
    elif outcome == "stop":
        jobs = controller.requested_jobs
        what = "SGE jobs" if controller.backend == "sge" else "workers"
        _say(f"{PROG}: stopping cluster {name} and deleting its {what} ({jobs} requested)…", err)
        _say(f"{PROG}: {controller.stop_cluster()}; no job of it is left in the queue.", err)
    else:
        controller.detach()
        controller.close()
        idle = settings.idle_timeout_seconds if controller.record is None else controller.record.idle_timeout
        _say(
            f"{PROG}: detached; cluster {name} keeps running. "
            f"Back to it: {PROG} attach {name}   stop it: {PROG} stop {name}"
            + (
                f"\n{PROG}: it stops by itself after {_minutes(idle)} with no screen, "
                "no computation and no task."
                if idle
                else ""
            ),
            err,
        )
    for sig, old in previous.items():
        signal.signal(sig, old)
    return code


def run_console(
    settings: Any,
    *,
    controller_factory: Callable[[Any], Any] | None = None,
    err: TextIO | None = None,
) -> int:
    """A cluster in this process (``--attach ADDRESS``; tests): the screen, then close()."""
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
        backend = getattr(controller, "backend", None)
        if backend == "sge":
            jobs = controller.requested_jobs
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
        for note in list(controller.notices):
            _say(f"{PROG}: note: {note}", err)
        app = _run_app(settings, controller)
        result = app.return_code
        code = result if isinstance(result, int) else 0
        if app.exit_reason:
            _say(f"{PROG}: {app.exit_reason}: closing", err)
    from naist_dask_tui.core import logcapture

    logcapture.restore()
    if stopped.is_set() and code == 0:
        code = 1
    return code
