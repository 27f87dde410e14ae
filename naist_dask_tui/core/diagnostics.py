"""Failed tasks, slow tasks with their call stacks, and worker events, for the screens.

The scheduler side is :mod:`diagnostics_plugin` (installed when the cluster starts, so that it
sees everything from then on); this is the client side: one call to its handler, the answer
turned into frozen records with each worker's SGE job. It works from any client of the
scheduler: the keeper, a screen (with the cluster's credentials), a script.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import cloudpickle

from naist_dask_tui.core import diagnostics_plugin
from naist_dask_tui.core.diagnostics_plugin import HANDLER, DiagnosticsPlugin
from naist_dask_tui.core.hostnames import host_names

logger = logging.getLogger(__name__)

CALL_TIMEOUT = 15.0
SLOW_FACTOR = 3.0  # a task is slow past this many times its group's median duration...
SLOW_FLOOR = 10.0  # ...and at least this many seconds
SLOW_BOUND = 30.0  # seconds, for a group with no finished task to compare with


def install(client) -> bool:
    """Put the plugin on the scheduler (by value: an attached scheduler need not have this
    package). False, and a log line, when the scheduler refuses it."""
    if client is None:
        return False
    try:
        cloudpickle.register_pickle_by_value(diagnostics_plugin)
        try:
            client.register_plugin(DiagnosticsPlugin())
        finally:
            cloudpickle.unregister_pickle_by_value(diagnostics_plugin)
        return True
    except Exception as exc:
        logger.warning("diagnostics plugin not installed (%s): no failures or worker events", exc)
        return False


@dataclass(frozen=True, slots=True)
class FailureGroup:
    """Tasks that raised the same exception (type and message)."""

    type: str
    message: str
    count: int  # since the cluster started
    count_since: int  # since the time asked for (the current run)
    more: bool  # count_since is a lower bound
    first: float
    last: float
    keys: tuple[str, ...]
    worker: str | None
    worker_name: str | None
    job_id: str | None
    traceback: str
    died: tuple[str, ...]  # KilledWorker: the workers that died running the task
    died_jobs: tuple[str, ...]  # ...and their SGE jobs

    @property
    def key(self) -> str:
        return self.keys[0] if self.keys else ""


@dataclass(frozen=True, slots=True)
class SlowTask:
    key: object  # the task's key as dask knows it (for the call stack)
    label: str
    group: str
    running: float  # seconds
    typical: float | None  # the median duration of its group's last finished tasks, if any
    worker: str
    worker_name: str
    job_id: str | None


@dataclass(frozen=True, slots=True)
class WorkerEvent:
    time: float
    kind: str  # joined | left | restarted
    address: str
    name: str
    host: str | None
    reason: str
    job_id: str | None


def _key(value):
    """A key back from msgpack (tuples arrive as lists)."""
    return tuple(_key(v) for v in value) if isinstance(value, list) else value


class Diagnostics:
    def __init__(self, client, job_of: Callable[[str], str | None] | None = None) -> None:
        self.client = client
        self.job_of = job_of or (lambda name: None)

    def _call(self, **kwargs) -> dict:
        client = self.client
        if client is None:
            raise RuntimeError("no connection to the scheduler")
        reply = client.sync(getattr(client.scheduler, HANDLER), callback_timeout=CALL_TIMEOUT, **kwargs)
        if "error" in reply:
            raise RuntimeError(reply["error"])
        return reply

    def failures(self, since: float = 0.0, limit: int = 100) -> list[FailureGroup]:
        out = []
        for g in self._call(what="failures", since=since, limit=limit)["groups"]:
            died = tuple(g.get("died") or ())
            out.append(FailureGroup(
                type=g["type"], message=g["message"], count=g["count"], count_since=g["count_since"],
                more=bool(g.get("more")), first=g["first"], last=g["last"], keys=tuple(g["keys"]),
                worker=g.get("worker"), worker_name=g.get("worker_name"),
                job_id=self.job_of(g["worker_name"]) if g.get("worker_name") else None,
                traceback=g.get("traceback") or "", died=died,
                died_jobs=tuple(dict.fromkeys(j for j in map(self.job_of, died) if j)),
            ))
        return out

    def slow_tasks(self, factor: float = SLOW_FACTOR, floor: float = SLOW_FLOOR,
                   bound: float = SLOW_BOUND, limit: int = 100) -> list[SlowTask]:
        reply = self._call(what="slow", factor=factor, floor=floor, bound=bound, limit=limit)
        return [
            SlowTask(key=_key(key), label=label, group=group, running=running, typical=typical,
                     worker=addr, worker_name=name, job_id=self.job_of(name))
            for key, label, group, running, typical, addr, name in reply["tasks"]
        ]

    def worker_events(self, limit: int = 500) -> list[WorkerEvent]:
        return [
            WorkerEvent(time=t, kind=kind, address=addr, name=name, host=host_names(host) if host else None,
                        reason=reason, job_id=self.job_of(name))
            for t, kind, addr, name, host, reason in self._call(what="events", limit=limit)["events"]
        ]

    def call_stack(self, key) -> list[str]:
        """The running call stack of a task, as text lines (empty: it is not running now)."""
        stacks = self.client.call_stack(keys=[key])
        lines: list[str] = []
        for worker, tasks in (stacks or {}).items():
            for task, frames in tasks.items():
                lines.append(f"{task} on {worker}:")
                for frame in frames:
                    lines.extend(str(frame).rstrip("\n").splitlines())
        return lines
