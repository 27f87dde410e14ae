"""The console's witness on the scheduler: failed tasks, slow tasks and worker events.

Installed like the probe (:mod:`scheduler_plugin`): a module-level plugin class that registers
its own versioned handler, ``scheduler.handlers["ndtui_diag_1"]``, called as
``await client.scheduler.ndtui_diag_1(what=...)``. It records, from the moment the cluster
starts, what the scheduler forgets or never says:

* **failures**: tasks that raised (``processing -> erred``; tasks that erred only because a
  dependency did are not counted), grouped by exception type and message, with a count, one
  key, the worker, the traceback; for ``KilledWorker``, the workers that died running it.
* **worker events**: workers joining, leaving and coming back (a nanny's restart), with the
  reason: retired, at its lifetime, killed by memory (the nanny's own event), lost (no
  heartbeat, a closed connection).
* **slow tasks**: tasks executing for longer than a multiple of the median duration of their
  group's last finished tasks (the last ``MAX_DURATIONS`` of each), or than a fixed bound when
  none finished yet. (dask's own ``duration_average`` cannot serve: the scheduler resets it
  as soon as a task runs past twice the average, that is, exactly when a task is slow.)

Everything kept is bounded. This module is pickled *by value* when it is sent to a scheduler
the console attaches to, so it stays self-contained: distributed and the standard library.
"""

from __future__ import annotations

import ast
import pickle
import re
import time
from collections import OrderedDict, deque

from distributed.diagnostics.plugin import SchedulerPlugin

HANDLER = "ndtui_diag_1"
PLUGIN_NAME = "naist-dask-tui-diagnostics-1"
MAX_GROUPS = 200  # failure groups kept (the least recent go)
MAX_TIMES = 1000  # failure times kept per group (to count "since" a run began)
MAX_KEYS = 10  # keys kept per group
MAX_TRACEBACK = 8000  # characters
MAX_EVENTS = 1000  # worker events kept
MAX_DEATHS = 5000  # tasks remembered with the workers that died running them
RESTART_WINDOW = 120.0  # seconds: a worker of the same name joining again is a restart
MAX_DURATIONS = 50  # finished tasks' durations kept per group (task prefix)
MAX_PREFIXES = 500  # groups whose durations are kept

_REPR = re.compile(r"^([A-Za-z_][\w.]*)\((.*)\)$", re.S)


def _split_exception(text: str | None, exception) -> tuple[str, str]:
    """(type, message) of an erred task, from ``repr(exc)`` or the pickled exception."""
    if not text and isinstance(exception, bytes):
        try:
            exc = pickle.loads(exception)  # the scheduler's own KilledWorker
            return type(exc).__name__, str(exc)
        except Exception:
            pass
    text = text or ""
    m = _REPR.match(text.strip())
    if not m:
        return "Exception", text.strip()[:500]
    kind, args = m.group(1).rsplit(".", 1)[-1], m.group(2)
    try:
        values = ast.literal_eval(f"({args},)") if args.strip() else ()
        message = str(values[0]) if len(values) == 1 else ", ".join(map(str, values))
    except Exception:
        message = args
    return kind, message[:500]


def _leave_reason(stimulus_id: str) -> str:
    if stimulus_id.startswith("retire-workers"):
        return "retired (its data moved to the other workers)"
    if stimulus_id.startswith("worker-close-gracefully"):
        # only the worker's --lifetime timer closes a worker this way (distributed 2026)
        return "at its lifetime (--lifetime): it retired itself, its data moved"
    if stimulus_id.startswith("check-worker-ttl"):
        return "lost: no heartbeat within the worker TTL (its node died?)"
    if stimulus_id.startswith("handle-worker-cleanup"):
        return "lost: its connection closed (killed, crashed, or its job ended)"
    return stimulus_id.rsplit("-", 1)[0] or "removed"


_CLOSE_REASONS = {
    "worker-lifetime-reached": "at its lifetime (--lifetime): it retired itself, its data moved",
    "scheduler-remove-worker": "removed by the scheduler",
    "scheduler-close-worker": "closed by the scheduler",
    "scheduler-close": "the scheduler closed",
    "nanny-close": "closed by its nanny",
    "nanny-close-gracefully": "closed by its nanny",
    "worker-handle-scheduler-connection-broken": "lost the scheduler",
}


class DiagnosticsPlugin(SchedulerPlugin):
    name = PLUGIN_NAME
    idempotent = True

    def __init__(self) -> None:
        self.failures: OrderedDict = OrderedDict()  # (type, message) -> group dict
        self.events: deque = deque(maxlen=MAX_EVENTS)  # (time, kind, address, name, host, reason)
        self.workers: dict = {}  # address -> (name, host), of the workers we saw join
        self.left: OrderedDict = OrderedDict()  # name -> (time, reason) of recent departures
        self.closing: dict = {}  # address -> why it is about to leave (said before it leaves)
        self.deaths: OrderedDict = OrderedDict()  # key -> addresses that died running it
        self.durations: OrderedDict = OrderedDict()  # task prefix -> recent compute durations
        self.scheduler = None

    async def start(self, scheduler) -> None:
        self.scheduler = scheduler
        for addr, ws in scheduler.workers.items():
            self.workers.setdefault(addr, (str(ws.name), ws.host))

        # A plain function, not a partial: the comm layer inspects the handler's signature.
        def handler(what: str = "failures", since: float = 0.0, factor: float = 3.0,
                    floor: float = 10.0, bound: float = 300.0, limit: int = 100) -> dict:
            if what == "failures":
                return {"time": time.time(), "groups": self.failure_groups(since, limit)}
            if what == "events":
                return {"time": time.time(), "events": [list(e) for e in list(self.events)[-limit:]]}
            if what == "slow":
                return {"time": time.time(), "tasks": self.slow_tasks(factor, floor, bound, limit)}
            return {"error": f"unknown diagnostics request {what!r}"}

        scheduler.handlers[HANDLER] = handler

    # ---- failures ---------------------------------------------------------------------------
    def transition(self, key, start, finish, *args, **kwargs) -> None:
        if start != "processing":
            return
        if finish == "memory":
            self._finished(key, kwargs.get("startstops"))
            return
        if finish != "erred":
            return
        kind, message = _split_exception(kwargs.get("exception_text"), kwargs.get("exception"))
        now = time.time()
        group = self.failures.get((kind, message))
        if group is None:
            tb = kwargs.get("traceback_text") or ""
            group = {"type": kind, "message": message, "count": 0, "first": now, "last": now,
                     "keys": [], "worker": None, "worker_name": None, "times": deque(maxlen=MAX_TIMES),
                     "traceback": tb[-MAX_TRACEBACK:], "died": []}
            self.failures[(kind, message)] = group
            while len(self.failures) > MAX_GROUPS:
                self.failures.popitem(last=False)
        else:
            self.failures.move_to_end((kind, message))
        worker = kwargs.get("worker")
        group["count"] += 1
        group["last"] = now
        group["times"].append(now)
        if len(group["keys"]) < MAX_KEYS:
            group["keys"].append(str(key))
        if worker:
            group["worker"] = worker
            group["worker_name"] = self.workers.get(worker, (worker, None))[0]
        if kind == "KilledWorker":
            died = list(self.deaths.get(key, ()))
            if worker and worker not in died:
                died.append(worker)
            for addr in died:
                name = self.workers.get(addr, (addr, None))[0]
                if name not in group["died"] and len(group["died"]) < 50:
                    group["died"].append(name)

    def _finished(self, key, startstops) -> None:
        ts = self.scheduler.tasks.get(key) if self.scheduler is not None else None
        if ts is None or not startstops:
            return
        for ss in startstops:
            if ss.get("action") == "compute":
                prefix = ts.prefix.name
                kept = self.durations.get(prefix)
                if kept is None:
                    kept = self.durations[prefix] = deque(maxlen=MAX_DURATIONS)
                    while len(self.durations) > MAX_PREFIXES:
                        self.durations.popitem(last=False)
                kept.append(ss["stop"] - ss["start"])
                return

    def typical(self, prefix: str) -> float | None:
        """The median duration of the group's last finished tasks (None: none finished)."""
        kept = self.durations.get(prefix)
        if not kept:
            return None
        ordered = sorted(kept)
        return ordered[len(ordered) // 2]

    def failure_groups(self, since: float, limit: int) -> list:
        out = []
        for group in reversed(self.failures.values()):
            if group["last"] < since:
                continue
            times = group["times"]
            n = group["count"] if since <= 0 else sum(1 for t in times if t >= since)
            capped = since > 0 and len(times) == times.maxlen and times[0] >= since
            out.append({**{k: v for k, v in group.items() if k != "times"},
                        "count_since": n, "more": capped, "keys": list(group["keys"])})
            if len(out) >= limit:
                break
        out.sort(key=lambda g: -g["count_since"])
        return out

    # ---- worker events ----------------------------------------------------------------------
    def add_worker(self, scheduler, worker: str) -> None:
        ws = scheduler.workers.get(worker)
        name, host = (str(ws.name), ws.host) if ws is not None else (worker, None)
        self.workers[worker] = (name, host)
        now = time.time()
        before = self.left.pop(name, None)
        if before is not None and now - before[0] <= RESTART_WINDOW:
            self.events.append((now, "restarted", worker, name, host, f"after it left: {before[1]}"))
        else:
            self.events.append((now, "joined", worker, name, host, ""))

    def remove_worker(self, scheduler, worker: str, *, stimulus_id: str = "", **kwargs) -> None:
        name, host = self.workers.get(worker, (worker, None))
        reason = self.closing.pop(worker, None) or _leave_reason(stimulus_id or "")
        now = time.time()
        self.events.append((now, "left", worker, name, host, reason))
        self.left[name] = (now, reason)
        while len(self.left) > MAX_EVENTS:
            self.left.popitem(last=False)

    def log_event(self, topic, msg) -> None:
        if topic == "worker-restart-memory" and isinstance(msg, dict):
            rss = msg.get("rss") or 0
            self.closing[msg.get("worker")] = (
                f"killed by memory: its nanny restarted it at {rss / 2**30:.2f} GiB "
                "(above distributed.worker.memory.terminate of its limit)"
            )
            return
        if not isinstance(msg, dict):
            return
        action = msg.get("action")
        if action == "closing-worker" and isinstance(topic, str):
            reason = str(msg.get("reason") or "")
            if reason in _CLOSE_REASONS and topic not in self.closing:
                self.closing[topic] = _CLOSE_REASONS[reason]
        elif action == "remove-worker" and not msg.get("expected") and isinstance(topic, str) \
                and topic != "all":
            for key in msg.get("processing-tasks") or ():
                died = self.deaths.setdefault(key, [])
                if topic not in died:
                    died.append(topic)
                self.deaths.move_to_end(key)
            while len(self.deaths) > MAX_DEATHS:
                self.deaths.popitem(last=False)

    # ---- slow tasks -------------------------------------------------------------------------
    def slow_tasks(self, factor: float, floor: float, bound: float, limit: int) -> list:
        out = []
        for addr, ws in self.scheduler.workers.items():
            for ts, running in list(ws.executing.items()):
                typical = self.typical(ts.prefix.name)
                threshold = max(floor, factor * typical) if typical is not None else bound
                if running >= threshold:
                    out.append([ts.key, str(ts.key), ts.prefix.name, float(running), typical,
                                addr, str(ws.name)])
        out.sort(key=lambda row: -row[3])
        return out[:limit]
