"""The screen's side of a keeper: intents over the scheduler's RPC, state from the probe's reply.

:class:`RemoteController` connects to a keeper's scheduler with the cluster's client
credentials and sends intents to its control handler; :class:`RemoteMonitor` builds each
refresh from one probe call that also brings the keeper's state when it changed. Any number of
screens may attach to one keeper; each sees what the others did within one refresh.

Nothing here connects (or imports distributed) until the first poll: the screen paints first,
and a keeper still starting is waited for off the UI thread.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from typing import Any

from naist_dask_tui.core import registry
from naist_dask_tui.core.control import CONTROL_HANDLER, Capabilities
from naist_dask_tui.core.errors import ControllerError
from naist_dask_tui.core.snapshot import ConsoleSnapshot, JobRow, job_row_from_wire

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT = 15.0
CONTROL_TIMEOUT = 60.0
NOTICE_GRACE = 5.0  # seconds before attaching whose notices a screen still shows


class RemoteController:
    """A cluster kept by a keeper process, seen from a screen (or any client).

    Give it a running keeper's ``record``, or the ``launch`` of one that is starting; it
    connects on :meth:`connect` (the monitor's first poll), not before."""

    def __init__(self, record: registry.ClusterRecord | None = None, *, launch=None) -> None:
        if record is None and launch is None:
            raise ValueError("a record or a launch")
        self.record = record
        self.launch = launch
        self.name = record.name if record is not None else launch.name
        self.backend = record.backend if record is not None else launch.backend
        self.token = uuid.uuid4().hex  # this screen, as the keeper counts screens
        self.attached_at = time.time()
        self._state: dict[str, Any] = {}
        self._rows: tuple[JobRow, ...] = ()
        self._ended: tuple[JobRow, ...] = ()
        self._diagnostics = None
        self._job_ids: dict[str, str] = {}
        self._requested: int | None = None
        self.gone = False  # its keeper exited: nothing left to stop or detach from
        self.client = None
        self.capabilities = Capabilities.all()

    def connect(self) -> None:
        """Wait for a starting keeper (its start error is raised as KeeperStartError), connect
        with the cluster's client credentials, and take its state. Blocks; idempotent."""
        if self.client is not None:
            return
        if self.record is None or self.record.state != "running":
            self.record = self.launch.wait()
            self.attached_at = time.time()
        from distributed import Client

        client = Client(self.record.address, security=self.record.security(), timeout=CONNECT_TIMEOUT)
        self.client = client
        try:
            self.apply_state(self._control("state"))  # a keeper that does not answer fails here
        except BaseException:
            self.client = None
            client.close()
            raise

    @classmethod
    def attached(cls, record: registry.ClusterRecord) -> RemoteController:
        """Connected now (scripts and tests; the screen connects on its first poll)."""
        controller = cls(record)
        controller.connect()
        return controller

    # ------------------------------------------------------------------ state
    @property
    def scheduler_address(self) -> str:
        return (self.record.address if self.record is not None else None) or ""

    @property
    def state(self) -> dict[str, Any]:
        return self._state

    def apply_state(self, state: dict[str, Any] | None) -> None:
        """Take the keeper's newest state (from the probe's reply or a control call)."""
        if not state or state.get("version", -1) == self._state.get("version"):
            return
        self._state = state
        self.capabilities = Capabilities.from_wire(state.get("capabilities"))
        rows = tuple(job_row_from_wire(r) for r in state.get("jobs") or ())
        self._rows = rows
        self._ended = tuple(job_row_from_wire(r) for r in state.get("ended") or ())
        self._job_ids = {r.name: r.job_id for r in (*self._ended, *rows) if r.job_id}
        self._requested = None

    @property
    def jobs(self) -> tuple[JobRow, ...]:
        return self._rows

    @property
    def ended(self) -> tuple[JobRow, ...]:
        """Jobs that left the queue, newest first, with their verdicts."""
        return self._ended

    @property
    def run_started(self) -> float | None:
        """When the compute pane's current (or last) run began (its failures are since then)."""
        return (self._state.get("compute") or {}).get("run_started")

    @property
    def diagnostics(self):
        """Failed tasks, slow tasks, worker events: straight from the scheduler's plugin."""
        from naist_dask_tui.core.diagnostics import Diagnostics

        if self._diagnostics is None or self._diagnostics.client is not self.client:
            self._diagnostics = Diagnostics(self.client, self.job_of)
        return self._diagnostics

    @property
    def requested_jobs(self) -> int:
        if self._requested is not None:
            return self._requested
        return int(self._state.get("requested") or 0)

    @property
    def adaptive(self) -> tuple[int, int] | None:
        a = self._state.get("adaptive")
        return (int(a[0]), int(a[1])) if a else None

    @property
    def limits(self):
        from naist_dask_tui.core.limits import Limits

        return Limits.from_wire(self._state.get("limits"))

    @property
    def processes(self) -> int:
        return int(self._state.get("processes") or 1)

    def job_of(self, worker_name: str) -> str | None:
        job = self._job_ids.get(worker_name)
        if job is None and self.processes > 1:
            job = self._job_ids.get(worker_name.rsplit("-", 1)[0])
        return job

    def notices(self) -> tuple[str, ...]:
        since = self.attached_at - NOTICE_GRACE
        return tuple(text for _, t, text in self._state.get("notices") or () if t >= since)

    # ------------------------------------------------------------------ intents
    def _control(self, action: str, **args: Any) -> Any:
        client = self.client
        if client is None:
            raise ControllerError(f"not connected to cluster {self.name} yet")

        async def call():
            return await getattr(client.scheduler, CONTROL_HANDLER)(
                action=action, args=args, token=self.token
            )

        try:
            reply = client.sync(call, callback_timeout=CONTROL_TIMEOUT)
        except Exception as exc:
            raise ControllerError(
                f"the cluster's keeper did not answer ({type(exc).__name__}: {exc})".rstrip(": )")
                + ")"
            ) from None
        if not isinstance(reply, dict):
            raise ControllerError(f"unexpected answer from the keeper: {reply!r}")
        if not reply.get("ok"):
            raise ControllerError(reply.get("error") or "the keeper refused")
        return reply.get("result")

    def scale(self, jobs: int) -> None:
        if isinstance(jobs, bool) or not isinstance(jobs, int):
            raise ValueError(f"jobs: {jobs!r} is not a whole number")
        if jobs < 0:
            raise ValueError(f"jobs: {jobs} is negative; use 0 or more")
        self._control("scale", jobs=jobs)
        self._requested = jobs  # until the next state says so itself

    def adapt(self, minimum: int, maximum: int) -> None:
        self._control("adapt", minimum=minimum, maximum=maximum)

    def stop_adapt(self) -> None:
        self._control("adapt_off")

    def retire_job(self, name_or_job_id: str) -> None:
        self._control("retire", job=str(name_or_job_id))

    def postmortem(self, job: str) -> dict[str, Any]:
        """Everything the keeper knows of one job (see ``ClusterController.postmortem``)."""
        return self._control("postmortem", job=str(job))

    def delete_job(self, job: str) -> None:
        self._control("delete_job", job=str(job))

    def clear_job_error(self, job: str) -> str:
        return self._control("clear_error", job=str(job)) or ""

    def read_log(self, job: str, offset: int | None = None, limit: int = 64 * 1024) -> dict[str, Any]:
        return self._control("log", job=str(job), offset=offset, limit=limit)

    def detach(self) -> None:
        """Tell the keeper this screen is gone (it would notice after a while anyway)."""
        try:
            self._control("detach")
        except ControllerError:
            pass

    def stop_cluster(self, timeout: float = 60.0) -> str:
        """Stop the cluster: every job deleted, the keeper exits. Returns what happened."""
        if self.client is None:
            if self.launch is not None and (self.record is None or self.record.state != "running"):
                self.launch.terminate()  # still starting: it deletes what it submitted
                return f"cluster {self.name} stopped while starting"
        else:
            try:  # first in words, for the keeper's log; SIGTERM (in registry.stop) does the rest
                self._control("stop", reason=f"stopped from a screen (pid {os.getpid()})")
            except ControllerError:
                pass
            self.close()  # before the scheduler goes: a client would try to reconnect to it
        return registry.stop(self.record, timeout=timeout)

    def keeper_alive(self) -> bool:
        if self.record is None:
            return self.launch is not None and self.launch.proc.poll() is None
        if self.record.pid:
            return self.record.alive()
        fresh = registry.read_record(self.record.directory)
        return fresh is not None and fresh.alive()

    def close(self) -> None:
        """Close this screen's connection (the cluster keeps running). Idempotent."""
        client = self.client
        if client is None or client.status in ("closed", "closing"):
            return
        try:
            client.close(timeout=5)
        except Exception:
            pass

    # ------------------------------------------------------------------ the rest of the seam
    def log_files(self) -> list[tuple[str, str]]:
        if self.launch is not None:
            return [(f"keeper log of {self.name}", str(self.launch.log_path))]
        return [(f"keeper log of {self.name}", self.record.log)] if self.record.log else []

    def make_monitor(self) -> RemoteMonitor:
        return RemoteMonitor(self)

    def cluster_handle(self) -> ClusterHandle:
        return ClusterHandle(self)

    def compute_session(self):
        """The compute pane's session: its runs live in the keeper's runner."""
        from naist_dask_tui.core.remote_compute import RemoteComputeSession

        return RemoteComputeSession(self)


class ClusterHandle:
    """The compute pane's ``cluster``: the console's cluster, scaled through its keeper."""

    def __init__(self, controller: RemoteController) -> None:
        self._controller = controller

    @property
    def name(self) -> str:
        return self._controller.name

    @property
    def backend(self) -> str:
        return self._controller.backend

    @property
    def scheduler_address(self) -> str:
        return self._controller.scheduler_address

    def scale(self, n: int | None = None, jobs: int | None = None) -> None:
        """``cluster.scale(jobs=4)`` (or ``scale(4)``: jobs, as the console counts them)."""
        count = jobs if jobs is not None else n
        if count is None:
            raise ValueError("scale: give a number of jobs, e.g. cluster.scale(jobs=4)")
        self._controller.scale(int(count))

    def adapt(self, minimum_jobs: int = 0, maximum_jobs: int | None = None, **_: Any) -> None:
        if maximum_jobs is None:
            raise ValueError("adapt: give maximum_jobs, e.g. cluster.adapt(minimum_jobs=1, maximum_jobs=10)")
        self._controller.adapt(int(minimum_jobs), int(maximum_jobs))

    def __repr__(self) -> str:
        c = self._controller
        return (
            f"<{c.backend} cluster {c.name!r} at {c.scheduler_address}: "
            f"{c.requested_jobs} job(s) requested>"
        )


class RemoteMonitor:
    """One refresh of a keeper's cluster: workers and keeper state in one probe call."""

    def __init__(self, controller: RemoteController) -> None:
        self.controller = controller
        self.probe = None

    def _starting(self, error: str | None, fatal: bool = False) -> ConsoleSnapshot:
        c = self.controller
        return ConsoleSnapshot(
            time=time.time(), backend=c.backend, scheduler_address=c.scheduler_address,
            connected=False, cluster=None, error=error, name=c.name, fatal=fatal,
        )

    def poll(self) -> ConsoleSnapshot:
        c = self.controller
        if c.client is None:
            from naist_dask_tui.core.launch import KeeperStartError

            try:
                c.connect()
            except KeeperStartError as exc:
                return self._starting(f"could not start the cluster: {exc}", fatal=True)
            except Exception as exc:
                return self._starting(f"cannot connect to cluster {c.name}: {type(exc).__name__}: {exc}")
        if self.probe is None or self.probe.client is not c.client:
            from naist_dask_tui.core.probe import SchedulerProbe

            self.probe = SchedulerProbe(c.client, job_of=c.job_of, keeper=True, token=c.token)
        now = time.time()
        error = None
        try:
            cluster = self.probe.snapshot()
            c.apply_state(self.probe.keeper_state)
            connected = True
        except Exception as exc:
            cluster, connected = None, False
            if not c.keeper_alive():
                c.gone = True
                error = (
                    f"the keeper of cluster {c.name} is gone (its log: {c.record.log}); "
                    "its jobs are found by the next start or `naist-dask-tui --cleanup`"
                )
            else:
                error = f"scheduler {c.scheduler_address} not answering: {type(exc).__name__}: {exc}".rstrip(": ")
        s = c.state
        error = error or s.get("error")
        stopping = s.get("stopping")
        if stopping and connected:
            error = f"the cluster is stopping: {stopping}"
        return ConsoleSnapshot(
            time=now,
            backend=c.backend,
            scheduler_address=c.scheduler_address,
            connected=connected,
            cluster=cluster,
            jobs=() if c.gone else c.jobs,
            ended=() if c.gone else c.ended,
            requested_jobs=0 if c.gone else c.requested_jobs,
            adaptive=c.adaptive,
            dashboard_link=s.get("dashboard_link"),
            local_directory=s.get("local_directory"),
            error=error,
            notices=c.notices(),
            name=c.name,
            screens=int(s.get("screens") or 0),
            idle_timeout=s.get("idle_timeout"),
            idle_since=s.get("idle_since"),
            limits=c.limits,
        )


def connect(name: str | None = None, *, fuse_roots: bool = True, **client_kwargs: Any):
    """A ``distributed.Client`` connected to one of your running clusters (see ``ls``).

    With no name: your only running cluster on this host (an error naming them when there are
    several). Uses the cluster's client credentials (TLS); a cluster stays up while a client
    runs tasks on it. Unless ``fuse_roots=False``, this process's dask.array graphs from now on
    make each chunk in the task that uses it, as the compute pane's do (core/rootfuse.py)."""
    record = pick(name)
    if fuse_roots:
        from naist_dask_tui.core import rootfuse

        rootfuse.enable()
    client_kwargs.setdefault("timeout", CONNECT_TIMEOUT)
    from distributed import Client

    return Client(record.address, security=record.security(), **client_kwargs)


def pick(name: str | None) -> registry.ClusterRecord:
    if name:
        return registry.find(name)
    live = registry.clusters()
    if not live:
        raise registry.RegistryError(
            "no cluster of yours is running on this host; start one with `naist-dask-tui`"
        )
    if len(live) > 1:
        names = ", ".join(r.name for r in live)
        raise registry.RegistryError(f"several clusters are running ({names}): give a name")
    return live[0]


def env_lines(record: registry.ClusterRecord) -> list[str]:
    """Shell lines that make an unchanged ``distributed.Client()`` connect to ``record``."""
    import shlex

    lines = [f"export DASK_SCHEDULER_ADDRESS={shlex.quote(record.address or '')}"]
    files = record.client_files
    if files is not None:
        lines += [
            f"export DASK_DISTRIBUTED__COMM__TLS__CA_FILE={shlex.quote(str(files.ca))}",
            f"export DASK_DISTRIBUTED__COMM__TLS__CLIENT__CERT={shlex.quote(str(files.cert))}",
            f"export DASK_DISTRIBUTED__COMM__TLS__CLIENT__KEY={shlex.quote(str(files.key))}",
            "export DASK_DISTRIBUTED__COMM__REQUIRE_ENCRYPTION=True",
        ]
    return lines
