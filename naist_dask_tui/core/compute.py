"""The compute console's engine: a REPL-like namespace whose dask results run on the cluster.

``ComputeSession.run(code)`` is blocking and meant for a thread (the UI runs it in a thread
worker). The user's code itself runs in a second, daemon thread, so that ``cancel()`` can make
``run()`` return promptly even when the code is stuck in local Python: the cluster side is
cancelled through the progress plugin (every graph the run submitted, including a blocking
``.compute()`` inside the code), and a ``KeyboardInterrupt`` is injected into the code's thread
if it does not stop by itself.

Nothing here imports textual (tests/unit/test_compute.py checks it).
"""

from __future__ import annotations

import ast
import ctypes
import io
import linecache
import math
import reprlib
import sys
import threading
import time
import traceback
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from naist_dask_tui.core.pane_guard import (
    PaneRefusal,
    ResultTooLarge,
    install_result_guard,
    pane_builtins,
    run_guard_limit,
    too_large_message,
)
from naist_dask_tui.core.progress import ProgressSnapshot, ProgressTracker

MiB = 2**20
GiB = 2**30
DEFAULT_MAX_RESULT_BYTES = 256 * MiB
DEFAULT_MAX_OUTPUT_CHARS = 64 * 1024
DEFAULT_MAX_REPR_CHARS = 20_000
_CANCEL_GRACE = 1.0  # seconds the code's thread gets to stop after the cluster side is cancelled
_FILENAME_PREFIX = "<console-"



class _RunCancelled(Exception):
    """Raised inside the code's thread once the run has been cancelled."""


# ---------------------------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RunResult:
    """What one run of the console produced. Texts are bounded; nothing here holds data."""

    number: int
    code: str
    ok: bool
    value_repr: str = ""  # repr of the last expression's (computed) value, bounded; "" for None
    error: str = ""  # readable error or traceback (user frames / task frames only)
    stdout: str = ""  # what the code printed to stdout and stderr, bounded
    stdout_cut: int = 0  # characters of output dropped to keep it bounded
    wall_time: float = 0.0
    task_count: int = 0  # tasks of the graphs this run submitted
    cancelled: bool = False
    refused: bool = False  # result refused as too large for the login node
    persisted: bool = False  # the value was persisted on the cluster, not gathered
    started_at: float = 0.0  # epoch seconds
    progress: ProgressSnapshot | None = None  # final counts, when the cluster reported them

    @property
    def status(self) -> str:
        if self.cancelled:
            return "cancelled"
        if self.refused:
            return "refused"
        return "ok" if self.ok else "error"

    def summary(self, width: int = 200) -> str:
        """One line for history lists: the value, or the error's last line."""
        if self.ok:
            text = self.value_repr
        else:
            lines = self.error.strip().splitlines()
            text = lines[-1] if lines else self.status
        line = " ".join(text.split())
        return line if len(line) <= width else line[: width - 1] + "…"

    def to_record(self) -> dict[str, Any]:
        """A JSON-friendly dict for the history file (texts trimmed further)."""
        return {
            "time": self.started_at,
            "number": self.number,
            "code": self.code,
            "status": self.status,
            "ok": self.ok,
            "wall_time": round(self.wall_time, 3),
            "task_count": self.task_count,
            "result": _trim(self.value_repr, 4000),
            "error": _trim(self.error, 4000),
            "stdout": _trim(self.stdout, 4000),
        }


def _trim(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + f"\n[... {len(text) - limit} characters cut]"


# ---------------------------------------------------------------------------------------------
# Snippets
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Snippet:
    name: str
    description: str
    code: str


LAB_SHAPE_FULL = (100_000, 100_000, 10)
LAB_SHAPE_LOCAL = (4_000, 4_000, 10)
LAB_CHUNKS = (1000, 1000, 5)


def lab_snippet(full: bool, shape: tuple[int, int, int] | None = None) -> str:
    """The lab note's test computation; ``full`` for a real cluster, reduced for a local one."""
    if shape is None:
        shape = LAB_SHAPE_FULL if full else LAB_SHAPE_LOCAL
    if full:
        header = (
            f"# The lab's test computation at full size {shape}: sized for a real SGE cluster."
        )
    else:
        header = (
            f"# The lab's test computation reduced to {shape} for a local cluster "
            f"(the full size, {LAB_SHAPE_FULL}, is for SGE)."
        )
    return (
        f"{header}\n"
        f"x = da.random.random({shape}, chunks={LAB_CHUNKS})\n"
        f"y = da.random.random({shape}, chunks={LAB_CHUNKS})\n"
        "(da.arcsin(x) + da.arccos(y)).sum(axis=(1, 2))\n"
    )


_CLUSTER_INFO = """\
# Workers, threads and memory limits as the scheduler sees them.
info = client.scheduler_info(n_workers=-1)
workers = info["workers"]
for addr, w in sorted(workers.items()):
    print(f"{str(w.get('name')):>14}  {addr:<30} {w['nthreads']:>3} threads"
          f"  {w['memory_limit'] / 2**30:7.1f} GiB limit")
print(f"{len(workers)} workers, {sum(w['nthreads'] for w in workers.values())} threads")
client.dashboard_link
"""

_MEMORY_PER_WORKER = """\
# Memory per worker from the last heartbeat: process RSS, dask-managed data, spilled to disk.
info = client.scheduler_info(n_workers=-1)
for addr, w in sorted(info["workers"].items()):
    m = w.get("metrics", {})
    disk = m.get("spilled_bytes", {}).get("disk", 0)
    print(f"{str(w.get('name')):>14}  rss {m.get('memory', 0) / 2**20:9.1f} MiB"
          f"  managed {m.get('managed_bytes', 0) / 2**20:9.1f} MiB"
          f"  spilled {disk / 2**20:9.1f} MiB  limit {w['memory_limit'] / 2**30:6.1f} GiB")
"""

_PERSIST_DEMO = """\
# Keep an array on the cluster (persist), wait for it, then reduce it there: only the
# reduction comes back. Bigger than the workers' memory it spills to disk (watch the spill panel).
# Free it afterwards with: del a
from distributed import wait
a = da.random.random({shape}, chunks={chunks}).persist()
wait(a)
print(f"persisted {{a.nbytes / 2**30:.2f}} GiB in {{a.npartitions}} chunks")
a.mean()
"""

_SLOW_DEMO = """\
# A slow computation to try the progress view and cancelling (Esc): 120 tasks that sleep 1 s each.
import time

def slow(block):
    time.sleep(1)
    return block

da.ones((120,), chunks=1).map_blocks(slow).sum()
"""


def snippets(full: bool) -> list[Snippet]:
    """The snippets one key away, the lab's test computation first."""
    persist_shape = (40_000, 40_000, 4) if full else (8_000, 8_000, 4)
    persist_chunks = (2000, 2000, 4)
    return [
        Snippet(
            "Lab test",
            "the lab's test computation" + (" (full size)" if full else " (reduced for a local cluster)"),
            lab_snippet(full),
        ),
        Snippet("Cluster info", "workers, threads and memory limits", _CLUSTER_INFO),
        Snippet("Memory per worker", "RSS, managed and spilled bytes per worker", _MEMORY_PER_WORKER),
        Snippet(
            "Persist and spill",
            "persist an array on the cluster, then reduce it there",
            _PERSIST_DEMO.format(shape=persist_shape, chunks=persist_chunks),
        ),
        Snippet("Slow tasks", "120 one-second tasks, to try progress and cancel", _SLOW_DEMO),
    ]


# ---------------------------------------------------------------------------------------------
# Output capture
# ---------------------------------------------------------------------------------------------


class BoundedText:
    """Keeps the first quarter and the last three quarters of ``limit`` characters written."""

    def __init__(self, limit: int = DEFAULT_MAX_OUTPUT_CHARS) -> None:
        self.head_limit = limit // 4
        self.tail_limit = limit - self.head_limit
        self._head: list[str] = []
        self._head_len = 0
        self._tail: deque[str] = deque()
        self._tail_len = 0
        self.cut = 0
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            text = str(text)
        n = len(text)
        with self._lock:
            if self._head_len < self.head_limit:
                take = text[: self.head_limit - self._head_len]
                self._head.append(take)
                self._head_len += len(take)
                text = text[len(take) :]
            if text:
                if len(text) > self.tail_limit:
                    self.cut += len(text) - self.tail_limit
                    text = text[-self.tail_limit :]
                self._tail.append(text)
                self._tail_len += len(text)
                while self._tail_len > self.tail_limit:
                    excess = self._tail_len - self.tail_limit
                    first = self._tail[0]
                    if len(first) <= excess:
                        self._tail.popleft()
                        self._tail_len -= len(first)
                        self.cut += len(first)
                    else:
                        self._tail[0] = first[excess:]
                        self._tail_len -= excess
                        self.cut += excess
        return n

    def getvalue(self) -> str:
        with self._lock:
            head = "".join(self._head)
            tail = "".join(self._tail)
            if self.cut:
                return f"{head}\n[... {self.cut:,} characters of output cut ...]\n{tail}"
            return head + tail


class _StreamRouter(io.TextIOBase):
    """Stands in for sys.stdout / sys.stderr: writes from a run's thread go to its buffer,
    everything else to the stream that was there before (the UI's own capture, a terminal)."""

    def __init__(self, fallback: Any) -> None:
        super().__init__()
        self.fallback = fallback
        self.targets: dict[int, BoundedText] = {}

    def write(self, text: str) -> int:  # type: ignore[override]
        target = self.targets.get(threading.get_ident())
        if target is not None:
            return target.write(text)
        return self.fallback.write(text)

    def flush(self) -> None:
        if threading.get_ident() not in self.targets:
            try:
                self.fallback.flush()
            except Exception:
                pass

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self.fallback, "encoding", "utf-8") or "utf-8"


_router_lock = threading.Lock()


def _route_thread_output(ident: int, buffer: BoundedText) -> None:
    with _router_lock:
        for name in ("stdout", "stderr"):
            stream = getattr(sys, name)
            if not isinstance(stream, _StreamRouter):
                stream = _StreamRouter(stream)
                setattr(sys, name, stream)
            stream.targets[ident] = buffer


def _unroute_thread_output(ident: int) -> None:
    with _router_lock:
        for name in ("stdout", "stderr"):
            stream = getattr(sys, name)
            if isinstance(stream, _StreamRouter):
                stream.targets.pop(ident, None)
                if not stream.targets:
                    setattr(sys, name, stream.fallback)


# ---------------------------------------------------------------------------------------------
# Formatting
# ---------------------------------------------------------------------------------------------

_INTERNAL_PATH_PARTS = (
    "/distributed/",
    "/dask/",
    "/tornado/",
    "/asyncio/",
    "/concurrent/",
    "/threading.py",
    "/naist_dask_tui/core/",
    "/toolz/",
    "/tlz/",
)


def _is_internal(filename: str) -> bool:
    return any(part in filename.replace("\\", "/") for part in _INTERNAL_PATH_PARTS)


def _user_traceback(exc: BaseException, remote: bool = False) -> str:
    """Format ``exc`` keeping only the frames a user cares about.

    Local errors: frames from the first ``<console-N>`` frame on. Task errors (remote): frames
    outside dask/distributed, i.e. the user's functions and the library that raised.
    """
    tb = exc.__traceback__
    frames = []
    while tb is not None:
        frames.append(tb)
        tb = tb.tb_next
    if remote:
        keep = [f for f in frames if not _is_internal(f.tb_frame.f_code.co_filename)]
    else:
        start = next(
            (i for i, f in enumerate(frames) if f.tb_frame.f_code.co_filename.startswith(_FILENAME_PREFIX)),
            len(frames),
        )
        keep = frames[start:]
    summary = traceback.StackSummary.extract(
        ((f.tb_frame, f.tb_lineno) for f in keep), capture_locals=False
    )
    lines = []
    if summary:
        lines.append("Traceback (most recent call last):\n")
        lines.extend(summary.format())
    lines.extend(traceback.format_exception_only(type(exc), exc))
    return "".join(lines)


def _bounded_repr(value: Any, limit: int = DEFAULT_MAX_REPR_CHARS) -> str:
    if value is None:
        return ""
    try:
        import numpy as np

        if isinstance(value, np.generic):
            text = str(value)  # 82.0 rather than np.float64(82.0)
        elif isinstance(value, np.ndarray):
            with np.printoptions(threshold=1000, edgeitems=5, linewidth=100):
                text = repr(value)
        elif isinstance(value, (list, tuple, dict, set, frozenset, deque)) and len(value) > 200:
            r = reprlib.Repr()
            r.maxlist = r.maxtuple = r.maxdict = r.maxset = r.maxfrozenset = r.maxdeque = 100
            r.maxlevel = 4
            r.maxstring = r.maxother = 200
            text = r.repr(value)
        else:
            text = repr(value)
    except Exception as exc:
        text = f"<repr failed: {type(exc).__name__}: {exc}>"
    if len(text) > limit:
        text = text[:limit] + f"... [{len(text) - limit:,} characters cut]"
    return text


def format_bytes(n: float) -> str:
    for unit, size in (("TiB", 2**40), ("GiB", GiB), ("MiB", MiB), ("KiB", 1024)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{int(n)} B"


def _known_nbytes(value: Any) -> int | None:
    """Bytes of a dask collection's result when knowable without computing (arrays)."""
    shape = getattr(value, "shape", None)
    dtype = getattr(value, "dtype", None)
    if isinstance(shape, tuple) and dtype is not None and hasattr(dtype, "itemsize"):
        try:
            if all(isinstance(d, (int,)) or (hasattr(d, "__index__") and not isinstance(d, float)) for d in shape):
                return int(math.prod(int(d) for d in shape)) * int(dtype.itemsize)
        except Exception:
            return None
        return None  # unknown chunk sizes (nan)
    nbytes = getattr(value, "nbytes", None)
    if isinstance(nbytes, (int, float)) and not isinstance(nbytes, bool):
        return None if math.isnan(nbytes) else int(nbytes)
    return None


def _too_large_message(nbytes: int, limit: int, measured: bool) -> str:
    return too_large_message(nbytes, limit, measured)


# ---------------------------------------------------------------------------------------------
# The session
# ---------------------------------------------------------------------------------------------


class ComputeSession:
    """A console namespace bound to a dask ``Client`` (synchronous) and optional cluster.

    ``run`` is blocking (call it from a thread); ``progress`` and ``cancel`` may be called from
    any thread while a run is going.
    """

    def __init__(
        self,
        client: Any,
        cluster: Any = None,
        *,
        max_result_bytes: int = DEFAULT_MAX_RESULT_BYTES,
        max_output_chars: int = DEFAULT_MAX_OUTPUT_CHARS,
        progress_interval: float = 0.25,
        namespace: dict[str, Any] | None = None,
        client_source: Callable[[], Any] | None = None,
        **extras: Any,
    ) -> None:
        self.client = client
        # Where the current client comes from: a controller attached to a remote scheduler
        # replaces its client after reconnecting, and the next run picks the new one up.
        self._client_source = client_source
        self.cluster = cluster
        self.max_result_bytes = max_result_bytes
        self.max_output_chars = max_output_chars
        # Built on first use: dask.array and numpy cost ~0.3 s to import, which the console's
        # first screen should not wait for.
        self._namespace: dict[str, Any] | None = None
        self._extra_names: dict[str, Any] = {**(namespace or {}), **extras}
        self._tracker = ProgressTracker(client, interval=progress_interval)
        self._guard_client(client)
        self._run_lock = threading.Lock()
        self._wake = threading.Event()
        self._cancel_requested = threading.Event()
        self._futures: list[Any] = []
        self._futures_lock = threading.Lock()
        self._number = 0
        self._running = False
        self._code_thread: threading.Thread | None = None

    # -- info --------------------------------------------------------------------------------
    @property
    def namespace(self) -> dict[str, Any]:
        """The console's names: ``da``, ``np``, ``dask``, ``client``, ``cluster`` and whatever
        the user defined in earlier runs."""
        if self._namespace is None:
            import dask
            import dask.array as da
            import numpy as np

            ns: dict[str, Any] = {
                # a pasted script's `if __name__ == "__main__":` block runs
                "__name__": "__main__",
                # Client() is the console's client; cluster classes refuse (pane_guard)
                "__builtins__": pane_builtins(self),
                "da": da,
                "np": np,
                "dask": dask,
                "client": self.client,
                "cluster": self.cluster,
            }
            ns.update(self._extra_names)
            self._namespace = ns
        return self._namespace

    @property
    def run_count(self) -> int:
        """Runs started so far (the next run is number ``run_count + 1``)."""
        return self._number

    @property
    def running(self) -> bool:
        return self._running

    @property
    def is_local(self) -> bool:
        """True on a LocalCluster (or a scheduler on this host): snippets use reduced sizes."""
        backend = getattr(self.cluster, "backend", None)  # a keeper's cluster says which it is
        if isinstance(backend, str):
            return backend == "local"
        try:
            from distributed import LocalCluster

            if isinstance(self.cluster, LocalCluster):
                return True
        except Exception:
            pass
        if self.cluster is not None:
            return False
        address = str(getattr(getattr(self.client, "scheduler", None), "address", "") or "")
        return address.startswith(("inproc://", "tcp://127.", "tcp://localhost", "tls://127."))

    def snippets(self) -> list[Snippet]:
        return snippets(full=not self.is_local)

    def progress(self) -> ProgressSnapshot | None:
        """The last progress of the current (or last) run; cheap, never blocks on the network."""
        return self._tracker.snapshot()

    # -- control -----------------------------------------------------------------------------
    def cancel(self) -> bool:
        """Ask the running computation to stop. Returns at once; ``run()`` returns promptly
        with ``cancelled=True``. False when nothing is running."""
        if not self._running:
            return False
        self._cancel_requested.set()
        self._wake.set()
        return True

    def run(self, code: str, *, persist: bool = False) -> RunResult:
        """Run ``code`` like a REPL cell; dask results are computed (or persisted) on the cluster."""
        if not self._run_lock.acquire(blocking=False):
            return RunResult(
                number=self._number, code=code, ok=False,
                error="A computation is already running: cancel it first.",
                started_at=time.time(),
            )
        try:
            return self._run(code, persist)
        finally:
            self._running = False
            self._run_lock.release()

    def _use_current_client(self) -> None:
        client = self._client_source() if self._client_source is not None else None
        if client is None and self.client is None:
            raise RuntimeError("not connected to the cluster yet: try again in a moment")
        if client is None or client is self.client:
            return
        self.client = client
        self._tracker = ProgressTracker(client, interval=self._tracker.interval)
        self._guard_client(client)
        if self._namespace is not None:
            self._namespace["client"] = client

    def _guard_client(self, client: Any) -> None:
        """Every gather of the console's client checks its size while a run is going."""
        try:
            install_result_guard(client, run_guard_limit(self))
        except Exception:  # a client without _gather (a test double): no guard to install
            pass

    def _run(self, code: str, persist: bool) -> RunResult:
        try:
            self._use_current_client()
        except RuntimeError as exc:
            return RunResult(number=self._number, code=code, ok=False, error=str(exc), started_at=time.time())
        self._number += 1
        number = self._number
        started_at = time.time()
        t0 = time.perf_counter()
        self._cancel_requested.clear()
        self._wake.clear()
        with self._futures_lock:
            self._futures = []
        self._running = True
        run_id = f"{self.client.id}-{number}-{uuid.uuid4().hex[:8]}"
        tracking = self._tracker.begin(run_id)

        outcome: dict[str, Any] = {}
        output = BoundedText(self.max_output_chars)
        finished = threading.Event()

        def target() -> None:
            ident = threading.get_ident()
            _route_thread_output(ident, output)
            try:
                self._execute(code, number, persist, outcome)
            except BaseException as exc:  # noqa: BLE001 - the console must never die
                outcome.setdefault("exc", exc)
            finally:
                _unroute_thread_output(ident)
                finished.set()
                self._wake.set()

        thread = threading.Thread(target=target, name=f"ndtui-run-{number}", daemon=True)
        self._code_thread = thread
        thread.start()

        while not finished.is_set():
            self._wake.wait()
            self._wake.clear()
            if self._cancel_requested.is_set() and not finished.is_set():
                break

        cancelled = self._cancel_requested.is_set()
        still_running = False
        if cancelled:
            # Cancel what the run submitted; repeat to catch a graph submitted meanwhile, and
            # interrupt the code's thread if it does not stop by itself (local Python loop).
            for attempt in range(4):
                self._cancel_on_cluster()
                if finished.wait(_CANCEL_GRACE / 2):
                    break
                if attempt == 0:
                    _raise_in_thread(thread, KeyboardInterrupt)
            still_running = not finished.is_set()
            if not still_running:
                self._cancel_on_cluster()
        with self._futures_lock:
            self._futures = []  # drop our references: the cluster may release the keys

        final = self._tracker.end() if tracking else None
        wall = time.perf_counter() - t0
        task_count = final.total if final else 0
        common = dict(
            number=number, code=code, stdout=output.getvalue(), stdout_cut=output.cut,
            wall_time=wall, task_count=task_count, started_at=started_at, progress=final,
        )

        if cancelled:
            done = f"{final.done:,} of {final.total:,} tasks had finished. " if final and final.total else ""
            note = (
                "The code is still running locally (stuck outside Python); it will stop at its "
                "next Python instruction."
                if still_running
                else ""
            )
            return RunResult(
                ok=False, cancelled=True,
                error=f"Cancelled after {wall:.1f} s. {done}Its tasks on the cluster were cancelled. {note}".strip(),
                **common,
            )
        exc = outcome.get("exc")
        if exc is None:
            value = outcome.get("value")
            return RunResult(
                ok=True, value_repr=_bounded_repr(value), persisted=outcome.get("persisted", False),
                **common,
            )
        error = self._describe(exc, final)
        # break exception -> traceback -> frame cycles now: frames hold futures (and so keys
        # on the cluster) until the garbage collector would find them
        traceback.clear_frames(exc.__traceback__)
        outcome.clear()
        return RunResult(
            ok=False, error=error, refused=isinstance(exc, ResultTooLarge), **common
        )

    # -- the code's thread -------------------------------------------------------------------
    def _execute(self, code: str, number: int, persist: bool, outcome: dict[str, Any]) -> None:
        filename = f"{_FILENAME_PREFIX}{number}>"
        try:
            tree = ast.parse(code, filename, "exec")
            last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
            body = compile(tree, filename, "exec")
            expr = compile(ast.Expression(last.value), filename, "eval") if last else None
        except SyntaxError as exc:
            outcome["exc"] = exc
            return
        lines = code.splitlines(keepends=True)
        linecache.cache[filename] = (len(code), None, lines, filename)
        stale = f"{_FILENAME_PREFIX}{number - 200}>"
        linecache.cache.pop(stale, None)

        try:
            exec(body, self.namespace)
            value = eval(expr, self.namespace) if expr is not None else None
            value, persisted = self._materialise(value, persist)
        except BaseException as exc:  # noqa: BLE001
            outcome["exc"] = exc
            return
        finally:
            with self._futures_lock:
                self._futures = []
        if value is not None:
            self.namespace["_"] = value
        outcome["value"] = value
        outcome["persisted"] = persisted

    def _materialise(self, value: Any, persist: bool) -> tuple[Any, bool]:
        import dask
        from distributed import futures_of, wait

        is_coll = dask.is_dask_collection
        if is_coll(value):
            items, kind = [value], None
        elif isinstance(value, (list, tuple)) and value and all(is_coll(v) for v in value):
            items, kind = list(value), type(value)
        else:
            return value, False

        client = self.client
        if persist:
            persisted = client.persist(items)
            futures = futures_of(persisted)
            self._track(futures)
            wait(futures)
            self._check_futures(futures)
            out = persisted[0] if kind is None else kind(persisted)
            return out, True

        sizes = [_known_nbytes(v) for v in items]
        known = sum(s for s in sizes if s is not None)
        if known > self.max_result_bytes:
            raise ResultTooLarge(_too_large_message(known, self.max_result_bytes, measured=False))

        futures = client.compute(items)
        self._track(futures)
        wait(futures)
        self._check_futures(futures)
        if any(s is None for s in sizes):
            measured = client.nbytes(keys=[f.key for f in futures], summary=False)
            total = sum(int(v) for v in measured.values())
            if total > self.max_result_bytes:
                client.cancel(futures)
                with self._futures_lock:
                    self._futures = []
                raise ResultTooLarge(_too_large_message(total, self.max_result_bytes, measured=True))
        values = client.gather(futures)
        return (values[0] if kind is None else kind(values)), False

    def _track(self, futures: list[Any]) -> None:
        with self._futures_lock:
            self._futures = list(futures)
        if self._cancel_requested.is_set():
            self._cancel_on_cluster()
            raise _RunCancelled()

    def _check_futures(self, futures: list[Any]) -> None:
        if self._cancel_requested.is_set():
            raise _RunCancelled()
        for f in futures:
            if f.status == "error":
                f.result()  # raises the task's exception with its remote traceback
            if f.status == "cancelled":
                f.result()

    def _cancel_on_cluster(self) -> None:
        # everything the run submitted (also a blocking .compute() inside the code) ...
        self._tracker.cancel()
        # ... and the futures we hold ourselves, so that our blocked wait() returns
        with self._futures_lock:
            futures, self._futures = self._futures, []
        if futures:
            try:
                self.client.cancel(futures, force=True)
            except Exception:
                pass

    # -- errors ------------------------------------------------------------------------------
    def _describe(self, exc: BaseException, final: ProgressSnapshot | None) -> str:
        if isinstance(exc, SyntaxError) and (exc.filename or "").startswith(_FILENAME_PREFIX):
            return "".join(traceback.format_exception_only(type(exc), exc))
        if isinstance(exc, ResultTooLarge):
            return str(exc)
        if isinstance(exc, PaneRefusal):
            return f"{exc}{_user_line(exc)}"
        try:
            from distributed.scheduler import KilledWorker
        except Exception:  # pragma: no cover
            KilledWorker = ()  # type: ignore[assignment]
        try:
            from distributed.comm.core import CommClosedError
        except Exception:  # pragma: no cover
            CommClosedError = ()  # type: ignore[assignment]

        if isinstance(exc, KilledWorker):
            return (
                f"A worker died while running task {exc.args[0]!r} (KilledWorker): the task was "
                f"tried on {exc.args[2] + 1 if len(exc.args) > 2 else 'several'} workers and each "
                "died. The usual cause is a task using more memory than the worker's limit "
                "(smaller chunks help), or workers killed by SGE (walltime, h_vmem).\n"
                + "".join(traceback.format_exception_only(type(exc), exc))
            )
        if isinstance(exc, CommClosedError) or (
            isinstance(exc, (OSError, TimeoutError)) and _is_internal(_origin(exc))
        ):
            return (
                "Lost contact with the cluster while running (a worker or the scheduler went "
                f"away): {type(exc).__name__}: {exc}\nThe console is fine; check the workers "
                "panel and run again."
            )
        import asyncio
        import concurrent.futures

        if isinstance(exc, (concurrent.futures.CancelledError, asyncio.CancelledError, _RunCancelled)):
            return (
                "The computation was cancelled on the cluster (by another client, a restart, or "
                f"lost workers): {type(exc).__name__}: {exc}"
            )
        if isinstance(exc, SystemExit):
            return f"The code called exit({exc.code!r}); the console keeps running."

        remote = _is_task_error(exc)
        text = _user_traceback(exc, remote=remote)
        if remote:
            group = final.first_erred if final else None
            where = f" in task group {group!r}" if group else ""
            text = f"A task failed{where}; its traceback from the worker:\n{text}"
        return text


def _user_line(exc: BaseException) -> str:
    """" (line N)" of the innermost line of the user's code in ``exc``'s traceback."""
    line = None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename.startswith(_FILENAME_PREFIX):
            line = tb.tb_lineno
        tb = tb.tb_next
    return f" (line {line})" if line else ""


def _origin(exc: BaseException) -> str:
    tb = exc.__traceback__
    last = ""
    while tb is not None:
        last = tb.tb_frame.f_code.co_filename
        tb = tb.tb_next
    return last


def _is_task_error(exc: BaseException) -> bool:
    """True when the exception was raised on a worker (its traceback passes through a task)."""
    tb = exc.__traceback__
    seen_console = False
    while tb is not None:
        name = tb.tb_frame.f_code.co_filename.replace("\\", "/")
        if name.startswith(_FILENAME_PREFIX):
            seen_console = True
        elif seen_console and (
            "/distributed/worker" in name or "/dask/_task_spec" in name or "/dask/core.py" in name
        ):
            return True
        tb = tb.tb_next
    # distributed re-raises task errors from Future.result: the tail is not from the console
    return any(
        "/distributed/client.py" in f.filename.replace("\\", "/")
        for f in traceback.extract_tb(exc.__traceback__)
    ) and not isinstance(exc, (KeyboardInterrupt, SystemExit))


def _raise_in_thread(thread: threading.Thread, exc_type: type[BaseException]) -> None:
    """Ask ``thread`` to raise ``exc_type`` at its next Python instruction."""
    ident = thread.ident
    if ident is None or not thread.is_alive():
        return
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(ident), ctypes.py_object(exc_type))
