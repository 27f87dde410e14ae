"""The keeper: one background process per cluster, so that the cluster outlives the terminal.

It owns the :class:`ClusterController` (SGECluster or LocalCluster, graceful scaling, safe adapt,
the qstat reader, lifetime replacement, the no-orphans guarantees) and runs its reconcile loop
whether or not a screen is attached. Screens, and the user's own scripts and notebooks, are
clients of its scheduler, with the same mutual TLS as the workers:

* **control**: a handler on the scheduler (``ndtui_control_1``) for scale, adapt on/off, retire
  a job, the job view, a job's log, detach and stop. Blocking controller calls run in the
  keeper's threads, never on the scheduler's event loop.
* **state**: what screens show besides the workers (job rows, requested jobs, adaptive bounds,
  notices, screens attached, idle time) is published as a versioned dict and rides on the
  probe's reply (``scheduler_plugin.KEEPER_EXTENSION``): a screen gets it only when it changed.
* **idle stop**: no screen attached, no computation and no task for ``idle_timeout``: the keeper
  closes the cluster, deletes its jobs, and says why in its log.

``python -m naist_dask_tui.core.keeper --dir DIR`` is the daemon (started by the console, see
:mod:`launch`): stdin from /dev/null, stdout and stderr to its log file, its own session, so a
dropped SSH connection does not reach it. SIGTERM, SIGHUP and SIGINT close the cluster and
delete every job, pending ones included. ``--headless`` runs the same keeper in the foreground.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

from naist_dask_tui import __version__
from naist_dask_tui.core import registry
from naist_dask_tui.core.control import CONTROL_HANDLER, Capabilities
from naist_dask_tui.core.errors import ControllerError
from naist_dask_tui.core.jobnames import short_hostname
from naist_dask_tui.core.postmortem import read_piece
from naist_dask_tui.core.scheduler_plugin import KEEPER_EXTENSION
from naist_dask_tui.core.snapshot import ConsoleSnapshot, job_row_to_wire
from naist_dask_tui.core.stateboard import StateBoard

logger = logging.getLogger("naist_dask_tui.keeper")

LOG_CHUNK = 64 * 1024
# What a screen attached to a keeper may do.
KEEPER_CAPABILITIES = Capabilities.all()
# The control actions after which the keeper publishes its state for the screens at once
# (the others only read, or their effect shows through the runner's status).
_CHANGES_STATE = frozenset(("scale", "adapt", "adapt_off", "retire", "delete_job", "clear_error", "detach",
                            "stop", "compute_run"))


class Keeper:
    """Owns one cluster; see the module docstring. ``start()``, then ``wait()`` until
    ``request_stop()`` (a signal, the idle rule, a screen's stop), then ``close()``."""

    def __init__(self, settings, directory: Path, *, controller=None, log_path: str | None = None):
        from naist_dask_tui.core.cluster import ClusterController

        self.settings = settings
        self.directory = Path(directory)
        self.name = self.directory.name
        self.controller = controller if controller is not None else ClusterController(settings)
        self.log_path = log_path
        self.idle_timeout: float | None = settings.idle_timeout_seconds
        self.stop_reason: str | None = None
        self.monitor = None
        self.record: registry.ClusterRecord | None = None
        self.last_snapshot: ConsoleSnapshot | None = None
        self._stop = threading.Event()
        self._closed = False
        self._idle_since: float | None = None
        self.board = StateBoard()
        # a screen following a run holds one for up to a poll interval (status waits for the end)
        self._executor = ThreadPoolExecutor(4, thread_name_prefix="ndtui-control")
        self.runner = None  # the compute pane's runs (runner.py), started once the cluster runs
        self._compute: dict[str, Any] = {}
        self._runner_polled: float | None = None
        self._thread: threading.Thread | None = None
        self._scheduler = None
        self._actions: dict[str, Callable[..., Any]] = {
            "state": self._act_state,
            "scale": self._act_scale,
            "adapt": self._act_adapt,
            "adapt_off": self._act_adapt_off,
            "retire": self._act_retire,
            "log": self._act_log,
            "detach": self._act_detach,
            "stop": self._act_stop,
            "compute_run": self._act_compute_run,
            "compute_cancel": self._act_compute_cancel,
            "compute_status": self._act_compute_status,
            # a job's post-mortem and what may be done with an error job (issue 10)
            "postmortem": lambda job: self.controller.postmortem(str(job)),
            "delete_job": self._act_delete_job,
            "clear_error": lambda job: self.controller.clear_job_error(str(job)),
        }

    # ------------------------------------------------------------------ life cycle
    def start(self) -> None:
        pid, create_time = registry.own_identity()
        c = self.controller
        self.record = registry.ClusterRecord(
            name=self.name,
            directory=self.directory,
            pid=pid,
            create_time=create_time,
            host=short_hostname(),
            user=_user(),
            backend=c.backend,
            state="starting",
            started=time.time(),
            log=self.log_path,
            tls=bool(self.settings.tls),
            idle_timeout=self.idle_timeout,
            profile=self.settings.profile,
            version=__version__,
        )
        registry.write_record(self.record)
        logger.info("keeper %s (pid %s) starting a %s cluster", self.name, pid, c.backend)
        try:
            c.start()
            if c.credentials is not None:
                c.credentials.write_client_files(self.directory)
            self._install(c.cluster.scheduler)
            self.monitor = c.make_monitor()
            self._publish()
        except BaseException as exc:
            self._write(state="failed", error=str(exc) or type(exc).__name__)
            logger.error("start failed: %s", exc)
            self._close_controller()
            raise
        self._make_runner()
        self._write(state="running", address=c.scheduler_address, job_name=c.job_name)
        logger.info("cluster %s running at %s", self.name, c.scheduler_address)
        self._thread = threading.Thread(target=self._loop, name="ndtui-keeper", daemon=True)
        self._thread.start()

    def _make_runner(self) -> None:
        from naist_dask_tui.core.runner import Runner

        c = self.controller
        client_dir = str(self.directory) if c.credentials is not None else None
        self.runner = Runner(c.scheduler_address, client_dir, self.name, c.backend,
                             notify=c.notices.append, fuse_roots=bool(self.settings.fuse_roots))
        # Started now, in the background: the first run from a screen does not wait for it,
        # and the cluster is "running" for its screens meanwhile.
        threading.Thread(target=self._start_runner, name="ndtui-runner-start", daemon=True).start()

    def _start_runner(self) -> None:
        try:
            self.runner.start()
        except Exception as exc:
            logger.warning("compute runner did not start (it is tried again on the first run): %s", exc)

    def request_stop(self, reason: str) -> None:
        if not self._stop.is_set():
            self.stop_reason = reason
            logger.info("stopping: %s", reason)
            self._stop.set()

    def wait(self, timeout: float | None = None) -> bool:
        """True once a stop was requested."""
        return self._stop.wait(timeout)

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def close(self) -> None:
        """Close the cluster (every job deleted) and remove the record. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        if self.record is not None and self.record.state != "failed":
            self._write(state="stopping")
        self._publish()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self.runner is not None:
            run = self.runner.running
            if self.runner.stop():
                logger.info("cancelled the running computation (run %s) before stopping",
                            run.get("number") if run else "?")
        self._close_controller()
        self._executor.shutdown(wait=False, cancel_futures=True)
        registry.release(self.directory)
        logger.info("closed: %s; every job of this cluster deleted", self.stop_reason or "stopped")

    def _close_controller(self) -> None:
        scheduler = self._scheduler
        if scheduler is not None:
            scheduler.handlers.pop(CONTROL_HANDLER, None)
            scheduler.extensions.pop(KEEPER_EXTENSION, None)
        try:
            self.controller.close()
        except Exception:
            logger.exception("closing the cluster failed")

    def _write(self, **changes: Any) -> None:
        assert self.record is not None
        self.record = replace(self.record, **changes)
        try:
            registry.write_record(self.record)
        except OSError as exc:
            logger.warning("cannot write %s: %s", self.directory, exc)

    # ------------------------------------------------------------------ the loop
    def _loop(self) -> None:
        interval = float(self.settings.refresh_interval or 1.0)
        last_status = None
        while not self._stop.is_set():
            t0 = time.monotonic()
            try:
                snap = self.monitor.poll()  # probe + qstat + the jobs' reconciliation
                self.last_snapshot = snap
                self._poll_runner()
                self._check_idle(snap)
                self._publish()
                status = self._status(snap)
                if status != last_status:
                    registry.write_status(self.directory, status)
                    last_status = status
            except Exception:
                logger.exception("keeper loop step failed")
            self._stop.wait(max(0.05, interval - (time.monotonic() - t0)))

    def screen_count(self, now: float | None = None) -> int:
        return self.board.screen_count(now)

    def _poll_runner(self) -> None:
        runner = self.runner
        if runner is None or not runner.alive():
            self._compute = {}
            return
        try:
            status = runner.status(since=1 << 30)  # the run going and the counts, no results
        except Exception as exc:
            # a runner too busy to answer (user code holding the GIL) is most likely running:
            # what it said last stands, so the idle rule does not stop a computation
            logger.warning("compute runner status failed: %s", exc)
            return
        running = status.get("running")
        last = status.get("last", 0)
        started = self._compute.get("run_started")
        if running:
            started = running.get("started_at", started)
        elif last != self._compute.get("last", last):  # a run began and ended between two polls
            started = self._runner_polled
        self._runner_polled = time.time()
        self._compute = {
            "running": running["number"] if running else None,
            "last": last,
            "count": status.get("count", 0),
            "pid": runner.pid,
            "run_started": started,  # the current (or last) run's start: its failures are since then
        }

    def runs_active(self) -> int:
        """Compute-pane runs going in the runner (they hold the cluster past its idle timeout)."""
        return 1 if self._compute.get("running") else 0

    def _check_idle(self, snap: ConsoleSnapshot) -> None:
        now = time.time()
        tasks = snap.cluster.tasks if snap.cluster is not None else None
        # A scheduler that did not answer tells nothing: never stop on missing data.
        busy_tasks = tasks is None or (tasks.processing + tasks.queued + tasks.waiting + tasks.no_worker) > 0
        if self.screen_count(now) or self.runs_active() or busy_tasks:
            self._idle_since = None
            return
        if self._idle_since is None:
            self._idle_since = now
        if self.idle_timeout is not None and now - self._idle_since >= self.idle_timeout:
            self.request_stop(
                f"idle for {_duration(now - self._idle_since)} (idle timeout "
                f"{self.settings.idle_timeout}): no screen attached, no computation and no task"
            )

    def _status(self, snap: ConsoleSnapshot) -> dict[str, Any]:
        """The summary ``naist-dask-tui ls`` shows."""
        return {
            "requested": snap.requested_jobs,
            "jobs_running": snap.jobs_running,
            "jobs_pending": snap.jobs_pending,
            "workers": snap.cluster.n_workers if snap.cluster is not None else None,
            "screens": self.screen_count(),
            "idle_since": self._idle_since,
            "adaptive": list(snap.adaptive) if snap.adaptive else None,
            "computing": self._compute.get("running"),
        }

    # ------------------------------------------------------------------ state for screens
    def _publish(self) -> None:
        c = self.controller
        snap = self.last_snapshot
        body = {
            "name": self.name,
            "backend": c.backend,
            "address": c.scheduler_address if c.client is not None else "",
            "requested": c.requested_jobs,
            "adaptive": list(c.adaptive) if c.adaptive else None,
            "jobs": [job_row_to_wire(r) for r in snap.jobs] if snap is not None else [],
            "ended": [job_row_to_wire(r) for r in snap.ended] if snap is not None else [],
            "notices": [list(n) for n in c.notices.entries()],
            "error": snap.error if snap is not None else None,
            "screens": self.screen_count(),
            "idle_timeout": self.idle_timeout,
            "idle_since": self._idle_since,
            "dashboard_link": c.dashboard_link,
            "local_directory": getattr(c.settings, "local_directory", None),
            "capabilities": KEEPER_CAPABILITIES.to_wire(),
            "processes": c.processes,
            "stopping": self.stop_reason if self._stop.is_set() else None,
            "compute": dict(self._compute),
            "limits": c.limits.to_wire() if c.limits is not None else None,
        }
        self.board.publish(body)

    # ------------------------------------------------------------------ control handler
    def _install(self, scheduler) -> None:
        self._scheduler = scheduler
        scheduler.extensions[KEEPER_EXTENSION] = self.board

        async def ndtui_control_1(action: str = "", args: dict | None = None, token: str | None = None):
            fn = self._actions.get(action)
            if fn is None:
                return {"ok": False, "error": f"unknown control action {action!r}"}
            kwargs = dict(args or {})
            if action == "detach":
                kwargs["token"] = token
            loop = asyncio.get_running_loop()

            def call():
                result = fn(**kwargs)
                if action in _CHANGES_STATE:  # screens see it now, not at the keeper's next turn
                    self._publish()
                return result

            try:
                # Controller calls block (they wait on the cluster's own loop): never here.
                result = await loop.run_in_executor(self._executor, call)
            except (ControllerError, ValueError, TypeError) as exc:
                return {"ok": False, "error": str(exc) or type(exc).__name__}
            except Exception as exc:
                logger.exception("control action %s failed", action)
                return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
            return {"ok": True, "result": result}

        scheduler.handlers[CONTROL_HANDLER] = ndtui_control_1

    def _act_state(self) -> dict[str, Any]:
        return self.board.state

    def _act_scale(self, jobs: int) -> None:
        logger.info("scale to %s job(s) (asked by a client)", jobs)
        self.controller.scale(_whole(jobs, "jobs"))

    def _act_adapt(self, minimum: int, maximum: int) -> None:
        logger.info("adaptive scaling %s-%s (asked by a client)", minimum, maximum)
        self.controller.adapt(_whole(minimum, "minimum jobs"), _whole(maximum, "maximum jobs"))

    def _act_adapt_off(self) -> None:
        logger.info("adaptive scaling off (asked by a client)")
        self.controller.stop_adapt()

    def _act_retire(self, job: str) -> None:
        logger.info("retire job %s (asked by a client)", job)
        self.controller.retire_job(str(job))

    def _act_log(self, job: str, offset: int | None = None, limit: int = LOG_CHUNK) -> dict[str, Any]:
        """A piece of a job's output file: from ``offset`` (None: the last ``limit`` bytes)."""
        snap = self.last_snapshot
        rows = (*snap.jobs, *snap.ended) if snap is not None else ()
        row = next((r for r in rows if job in (r.job_id, r.name)), None)
        if row is None:
            raise ControllerError(f"no job {job!r} in this cluster")
        return read_piece(row.log_path, offset, limit)

    def _act_delete_job(self, job: str) -> None:
        logger.info("delete job %s (asked by a client)", job)
        self.controller.delete_job(str(job))

    def _act_detach(self, token: str | None = None) -> None:
        if token:
            self.board.detach(token)

    def _runner_or_error(self):
        if self.runner is None:
            raise ControllerError("this cluster has no compute runner")
        return self.runner

    def _act_compute_run(self, code: str, persist: bool = False) -> int:
        from naist_dask_tui.core.runner import RunnerError

        try:
            number = self._runner_or_error().run(str(code), bool(persist))
        except RunnerError as exc:
            raise ControllerError(str(exc)) from None
        self._poll_runner()
        return number

    def _act_compute_cancel(self) -> bool:
        from naist_dask_tui.core.runner import RunnerError

        try:
            return self._runner_or_error().cancel()
        except RunnerError as exc:
            raise ControllerError(str(exc)) from None

    def _act_compute_status(self, since: int = 0, wait: float = 0.0) -> dict[str, Any]:
        from naist_dask_tui.core.runner import RunnerError

        try:
            return self._runner_or_error().status(int(since), float(wait))
        except RunnerError as exc:
            raise ControllerError(str(exc)) from None

    def _act_stop(self, reason: str = "stopped from a screen") -> None:
        self.request_stop(str(reason))



def _whole(value: Any, label: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{label}: {value!r} is not a whole number")
    return value


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds / 3600:.1f} h"


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:
        return str(os.getuid())


# --------------------------------------------------------------------------------------------
# The daemon


def _configure_logging() -> None:
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("naist_dask_tui").setLevel(logging.INFO)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="naist-dask-tui keeper")
    parser.add_argument("--dir", required=True, help="the cluster's directory (claimed by the console)")
    parser.add_argument("--log", default=None, help="this keeper's log file (for the record)")
    args = parser.parse_args(argv)
    _configure_logging()
    from naist_dask_tui.core.settings_json import settings_from_json

    directory = Path(args.dir)
    settings = settings_from_json((directory / registry.SETTINGS).read_text(encoding="utf-8"))
    keeper = Keeper(settings, directory, log_path=args.log)

    def on_signal(signum, frame):
        keeper.request_stop(f"received {signal.Signals(signum).name}")

    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(sig, on_signal)
    try:
        keeper.start()
    except BaseException:
        return 1
    try:
        while not keeper.wait(1.0):
            pass
    finally:
        # A second signal while closing must not cut the cleanup short.
        for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
            signal.signal(sig, signal.SIG_IGN)
        keeper.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
