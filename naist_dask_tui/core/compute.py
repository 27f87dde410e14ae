"""The compute console's engine: a REPL-like namespace whose dask results run on the cluster.

``ComputeSession.run(code)`` is blocking and meant for a thread (the UI runs it in a thread
worker). The user's code itself runs in a second, daemon thread, so that ``cancel()`` can make
``run()`` return promptly even when the code is stuck in local Python: the cluster side is
cancelled through the progress plugin (every graph the run submitted, including a blocking
``.compute()`` inside the code), and a ``KeyboardInterrupt`` is injected into the code's thread
if it does not stop by itself.

Its pieces: :mod:`run_result` (what a run produced), :mod:`output_capture` (what it prints),
:mod:`run_errors` (how its errors read), :mod:`snippets`, :mod:`result_guard` and
:mod:`pane_guard` (what pasted code may not do). Their public names are importable from here.

Nothing here imports textual (tests/unit/test_compute.py checks it).
"""

from __future__ import annotations

import ast
import ctypes
import linecache
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from typing import Any

from naist_dask_tui.core.output_capture import (
    DEFAULT_MAX_OUTPUT_CHARS,
    BoundedText,
    route_thread_output,
    unroute_thread_output,
)
from naist_dask_tui.core.pane_guard import pane_builtins
from naist_dask_tui.core.progress import ProgressSnapshot, ProgressTracker
from naist_dask_tui.core.result_guard import (
    ResultTooLarge,
    install_result_guard,
    known_nbytes,
    run_guard_limit,
    too_large_message,
)
from naist_dask_tui.core.run_errors import FILENAME_PREFIX, RunCancelled, describe_error
from naist_dask_tui.core.run_result import RunResult, bounded_repr
from naist_dask_tui.core.snippets import Snippet, lab_snippet, snippets

__all__ = [
    "DEFAULT_MAX_OUTPUT_CHARS", "DEFAULT_MAX_RESULT_BYTES", "BoundedText", "ComputeSession",
    "RunResult", "Snippet", "lab_snippet", "snippets",
]

MiB = 2**20
DEFAULT_MAX_RESULT_BYTES = 256 * MiB
_CANCEL_GRACE = 1.0  # seconds the code's thread gets to stop after the cluster side is cancelled


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
            route_thread_output(ident, output)
            try:
                self._execute(code, number, persist, outcome)
            except BaseException as exc:  # noqa: BLE001 - the console must never die
                outcome.setdefault("exc", exc)
            finally:
                unroute_thread_output(ident)
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
                ok=True, value_repr=bounded_repr(value), persisted=outcome.get("persisted", False),
                **common,
            )
        error = describe_error(exc, final.first_erred if final else None)
        # break exception -> traceback -> frame cycles now: frames hold futures (and so keys
        # on the cluster) until the garbage collector would find them
        traceback.clear_frames(exc.__traceback__)
        outcome.clear()
        return RunResult(
            ok=False, error=error, refused=isinstance(exc, ResultTooLarge), **common
        )

    # -- the code's thread -------------------------------------------------------------------
    def _execute(self, code: str, number: int, persist: bool, outcome: dict[str, Any]) -> None:
        filename = f"{FILENAME_PREFIX}{number}>"
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
        stale = f"{FILENAME_PREFIX}{number - 200}>"
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

        sizes = [known_nbytes(v) for v in items]
        known = sum(s for s in sizes if s is not None)
        if known > self.max_result_bytes:
            raise ResultTooLarge(too_large_message(known, self.max_result_bytes, measured=False))

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
                raise ResultTooLarge(too_large_message(total, self.max_result_bytes, measured=True))
        values = client.gather(futures)
        return (values[0] if kind is None else kind(values)), False

    def _track(self, futures: list[Any]) -> None:
        with self._futures_lock:
            self._futures = list(futures)
        if self._cancel_requested.is_set():
            self._cancel_on_cluster()
            raise RunCancelled()

    def _check_futures(self, futures: list[Any]) -> None:
        if self._cancel_requested.is_set():
            raise RunCancelled()
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


def _raise_in_thread(thread: threading.Thread, exc_type: type[BaseException]) -> None:
    """Ask ``thread`` to raise ``exc_type`` at its next Python instruction."""
    ident = thread.ident
    if ident is None or not thread.is_alive():
        return
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(ident), ctypes.py_object(exc_type))
