"""The scaling loop: submit jobs in paced batches, remove them gracefully, delete them at once.

One daemon thread runs the passes in order (:class:`~executor.DaemonExecutor`); a pass brings
the jobs to the controller's newest target: up in batches of the backend's size (the target is
read again after each, so that a scale-down or close acts at once), down in one graceful step
(the leaving jobs' workers are retired by address, their keys move to the workers that stay,
and only then are the jobs deleted).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from concurrent.futures import Future

from distributed.core import Status

from naist_dask_tui.core import sge
from naist_dask_tui.core.backends import worker_names
from naist_dask_tui.core.errors import ControllerError
from naist_dask_tui.core.executor import DaemonExecutor
from naist_dask_tui.core.reconcile import failed_starts_blocked

logger = logging.getLogger(__name__)


class Scaler:
    def __init__(self, controller) -> None:
        self.c = controller
        self._executor = DaemonExecutor("ndtui-scale")
        self._stopping = threading.Event()  # set on close: submission stops between batches
        self._pending_work: Future | None = None

    def submit(self, fn, *args) -> Future:
        return self._executor.submit(fn, *args)

    def shutdown(self) -> None:
        self._stopping.set()
        self._executor.shutdown(wait=False, cancel_futures=True)

    def kick(self) -> Future:
        """Schedule one pass of the scaling loop. A pass that has not started yet reads the
        newest target when it runs, so at most one is ever queued."""
        c = self.c
        with c.lock:
            fut = self._pending_work
            if fut is not None and not fut.running() and not fut.done():
                return fut
            self._pending_work = self._executor.submit(self._apply_target_safe)
            return self._pending_work

    def busy(self) -> bool:
        return self._pending_work is not None and not self._pending_work.done()

    def wait_idle(self, timeout: float = 300) -> None:
        """Block until background scaling work has finished (tests, headless mode)."""
        end = time.time() + timeout
        while True:
            fut = self._pending_work
            if fut is None or fut.done():
                return
            remaining = end - time.time()
            if remaining <= 0:
                raise TimeoutError("scaling work did not finish")
            try:
                fut.result(timeout=remaining)
            except Exception:
                pass

    def _apply_target_safe(self) -> None:
        c = self.c
        try:
            self._apply_target()
        except Exception as exc:  # never let the background thread die silently
            logger.exception("scaling failed")
            c.notices.append(f"scaling failed: {exc}")

    def active_names(self) -> list[str]:
        """Jobs that count as capacity: not leaving, not lost with their node."""
        c = self.c
        with c.lock:
            out = []
            for n in list(c.cluster.worker_spec):
                rec = c.ledger.get(n)
                if rec is None or (rec.retiring_since is None and not rec.uncounted):
                    out.append(n)
            return out

    def _apply_target(self) -> None:
        """Bring the jobs to the newest target: up in paced batches (reading the target again
        after each, so that a scale-down or close acts at once), down in one graceful step."""
        c = self.c
        batch, pause = c._backend.submit_batch, c._backend.submit_pause
        while not c.closed and c.cluster is not None:
            target = c.target
            active = self.active_names()
            if len(active) < target and failed_starts_blocked(c.ledger):
                return  # jobs keep failing to start: wait for the user (see reconcile)
            if len(active) < target:
                began = time.monotonic()
                self._add_jobs(min(batch, target - len(active)))
                if len(self.active_names()) < c.target:
                    self._stopping.wait(max(0.0, pause - (time.monotonic() - began)))
                continue
            if len(active) > target:
                connected = self.connected_names()  # one answer for choosing and for retiring
                leaving = self._choose_leaving(active, len(active) - target, connected)
                self.remove_jobs(leaving, "scale-down", connected)
            return

    def _add_jobs(self, k: int) -> None:
        c = self.c
        cluster = c.cluster
        with c.lock:
            hosts = c.ledger.avoided(time.time())
        avoid = c._backend.avoid_directive(hosts)

        async def add():
            new = []
            for _ in range(k):
                spec = cluster.new_worker_spec()
                if avoid:
                    spec = {n: _with_directive(v, avoid) for n, v in spec.items()}
                cluster.worker_spec.update(spec)
                new.extend(spec)
            try:
                await cluster._correct_state()
            except Exception as exc:
                # qsub refused (unknown queue, bad resource, ...) or a local worker process
                # did not start: forget only the ones that failed (the others run and must
                # stay known, or they would be orphans), and report SGE's own words.
                for name in new:
                    w = cluster.workers.get(name)
                    if w is None or getattr(w, "status", None) != Status.running:
                        cluster.worker_spec.pop(name, None)
                        cluster.workers.pop(name, None)
                        if w is not None:
                            with contextlib.suppress(Exception):
                                await w.close()
                raise ControllerError(_submit_error(exc)) from None
            return new

        now = time.time()
        try:
            names = cluster.sync(add)
        finally:
            c._refresh_job_ids()
        with c.lock:
            for n in names:
                c.ledger.ensure(n).submitted_at = now
        if avoid:
            c.notices.append(f"new job(s) ask SGE to stay off {', '.join(sorted(hosts))} "
                                f"({avoid}): a job there lost its worker")

    def connected_names(self) -> dict[str, str]:
        """worker name -> address, from the scheduler (cheap: names only)."""
        c = self.c
        info = c.client.sync(
            c.client.scheduler.identity, n_workers=-1, callback_timeout=15
        )
        return {str(w["name"]): addr for addr, w in info.get("workers", {}).items()}

    def _choose_leaving(self, active: list[str], k: int, connected: dict[str, str]) -> list[str]:
        """Pick the jobs to remove: not-yet-connected ones first (they hold nothing), then the
        most recently submitted."""
        c = self.c
        spec = c.cluster.worker_spec

        def holds_workers(name: str) -> bool:
            return any(w in connected for w in worker_names(name, spec.get(name, {})))

        def submitted(name: str) -> float:
            rec = c.ledger.get(name)
            return (rec.submitted_at if rec is not None else None) or 0

        idle_first = sorted(active, key=lambda n: (holds_workers(n), submitted(n)))
        pending = [n for n in idle_first if not holds_workers(n)]
        running = [n for n in reversed(active) if holds_workers(n)]
        return (pending + running)[:k]

    def delete_now(self, name: str, lost: bool) -> None:
        c = self.c
        cluster = c.cluster
        job_id = c.ledger.get(name).job_id

        async def forget():
            cluster.worker_spec.pop(name, None)
            cluster.workers.pop(name, None)  # its qdel is ours, not dask-jobqueue's

        try:
            cluster.sync(forget)
            if not job_id:
                return
            words = sge.qdel([job_id])
            force = lost and c.can_force()
            if force:
                # Plain first, then forced: a forced qdel of a dead node's job with no deletion
                # of it under way crashed SGE 8.1.9's qmaster here (twice, 11-30); right after a
                # plain one it never did.
                time.sleep(1.0)
                words = sge.qdel([job_id], force=True)
            if lost and not force:
                c.notices.append(
                    f"job {job_id} marked for deletion; SGE keeps it (dr) until its node answers "
                    f"again, or until an SGE manager runs qdel -f {job_id}"
                )
            else:
                c.notices.append(f"job {job_id} deleted: {'; '.join(words) or 'done'}")
        except Exception as exc:
            logger.exception("delete failed")
            c.notices.append(f"deleting job {job_id or name} failed: {exc}")

    def remove_jobs_safe(self, names: list[str], why: str) -> None:
        c = self.c
        try:
            self.remove_jobs(names, why)
        except Exception as exc:
            logger.exception("retire failed")
            c.notices.append(f"retiring {', '.join(names)} failed: {exc}")

    def remove_jobs(self, names: list[str], why: str, connected: dict[str, str] | None = None) -> None:
        """Retire every worker of these jobs (their data moves), then delete the jobs.
        ``connected``: the scheduler's workers (name -> address) if just asked, else asked here."""
        c = self.c
        if not names:
            return
        cluster = c.cluster
        now = time.time()
        with c.lock:
            for n in names:
                rec = c.ledger.ensure(n)
                rec.retiring_since = rec.retiring_since or now
        try:
            if connected is None:
                connected = self.connected_names()
            addresses = [
                connected[w]
                for n in names
                for w in worker_names(n, cluster.worker_spec.get(n, {}))
                if w in connected
            ]
            staying = set(connected.values()) - set(addresses)
            if addresses and staying:
                # Move every key held only by the leaving workers, then close them.
                retired = c.client.retire_workers(
                    workers=addresses, close_workers=True, remove=True
                )
                kept = set(addresses) - set(retired or {})
                if kept:
                    c.notices.append(
                        f"{len(kept)} worker(s) could not hand over their data; "
                        "their job is deleted anyway and lost keys will be recomputed"
                    )
            elif addresses and c.target > 0:
                c.notices.append("no worker left to take the data over: it is dropped")

            async def delete():
                for n in names:
                    cluster.worker_spec.pop(n, None)
                await cluster._correct_state()

            with c.lock:
                for n in names:
                    c.ledger.ensure(n).deleted = why
            cluster.sync(delete)
        finally:
            with c.lock:
                for n in names:
                    c.ledger.ensure(n).retiring_since = None


def _with_directive(spec: dict, directive: str) -> dict:
    """A copy of a job spec with one more ``#$`` line (the spec dicts are shared)."""
    options = dict(spec["options"])
    options["job_extra_directives"] = [*(options.get("job_extra_directives") or []), directive]
    return {**spec, "options": options}


def _submit_error(exc: BaseException) -> str:
    text = str(exc)
    # dask-jobqueue: "Command exited with non-zero exit code.\nExit code: 1\nCommand:\n...
    # stdout:\n...\nstderr:\n<SGE's words>"
    if "stderr:" in text:
        words = text.split("stderr:", 1)[1].strip()
        stdout = text.split("stdout:", 1)[1].split("stderr:", 1)[0].strip() if "stdout:" in text else ""
        words = " ".join((words or stdout).split())
        return f"qsub refused the job: {words}"
    return f"submitting the job failed: {text}"
