"""Compute-pane runs that outlive the screen: a runner process owned by the keeper.

Futures belong to the client that made them, so a run started from a screen's own client dies
with the screen. Here the compute pane's namespace and runs live in a **runner**: a child
process of the keeper with its own client of the cluster (the client credentials) and the
console's :class:`ComputeSession` (result guard, output limits, progress, cancel). Screens
come and go; the runner keeps the names defined earlier, the run that is going and the
results of the last runs, and every attached screen sees the same run.

Why a process and not a thread of the keeper: the keeper owns the cluster and its no-orphans
guarantees. User code can end a process (``os._exit``, a crashing C extension, the login
node's OOM killer after a big gather); in the runner that loses the namespace, and the keeper
says so and starts a new runner, while the cluster, its jobs and its data stay.

Why not a Jupyter kernel (ipykernel + jupyter_client), the well-trodden way: it would bring
pyzmq, tornado, IPython and jupyter_client's dependencies to every login node for output
streams and interrupts we already have, and the console's session logic (the 256 MiB result
guard, per-run progress and cancel on the cluster) would still have to run inside it. Your own
notebooks use the same cluster through ``connect()``; they do not share the pane's names.

Keeper <-> runner: ``multiprocessing`` (spawn) with a pipe of its own, one request at a time;
the runner's stdout and stderr are the keeper's log (never a terminal). Run results are
bounded text (RunResult) and cross as plain dicts.
"""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing
import threading
import time
from collections import deque
from typing import Any

logger = logging.getLogger("naist_dask_tui.runner")

KEEP_RESULTS = 20  # results a runner keeps for screens that attach later
REQUEST_TIMEOUT = 30.0
MAX_STATUS_WAIT = 1.0  # s: the longest a status request waits for a run to end


# --------------------------------------------------------------------------------------------
# Wire formats (dicts of plain values)


def progress_to_wire(p) -> dict[str, Any] | None:
    if p is None:
        return None
    data = dataclasses.asdict(p)
    data["groups"] = [dataclasses.astuple(g) for g in p.groups]
    return data


def progress_from_wire(data: dict[str, Any] | None):
    if data is None:
        return None
    from naist_dask_tui.core.progress import GroupProgress, ProgressSnapshot

    values = dict(data)
    values["groups"] = tuple(GroupProgress(*g) for g in data["groups"])
    return ProgressSnapshot(**values)


def result_to_wire(r) -> dict[str, Any]:
    data = {f.name: getattr(r, f.name) for f in dataclasses.fields(r)}
    data["progress"] = progress_to_wire(r.progress)
    return data


def result_from_wire(data: dict[str, Any]):
    from naist_dask_tui.core.compute import RunResult

    values = dict(data)
    values["progress"] = progress_from_wire(data.get("progress"))
    known = {f.name for f in dataclasses.fields(RunResult)}
    return RunResult(**{k: v for k, v in values.items() if k in known})


# --------------------------------------------------------------------------------------------
# The runner process


class _RunnerHandle:
    """The namespace's ``cluster`` in the runner: scales through the keeper's control handler."""

    def __init__(self, client, name: str, backend: str) -> None:
        self._client = client
        self.name = name
        self.backend = backend

    def _control(self, action: str, **args: Any) -> Any:
        from naist_dask_tui.core.control import CONTROL_HANDLER

        client = self._client

        async def call():
            return await getattr(client.scheduler, CONTROL_HANDLER)(action=action, args=args)

        reply = client.sync(call)
        if not reply.get("ok"):
            raise RuntimeError(reply.get("error"))
        return reply.get("result")

    @property
    def scheduler_address(self) -> str:
        return self._client.scheduler.address

    def scale(self, n: int | None = None, jobs: int | None = None) -> None:
        """``cluster.scale(jobs=4)`` (or ``scale(4)``: jobs, as the console counts them)."""
        count = jobs if jobs is not None else n
        if count is None:
            raise ValueError("scale: give a number of jobs, e.g. cluster.scale(jobs=4)")
        self._control("scale", jobs=int(count))

    def adapt(self, minimum_jobs: int = 0, maximum_jobs: int | None = None, **_: Any) -> None:
        if maximum_jobs is None:
            raise ValueError("adapt: give maximum_jobs, e.g. cluster.adapt(minimum_jobs=1, maximum_jobs=10)")
        self._control("adapt", minimum=int(minimum_jobs), maximum=int(maximum_jobs))

    def __repr__(self) -> str:
        return f"<{self.backend} cluster {self.name!r} at {self.scheduler_address}>"


def runner_main(conn, address: str, client_dir: str | None, name: str, backend: str,
                history_path: str | None, fuse_roots: bool = True) -> None:
    """The runner process: serve the keeper's requests until it says stop or goes away."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s runner %(levelname)s: %(message)s")
    # dask_jobqueue installs a SIGINT handler when first imported, which only a main thread may
    # do: imported first by a run (each runs in a thread of its own), a pasted old script's
    # `from dask_jobqueue import SGECluster` failed before the pane's guard could refuse it
    import dask_jobqueue  # noqa: F401
    from distributed import Client

    from naist_dask_tui.core.compute import ComputeSession
    from naist_dask_tui.core.history_store import HistoryStore

    if fuse_roots:  # every run's dask.array graphs: chunks made where they are used
        from naist_dask_tui.core import rootfuse

        rootfuse.enable()
    security = None
    if client_dir:
        from pathlib import Path

        from naist_dask_tui.core.credentials import ClientFiles

        security = ClientFiles.in_dir(Path(client_dir)).security()
    client = Client(address, security=security, timeout=30)
    session = ComputeSession(client, _RunnerHandle(client, name, backend))
    history = HistoryStore(history_path) if history_path else HistoryStore()
    results: deque[dict[str, Any]] = deque(maxlen=KEEP_RESULTS)
    current: dict[str, Any] = {}
    lock = threading.Lock()
    ended = threading.Event()  # set when a run ends: a status that waits for it returns then

    def execute(number: int, code: str, persist: bool) -> None:
        try:
            result = session.run(code, persist=persist)
        except BaseException as exc:  # ComputeSession.run promises not to raise; be sure
            from naist_dask_tui.core.compute import RunResult

            result = RunResult(number=number, code=code, ok=False, error=f"{type(exc).__name__}: {exc}")
        history.append(result)
        with lock:
            results.append(result_to_wire(result))
            current.clear()
        ended.set()

    def handle(msg: dict[str, Any]) -> dict[str, Any]:
        op = msg.get("op")
        if op == "run":
            with lock:
                if current:
                    return {"ok": False, "error": "A computation is already running: cancel it first."}
                number = session.run_count + 1
                ended.clear()
                current.update(number=number, code=msg["code"], persist=bool(msg.get("persist")),
                               started_at=time.time())
            threading.Thread(target=execute, args=(number, msg["code"], bool(msg.get("persist"))),
                             name=f"ndtui-run-{number}", daemon=True).start()
            return {"ok": True, "number": number}
        if op == "cancel":
            return {"ok": True, "cancelled": session.cancel()}
        if op == "status":
            since = int(msg.get("since", 0))
            # A follower asks to wait (briefly: the pipe serves one request at a time) for the
            # run going to end, so that it sees the result when it comes, not at its next poll.
            wait = min(max(float(msg.get("wait") or 0), 0.0), MAX_STATUS_WAIT)
            if wait:
                with lock:
                    going = bool(current)
                if going:
                    ended.wait(wait)
            with lock:
                run = dict(current)
                done = [r for r in results if r["number"] > since]
            if run:
                run["progress"] = progress_to_wire(session.progress())
            return {"ok": True, "running": run or None, "results": done, "count": session.run_count,
                    "last": results[-1]["number"] if results else 0}
        if op == "ping":
            return {"ok": True}
        return {"ok": False, "error": f"unknown runner request {op!r}"}

    try:
        while True:
            try:
                msg = conn.recv()
            except (EOFError, OSError):
                break  # the keeper is gone
            if msg.get("op") == "stop":
                if current:
                    session.cancel()
                    for _ in range(50):
                        if not current:
                            break
                        time.sleep(0.1)
                conn.send({"ok": True})
                break
            try:
                reply = handle(msg)
            except Exception as exc:
                logger.exception("runner request failed")
                reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
            conn.send(reply)
    finally:
        try:
            client.close(timeout=5)
        except Exception:
            pass


# --------------------------------------------------------------------------------------------
# The keeper's side


class RunnerError(RuntimeError):
    """The runner could not do what was asked; the message says why in words."""


class Runner:
    """The keeper's handle on its runner process, started on first use (or ``start()``),
    started again after it died. Thread-safe: one request at a time."""

    def __init__(self, address: str, client_dir: str | None, name: str, backend: str,
                 history_path: str | None = None, notify=None, fuse_roots: bool = True) -> None:
        self.address = address
        self.fuse_roots = fuse_roots
        self.client_dir = client_dir
        self.name = name
        self.backend = backend
        self.history_path = history_path
        self.notify = notify or (lambda text: None)
        self._lock = threading.RLock()
        self._proc = None
        self._conn = None
        self._running: dict[str, Any] | None = None  # last status's current run
        self.deaths = 0
        self.last_death: str | None = None  # what the last death cost, in words
        self.started_seconds: float | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def alive(self) -> bool:
        return self._proc is not None and self._proc.is_alive()

    def start(self) -> None:
        with self._lock:
            if self.alive():
                return
            t0 = time.perf_counter()
            ctx = multiprocessing.get_context("spawn")
            parent, child = ctx.Pipe()
            proc = ctx.Process(
                target=runner_main,
                args=(child, self.address, self.client_dir, self.name, self.backend, self.history_path,
                      self.fuse_roots),
                name=f"ndtui-runner-{self.name}",
                daemon=True,  # ends with the keeper
            )
            proc.start()
            child.close()
            self._proc, self._conn = proc, parent
            try:
                self._request({"op": "ping"}, timeout=120)
            except RunnerError:
                self._reap()
                raise
            self.started_seconds = time.perf_counter() - t0
            logger.info("compute runner started (pid %s) in %.1f s", proc.pid, self.started_seconds)

    def _reap(self) -> None:
        proc, self._proc, self._conn = self._proc, None, None
        if proc is not None:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.kill()
                proc.join(timeout=5)

    def _request(self, msg: dict[str, Any], timeout: float = REQUEST_TIMEOUT) -> dict[str, Any]:
        with self._lock:
            conn = self._conn
            if conn is None:
                raise RunnerError("the compute runner is not running")
            try:
                conn.send(msg)
                if not conn.poll(timeout):
                    raise RunnerError(f"the compute runner did not answer within {timeout:.0f} s")
                return conn.recv()
            except (EOFError, OSError, BrokenPipeError):
                code = self._proc.exitcode if self._proc is not None else None
                self._died(code)
                raise RunnerError(self._death_words(code)) from None

    def _death_words(self, code) -> str:
        return (
            f"the compute runner process died (exit code {code}); the names defined in the "
            "compute pane are lost, the cluster and its data are not; a new runner starts"
        )

    def _died(self, code) -> None:
        self.deaths += 1
        run = self._running
        self._reap()
        self._running = None
        words = self._death_words(code)
        if run:
            words = f"run {run.get('number')}: {words}"
        self.last_death = words
        logger.warning(words)
        self.notify(words)

    def _checked(self, msg: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            if not self.alive():
                if self._proc is not None:
                    self._died(self._proc.exitcode)
                self.start()
            reply = self._request(msg)
        if not reply.get("ok"):
            raise RunnerError(reply.get("error") or "the compute runner refused")
        return reply

    def run(self, code: str, persist: bool = False) -> int:
        return int(self._checked({"op": "run", "code": code, "persist": persist})["number"])

    def cancel(self) -> bool:
        if not self.alive():
            return False
        return bool(self._checked({"op": "cancel"})["cancelled"])

    def status(self, since: int = 0, wait: float = 0.0) -> dict[str, Any]:
        """The runner's status; with ``wait``, when a run is going, up to that long (at most
        MAX_STATUS_WAIT) for it to end first."""
        with self._lock:
            if not self.alive():
                if self._proc is not None:
                    self._died(self._proc.exitcode)
                return {"ok": True, "running": None, "results": [], "count": 0, "last": 0,
                        "alive": False, "death": self.last_death}
        reply = self._checked({"op": "status", "since": since, "wait": wait})
        self._running = reply.get("running")
        reply["alive"] = True
        return reply

    @property
    def running(self) -> dict[str, Any] | None:
        """The run going at the last status (keeper's idle rule, ls)."""
        return self._running

    def stop(self, timeout: float = 10.0) -> bool:
        """Cancel a run that is going, then end the process. True if a run was cancelled."""
        with self._lock:
            if self._conn is None:
                return False
            had_run = bool(self._running)
            try:
                self._conn.send({"op": "stop"})
                self._conn.poll(timeout)
            except (EOFError, OSError):
                pass
            self._reap()
            return had_run
