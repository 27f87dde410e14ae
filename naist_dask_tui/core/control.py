"""The one seam between the screen and a cluster: what the screen may ask, and how it learns.

Three things stand behind it:

* :class:`~naist_dask_tui.core.remote.RemoteController`: a cluster owned by a keeper process
  (the normal case: the screen is one of its clients, over the scheduler's own RPC with TLS);
* :class:`~naist_dask_tui.core.cluster.ClusterController` in this process (``--headless``, the
  keeper itself, and tests);
* the same class attached to a scheduler started elsewhere (``--attach ADDRESS``), which can
  only be watched.

:class:`Capabilities` says which intents a backend takes, so the screen offers only those.
Nothing here imports textual.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from naist_dask_tui.core.snapshot import ConsoleSnapshot

# The keeper's control handler on its scheduler (see keeper.py); versioned like the probe's.
CONTROL_HANDLER = "ndtui_control_1"


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a screen may do with the cluster it shows."""

    scale: bool = False  # + - s: ask for a number of jobs
    adapt: bool = False  # a: adaptive scaling on/off
    retire: bool = False  # r: retire one job gracefully
    stop: bool = False  # quit -> stop the cluster and delete its jobs
    detach: bool = False  # d: leave the cluster running without this screen
    logs: bool = False  # l: the jobs' output files

    @classmethod
    def all(cls) -> Capabilities:
        return cls(True, True, True, True, True, True)

    def to_wire(self) -> dict[str, bool]:
        return {name: getattr(self, name) for name in self.__slots__}

    @classmethod
    def from_wire(cls, data: dict[str, Any] | None) -> Capabilities:
        data = data or {}
        return cls(**{name: bool(data.get(name)) for name in cls.__slots__})


WATCH_ONLY = Capabilities()


@runtime_checkable
class ClusterMonitor(Protocol):
    def poll(self) -> ConsoleSnapshot:
        """One refresh; blocks (call it off the UI thread) and never raises."""


@runtime_checkable
class ClusterControl(Protocol):
    """Intents from the screen. Every method may block (call them off the UI thread) and
    raises :class:`~naist_dask_tui.core.errors.ControllerError` with a reason in words."""

    backend: str  # "sge" | "local" | "attach"
    name: str | None  # a keeper's cluster name (None: a cluster in this process)
    capabilities: Capabilities
    client: Any  # a synchronous distributed.Client for the compute pane (None: no pane)

    @property
    def requested_jobs(self) -> int: ...

    @property
    def adaptive(self) -> tuple[int, int] | None: ...

    def scale(self, jobs: int) -> None: ...

    def adapt(self, minimum: int, maximum: int) -> None: ...

    def stop_adapt(self) -> None: ...

    def retire_job(self, name_or_job_id: str) -> None: ...

    def make_monitor(self) -> ClusterMonitor: ...

    def cluster_handle(self) -> Any:
        """What the compute pane's ``cluster`` name is bound to."""

    def compute_session(self) -> Any:
        """The compute pane's session (``run``, ``progress``, ``cancel``, ``snippets``)."""

    def log_files(self) -> list[tuple[str, str]]:
        """(title, path) of the logs behind this cluster (the keeper's), for the log view."""
