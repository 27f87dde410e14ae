"""ClusterController: start, scale (gracefully), adapt, watch and close a Dask cluster.

Backends: an SGECluster from dask-jobqueue, an embedded LocalCluster, or a scheduler we attach
to. Three things dask-jobqueue does not do are done here:

* **Graceful scale-down.** ``SpecCluster.scale()`` passes worker *names* to
  ``retire_workers``, which wants addresses, so nothing is retired and a job is ``qdel``-ed
  with its data (distributed#4069). Here every worker process of a leaving job is retired by
  address (its keys are copied to the workers that stay) and only then is the job deleted.
  Adaptive scaling uses the same path, and closes a job only when *all* its worker processes
  may go (dask-jobqueue#498).
* **Pending is normal.** Worker names are never reused, so distributed's lost-worker timer
  cannot kill a re-submitted job that waits in a busy queue (see DESIGN.md).
* **No orphaned jobs.** ``close()`` deletes every job this console submitted, pending ones
  included, by id and by this console's job name.
* **A job can outlive its worker.** When a node dies, SGE keeps its jobs running (``r``) until it
  gives up on the host; dask sees the workers leave. Such a job is shown as *no worker*, is not
  counted as capacity after ``distributed.deploy.lost-worker-timeout`` (a fixed job count gets a
  replacement), and ``retire_job`` deletes it at once (``qdel -f`` where SGE allows it). A job that
  ends before its worker ever connected (a bad node, a worker interface the node lacks) is not
  submitted again: its output file says why (see :mod:`nodecheck`).

All public methods are blocking and thread-safe; the UI calls them from thread workers.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import re
import shutil
import signal
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import replace

import dask
from dask.utils import parse_timedelta
from dask_jobqueue import SGECluster
from distributed import Client, LocalCluster
from distributed.core import Status
from distributed.deploy.cluster import Cluster

from naist_dask_tui.core import limits as job_limits, nodecheck, sge, worker_log
from naist_dask_tui.core.control import WATCH_ONLY, Capabilities
from naist_dask_tui.core.errors import ControllerError
from naist_dask_tui.core.notices import NoticeLog
from naist_dask_tui.core.snapshot import ClusterSnapshot, JobRow, JobState, SgeJob

logger = logging.getLogger(__name__)

ATTACH_TIMEOUT = 15.0  # seconds a client waits for (or tries to get back) a scheduler we attach to
RETIRE_TIMEOUT = 120.0  # seconds to move a leaving job's data before deleting it anyway
GONE_KEEP = 120.0  # seconds a vanished job stays listed as "gone"
# seconds new jobs stay off a node where a job lost its worker: SGE keeps sending jobs to a
# silent node until its max_unheard (5 min by default) runs out, and there they hang in "t"
AVOID_FOR = 600.0
CLOSE_TIMEOUT = 15.0  # seconds close() waits for the cluster's own close before giving up on it
# Submission is paced: at most SUBMIT_BATCH jobs are started together, and a batch starts at
# most every SUBMIT_PAUSE seconds, so that a large request never floods the queue (or forks
# thousands of local worker processes), and scale-down, close and signals act between batches.
SUBMIT_BATCH = {"sge": 4, "local": 1}
SUBMIT_PAUSE = {"sge": 1.0, "local": 0.0}
# Jobs that leave the queue before any of their workers connected (a worker that cannot
# start: a wrong Python path, a bad worker argument) are not replaced after this many in a
# row: replacing them forever would flood the queue. A new scale request tries again.
FAILED_STARTS_LIMIT = 3


class _DaemonExecutor:
    """One background thread running submitted calls in order, like
    ``ThreadPoolExecutor(1)``, but a daemon: a pass stuck in a hung ``qsub`` must not keep the
    process alive at exit (concurrent.futures joins its threads at interpreter exit)."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._queue: deque[tuple[Future, Callable[[], object]]] = deque()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._shutdown = False

    def submit(self, fn: Callable[..., object], *args) -> Future:
        fut: Future = Future()
        with self._cond:
            if self._shutdown:
                fut.cancel()
                return fut
            self._queue.append((fut, lambda: fn(*args)))
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name=self._name, daemon=True)
                self._thread.start()
            self._cond.notify()
        return fut

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._shutdown:
                    self._cond.wait()
                if not self._queue:
                    return
                fut, call = self._queue.popleft()
            if not fut.set_running_or_notify_cancel():
                continue
            try:
                fut.set_result(call())
            except BaseException as exc:  # noqa: BLE001 - handed to the future
                fut.set_exception(exc)

    def shutdown(self, wait: bool = False, cancel_futures: bool = True) -> None:
        with self._cond:
            self._shutdown = True
            if cancel_futures:
                while self._queue:
                    self._queue.popleft()[0].cancel()
            self._cond.notify_all()


class _UniqueNames:
    """Never reuse a worker name (dask-jobqueue does after a scale-down, and then
    ``SpecCluster._update_worker_status`` kills a re-submitted job that is still pending
    when the lost-worker timeout of the old worker of that name runs out)."""

    def new_worker_spec(self):
        name = self._new_worker_name(self._i)
        while name in self.worker_spec:
            self._i += 1
            name = self._new_worker_name(self._i)
        self._i += 1
        return {name: self.new_spec}


class ConsoleSGECluster(_UniqueNames, SGECluster):
    def _new_worker_name(self, worker_number):
        return f"job-{worker_number}"

    def _update_worker_status(self, op, msg):
        # Not SpecCluster's: 15 s after a worker leaves it qdel-s the job behind the console's
        # back (on a dead node that leaves it "dr" for good) and keeps its spec, so a later
        # _correct_state would resubmit a job of the same name. The controller decides instead.
        Cluster._update_worker_status(self, op, msg)


class ConsoleLocalCluster(_UniqueNames, LocalCluster):
    def _new_worker_name(self, worker_number):
        return f"local-{worker_number}"


def _worker_names(name: str, spec: dict) -> list[str]:
    if "group" in spec:
        return [f"{name}{suffix}" for suffix in spec["group"]]
    return [str(name)]


class ClusterController:
    def __init__(self, settings):
        self.settings = settings
        self.backend: str = settings.resolved_backend()
        self.cluster = None
        self.client: Client | None = None
        self.name: str | None = None  # set by a keeper that owns this controller
        self.notices = NoticeLog(maxlen=50)
        self.credentials = None  # ClusterCredentials when the cluster speaks TLS
        self.job_name: str | None = None  # SGE -N of this console's jobs
        self._lock = threading.RLock()
        self._target = 0
        self._adaptive: tuple[int, int] | None = None
        self._adapt_thread: threading.Thread | None = None
        self._adapt_stop = threading.Event()
        self._executor = _DaemonExecutor("ndtui-scale")
        self._stopping = threading.Event()  # set by close(): submission stops between batches
        self._connected_once: set[str] = set()  # spec names that had a worker connected
        self._failed_starts = 0  # jobs in a row gone before any of their workers connected
        self.limits: job_limits.Limits | None = None  # max_jobs in force (None: attached)
        self._pending_work: Future | None = None
        self._retiring: dict[str, float] = {}  # spec name -> since
        self._job_ids: dict[str, str] = {}  # spec name -> SGE job id (kept after the job left)
        self._submitted_at: dict[str, float] = {}  # spec name -> when the console asked for it
        # spec name -> when its job id was first seen (qsub had returned): only a qstat begun
        # after that can tell that the job is gone
        self._id_seen_at: dict[str, float] = {}
        self._started_at: dict[str, float] = {}  # spec name -> when SGE started it running
        self._gone: dict[str, tuple[float, JobRow]] = {}  # spec name -> (when, last row)
        self._deleted_by_us: set[str] = set()  # spec names we removed on purpose
        self._had_workers: set[str] = set()  # spec names whose worker connected at least once
        self._lost_since: dict[str, float] = {}  # spec name -> since when SGE runs it, no worker
        self._uncounted: set[str] = set()  # lost longer than the grace: not capacity any more
        self._transfer_since: dict[str, float] = {}  # spec name -> first seen in SGE's "t"
        # host -> until when new jobs ask SGE to stay off it (a job there lost its worker)
        self._avoid: dict[str, float] = {}
        self._deleting: dict[str, JobRow] = {}  # deleted by us, still in qstat (a dead node's)
        self._may_force: bool | None = None
        self._last_rows: dict[str, JobRow] = {}
        self._closed = False
        self._last_sge: dict[str, SgeJob] = {}
        self._probe = None
        self._tls_dir: str | None = None

    # ------------------------------------------------------------------ life cycle
    def start(self) -> None:
        s = self.settings
        if self.backend == "attach":
            self.client = Client(s.attach, timeout=ATTACH_TIMEOUT)
        elif self.backend == "sge":
            from naist_dask_tui.core import preflight

            preflight.require_ready(s)  # bad queue/interface/qsub: no job submitted
            self.limits = job_limits.resolve(s, "sge")
            self._check_start_request(s)
            kwargs = dict(s.sge_cluster_kwargs())
            kwargs["scheduler_options"] = self._scheduler_options(kwargs.get("scheduler_options"))
            os.makedirs(s.log_dir, exist_ok=True)
            if s.tls:
                os.makedirs(s.tls_dir, mode=0o700, exist_ok=True)
                os.chmod(s.tls_dir, 0o700)
                self._tls_dir = s.tls_dir
                kwargs["security"] = self._make_security()
            self.job_name = kwargs.get("job_name")
            self.cluster = ConsoleSGECluster(**kwargs)
            self.client = Client(self.cluster)
        else:
            local, self.limits = job_limits.local_view(s)
            for note in getattr(local, "notes", ()):
                self.notices.append(note)
            self.settings = local
            self._check_start_request(local)
            opts = self._scheduler_options({})
            tls = {}
            if local.tls:
                # A login node is shared: a plain port on loopback lets any local user run
                # code as you. The same mutual TLS as on SGE.
                tls = {"protocol": "tls://", "security": self._make_security()}
            self.cluster = ConsoleLocalCluster(
                n_workers=0,
                threads_per_worker=local.cores,
                memory_limit=local.memory_bytes,
                processes=True,
                local_directory=local.local_directory,
                dashboard_address=opts["dashboard_address"],
                # An address alone turns Bokeh on ("dashboard not set, address given").
                scheduler_kwargs={"dashboard": opts["dashboard"]},
                host="127.0.0.1",
                silence_logs=logging.ERROR,
                **tls,
                # each worker process writes to its own log file (l follows it), never to the
                # console's terminal (core/worker_log.py)
                preload=[worker_log.MODULE],
                env={worker_log.ENV_DIR: local.log_dir, worker_log.ENV_PREFIX: self._local_log_prefix()},
            )
            self.client = Client(self.cluster)
        if self.cluster is not None:
            self.cluster.sync(_shield_from_terminal_interrupt)
        s = self.settings
        if self.backend != "attach":
            if s.adapt_min is not None or s.adapt_max is not None:
                lo = s.adapt_min or 0
                self.adapt(lo, s.adapt_max if s.adapt_max is not None else max(lo, s.jobs))
            else:
                self.scale(s.jobs)

    def _make_security(self):
        from naist_dask_tui.core.credentials import make_credentials

        self.credentials = make_credentials()
        return self.credentials.security()

    @property
    def capabilities(self) -> Capabilities:
        if self.backend == "attach":
            return WATCH_ONLY
        # In this process the cluster lives and dies with it: nothing to detach from.
        return Capabilities(scale=True, adapt=True, retire=True, stop=True, detach=False, logs=True)

    def make_monitor(self):
        from naist_dask_tui.core.monitor import Monitor

        return Monitor(self)

    def cluster_handle(self):
        return self.cluster

    def compute_session(self):
        """The compute pane's session in this process (its runs end with it)."""
        from naist_dask_tui.core.compute import ComputeSession

        return ComputeSession(self.client, self.cluster, client_source=lambda: self.client)

    def log_files(self) -> list[tuple[str, str]]:
        return []
    def _check_start_request(self, s) -> None:
        """The start's own request against max_jobs, before anything is submitted."""
        if s.adapt_min is not None or s.adapt_max is not None:
            lo = s.adapt_min or 0
            hi = s.adapt_max if s.adapt_max is not None else max(lo, s.jobs)
            self.limits.check(hi, f"adaptive maximum, from {s.origin_of('adapt_max')}")
        else:
            self.limits.check(s.jobs, f"from {s.origin_of('jobs')}")

    @property
    def max_jobs(self) -> int | None:
        return self.limits.max_jobs if self.limits is not None else None

    def _scheduler_options(self, opts: dict | None) -> dict:
        opts = dict(opts or {})
        if self.settings.dashboard:
            opts["dashboard"] = True
            opts["dashboard_address"] = self.settings.dashboard_address
        else:
            # No Bokeh dashboard; the plain HTTP routes only on loopback, on a free port.
            opts["dashboard"] = False
            opts["dashboard_address"] = "127.0.0.1:0"
        return opts

    @property
    def dashboard_link(self) -> str | None:
        if not self.settings.dashboard or self.cluster is None:
            return None
        try:
            return self.cluster.dashboard_link
        except Exception:
            return None

    @property
    def scheduler_address(self) -> str:
        if self.cluster is not None:
            return self.cluster.scheduler_address
        return self.client.scheduler.address if self.client else ""

    @property
    def requested_jobs(self) -> int:
        return self._target

    @property
    def adaptive(self) -> tuple[int, int] | None:
        return self._adaptive

    @property
    def processes(self) -> int:
        return int(self.settings.processes) if self.backend == "sge" else 1

    def job_of(self, worker_name: str) -> str | None:
        """SGE job id of a worker, from its name (``<spec>`` or ``<spec>-<i>``)."""
        if self.backend != "sge":
            return None
        job = self._job_ids.get(worker_name)
        if job is None and self.processes > 1:
            job = self._job_ids.get(worker_name.rsplit("-", 1)[0])
        return job

    def _refresh_job_ids(self) -> None:
        if self.cluster is None or self.backend != "sge":
            return
        for name, job in list(self.cluster.workers.items()):
            job_id = getattr(job, "job_id", None)
            if job_id:
                self._job_ids[str(name)] = str(job_id)
                self._id_seen_at.setdefault(str(name), time.time())

    def reconnect(self) -> bool:
        """Attach mode: once the client gave up on a scheduler that went away (it retries by
        itself for ``ATTACH_TIMEOUT``), try a new client at the same address. True when a new
        client is in place; callers holding the old one (probe, compute session) rebind to
        ``self.client``. Other backends own their scheduler: nothing to reconnect to."""
        if self.backend != "attach" or self._closed or self.client is None:
            return False
        if self.client.status not in ("closed", "closing"):
            return False  # connected, or still reconnecting by itself
        try:
            new = Client(self.settings.attach, timeout=min(ATTACH_TIMEOUT, 5.0))
        except Exception:
            return False
        with self._lock:
            old, self.client = self.client, new
        with contextlib.suppress(Exception):
            old.close()
        self.notices.append(f"reconnected to the scheduler at {self.settings.attach}")
        return True

    # ------------------------------------------------------------------ scaling
    def _require_scalable(self) -> None:
        if self.backend == "attach" or self.cluster is None:
            raise ControllerError(
                "attached to a scheduler started elsewhere: scale it where it was started"
            )
        if self._closed:
            raise ControllerError("the cluster is closed")

    def scale(self, jobs: int) -> None:
        """Ask for ``jobs`` jobs. Returns at once; the work happens in the background.

        A manual scale turns adaptive scaling off.
        """
        if isinstance(jobs, bool) or not isinstance(jobs, int):
            raise ValueError(f"jobs: {jobs!r} is not a whole number")
        if jobs < 0:
            raise ValueError(f"jobs: {jobs} is negative; use 0 or more")
        self._require_scalable()
        if self.limits is not None:
            self.limits.check(jobs, "scale")
        self._stop_adaptive()
        with self._lock:
            self._target = jobs
            self._failed_starts = 0  # asked again: try again
        self._kick()

    def _kick(self) -> Future:
        """Schedule one reconciliation pass. A pass that has not started yet reads the
        newest target when it runs, so at most one is ever queued."""
        with self._lock:
            fut = self._pending_work
            if fut is not None and not fut.running() and not fut.done():
                return fut
            self._pending_work = self._executor.submit(self._apply_target_safe)
            return self._pending_work

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
        try:
            self._apply_target()
        except Exception as exc:  # never let the background thread die silently
            logger.exception("scaling failed")
            self.notices.append(f"scaling failed: {exc}")

    def _active_names(self) -> list[str]:
        """Jobs that count as capacity: not leaving, not lost with their node."""
        return [
            n for n in list(self.cluster.worker_spec)
            if n not in self._retiring and n not in self._uncounted
        ]

    def _apply_target(self) -> None:
        """Bring the jobs to the newest target: up in paced batches (reading the target again
        after each, so that a scale-down or close acts at once), down in one graceful step."""
        batch = SUBMIT_BATCH.get(self.backend, 1)
        pause = SUBMIT_PAUSE.get(self.backend, 0.0)
        while not self._closed and self.cluster is not None:
            target = self._target
            active = self._active_names()
            if len(active) < target and self._failed_starts >= FAILED_STARTS_LIMIT:
                return  # jobs keep failing to start: wait for the user (see _forget_gone)
            if len(active) < target:
                began = time.monotonic()
                self._add_jobs(min(batch, target - len(active)))
                if len(self._active_names()) < self._target:
                    self._stopping.wait(max(0.0, pause - (time.monotonic() - began)))
                continue
            if len(active) > target:
                self._remove_jobs(self._choose_leaving(active, len(active) - target))
            return

    def _add_jobs(self, k: int) -> None:
        cluster = self.cluster

        avoid = self._avoid_directive()

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
            self._refresh_job_ids()
        for n in names:
            self._submitted_at[n] = now
        if avoid:
            self.notices.append(f"new job(s) ask SGE to stay off {', '.join(sorted(self._avoided()))} "
                                f"({avoid}): a job there lost its worker")

    def _avoided(self, now: float | None = None) -> set[str]:
        """Hosts new jobs stay off: a job of ours lost its worker there, and no worker of ours
        runs there now (one that does shows the node is alive)."""
        now = time.time() if now is None else now
        alive = {r.host for r in self._last_rows.values() if r.workers and r.host}
        return {h for h, until in self._avoid.items() if until > now and h not in alive}

    def _avoid_directive(self) -> str | None:
        hosts = self._avoided()
        if not hosts or self.backend != "sge":
            return None
        s = self.settings
        asked = " ".join([s.resource_spec or "", *s.job_extra_directives])
        if re.search(r"(^|[\s,])(h|hostname)=", asked):
            return None  # the user chose hosts: a second hostname request would replace theirs
        return "-l h=" + "&".join(f"!{h}" for h in sorted(hosts))

    def _connected_names(self) -> dict[str, str]:
        """worker name -> address, from the scheduler (cheap: names only)."""
        info = self.client.sync(
            self.client.scheduler.identity, n_workers=-1, callback_timeout=15
        )
        return {str(w["name"]): addr for addr, w in info.get("workers", {}).items()}

    def _choose_leaving(self, active: list[str], k: int) -> list[str]:
        """Pick the jobs to remove: not-yet-connected ones first (they hold nothing), then the
        most recently submitted."""
        connected = self._connected_names()
        spec = self.cluster.worker_spec

        def holds_workers(name: str) -> bool:
            return any(w in connected for w in _worker_names(name, spec.get(name, {})))

        idle_first = sorted(active, key=lambda n: (holds_workers(n), self._submitted_at.get(n, 0)))
        pending = [n for n in idle_first if not holds_workers(n)]
        running = [n for n in reversed(active) if holds_workers(n)]
        return (pending + running)[:k]

    def retire_job(self, name_or_job_id: str) -> None:
        """Gracefully remove one job (by spec name or SGE job id); the target drops by one.

        A job that SGE runs but whose worker is gone (its node died) has nothing to hand over:
        it is deleted at once (see :meth:`delete_job`), and the target stays (it was not
        counted)."""
        self._require_scalable()
        name = self._resolve_job(name_or_job_id)
        if name in self._lost_since:
            self.delete_job(name)
            return
        self._stop_adaptive()
        with self._lock:
            self._target = max(0, len(self._active_names()) - 1)
            self._retiring.setdefault(name, time.time())
        self._executor.submit(self._remove_jobs_safe, [name])

    def _resolve_job(self, key: str) -> str:
        key = str(key)
        if key in self.cluster.worker_spec:
            return key
        for name, job_id in self._job_ids.items():
            if job_id == key and name in self.cluster.worker_spec:
                return name
        for name, spec in list(self.cluster.worker_spec.items()):
            if key in _worker_names(name, spec):
                return name
        raise ControllerError(f"no job {key!r} in this cluster")

    def delete_job(self, name_or_job_id: str) -> None:
        """Delete a job now, without moving data: for a job whose worker is gone. Returns at
        once; ``qdel -f`` (for SGE managers and operators) removes it even when its node does
        not answer, else a plain ``qdel`` marks it and SGE keeps it until the node answers."""
        self._require_scalable()
        name = self._resolve_job(name_or_job_id)
        with self._lock:
            self._deleted_by_us.add(name)
            self._uncounted.discard(name)
            lost = self._lost_since.pop(name, None) is not None
            self._retiring.pop(name, None)
        self._executor.submit(self._delete_now_safe, name, lost)

    def _delete_now_safe(self, name: str, lost: bool) -> None:
        cluster = self.cluster
        job_id = self._job_ids.get(name)

        async def forget():
            cluster.worker_spec.pop(name, None)
            cluster.workers.pop(name, None)  # its qdel is ours, not dask-jobqueue's

        try:
            cluster.sync(forget)
            if not job_id:
                return
            words = sge.qdel([job_id])
            force = lost and self._can_force()
            if force:
                # Plain first, then forced: a forced qdel of a dead node's job with no deletion
                # of it under way crashed SGE 8.1.9's qmaster here (twice, 11-30); right after a
                # plain one it never did.
                time.sleep(1.0)
                words = sge.qdel([job_id], force=True)
            row = self._last_rows.get(name)
            if row is not None:
                self._deleting[name] = replace(row, state=JobState.DELETING, since=time.time())
            if lost and not force:
                self.notices.append(
                    f"job {job_id} marked for deletion; SGE keeps it (dr) until its node answers "
                    f"again, or until an SGE manager runs qdel -f {job_id}"
                )
            else:
                self.notices.append(f"job {job_id} deleted: {'; '.join(words) or 'done'}")
        except Exception as exc:
            logger.exception("delete failed")
            self.notices.append(f"deleting job {job_id or name} failed: {exc}")

    def _can_force(self) -> bool:
        if self._may_force is None:
            self._may_force = sge.may_force_delete()
        return self._may_force

    def _remove_jobs_safe(self, names: list[str]) -> None:
        try:
            self._remove_jobs(names)
        except Exception as exc:
            logger.exception("retire failed")
            self.notices.append(f"retiring {', '.join(names)} failed: {exc}")

    def _remove_jobs(self, names: list[str]) -> None:
        if not names:
            return
        cluster = self.cluster
        now = time.time()
        with self._lock:
            for n in names:
                self._retiring.setdefault(n, now)
        try:
            connected = self._connected_names()
            addresses = [
                connected[w]
                for n in names
                for w in _worker_names(n, cluster.worker_spec.get(n, {}))
                if w in connected
            ]
            staying = set(connected.values()) - set(addresses)
            if addresses and staying:
                # Move every key held only by the leaving workers, then close them.
                retired = self.client.retire_workers(
                    workers=addresses, close_workers=True, remove=True
                )
                kept = set(addresses) - set(retired or {})
                if kept:
                    self.notices.append(
                        f"{len(kept)} worker(s) could not hand over their data; "
                        "their job is deleted anyway and lost keys will be recomputed"
                    )
            elif addresses and self._target > 0:
                self.notices.append("no worker left to take the data over: it is dropped")

            async def delete():
                for n in names:
                    cluster.worker_spec.pop(n, None)
                await cluster._correct_state()

            with self._lock:
                self._deleted_by_us.update(names)
            cluster.sync(delete)
        finally:
            with self._lock:
                for n in names:
                    self._retiring.pop(n, None)

    # ------------------------------------------------------------------ adaptive
    def adapt(self, minimum: int, maximum: int, *, interval: float = 2.0, wait_count: int = 3):
        """Adaptive scaling between ``minimum`` and ``maximum`` jobs, through the same
        graceful path as :meth:`scale`. A job is removed only when the scheduler would close
        every one of its worker processes, ``wait_count`` polls in a row."""
        for label, v in (("minimum jobs", minimum), ("maximum jobs", maximum)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ValueError(f"{label}: {v!r} is not a whole number >= 0")
        if minimum > maximum:
            raise ValueError(f"minimum jobs ({minimum}) is larger than maximum jobs ({maximum})")
        self._require_scalable()
        if self.limits is not None:
            self.limits.check(maximum, "adaptive maximum")
        self._stop_adaptive()
        with self._lock:
            self._failed_starts = 0
            self._adaptive = (minimum, maximum)
            cur = len(self._active_names())
            self._target = min(max(cur, minimum), maximum)
        self._kick()
        self._adapt_stop = threading.Event()
        t = threading.Thread(
            target=self._adapt_loop,
            args=(minimum, maximum, interval, wait_count, self._adapt_stop),
            name="ndtui-adapt",
            daemon=True,
        )
        self._adapt_thread = t
        t.start()

    def stop_adapt(self) -> None:
        self._stop_adaptive()

    def _stop_adaptive(self) -> None:
        self._adapt_stop.set()
        t = self._adapt_thread
        if t is not None and t is not threading.current_thread():
            t.join(timeout=10)
        self._adapt_thread = None
        self._adaptive = None

    def _adapt_loop(self, lo, hi, interval, wait_count, stop: threading.Event) -> None:
        down_votes = 0
        while not stop.wait(interval):
            try:
                down_votes = self._adapt_step(lo, hi, wait_count, down_votes)
            except Exception as exc:
                logger.warning("adaptive step failed: %s", exc)

    def _adapt_step(self, lo: int, hi: int, wait_count: int, down_votes: int) -> int:
        if self._pending_work is not None and not self._pending_work.done():
            return down_votes  # one change at a time
        sched = self.client.scheduler
        workers_wanted = self.client.sync(sched.adaptive_target, callback_timeout=15)
        want = min(max(math.ceil(workers_wanted / self.processes), lo), hi)
        active = self._active_names()
        if want > len(active):
            with self._lock:
                self._target = want
            self._kick()
            return 0
        if want == len(active):
            return 0
        down_votes += 1
        if down_votes < wait_count:
            return down_votes
        # Which jobs may go: pending ones first; a running job only if the scheduler would
        # close *all* its workers (never a sibling process of a job that keeps working).
        connected = self._connected_names()
        spec = self.cluster.worker_spec
        pending = [n for n in active if not any(w in connected for w in _worker_names(n, spec.get(n, {})))]
        to_close = set(
            self.client.sync(
                sched.workers_to_close,
                target=max(0, want * self.processes),
                attribute="name",
                callback_timeout=15,
            )
        )
        closable = [
            n
            for n in active
            if n not in pending and all(w in to_close for w in _worker_names(n, spec.get(n, {})))
        ]
        leaving = (pending + closable)[: len(active) - want]
        if leaving:
            with self._lock:
                self._target = len(active) - len(leaving)
            self._remove_jobs(leaving)
        return 0

    # ------------------------------------------------------------------ SGE view
    def jobs_view(
        self,
        sge_jobs: list[SgeJob] | None,
        cluster: ClusterSnapshot | None,
        now: float | None = None,
        sge_time: float | None = None,
    ) -> tuple[JobRow, ...]:
        """Join what the console asked for with SGE's view and the connected workers.

        ``sge_jobs`` is a fresh ``qstat`` taken at ``sge_time`` (None: reuse the last one).
        Jobs that vanished from it although the console did not delete them are marked GONE
        (and, when a fixed job count was asked for, replaced). Jobs that SGE runs but whose
        worker left are marked NO_WORKER (and, after the lost-worker timeout, replaced)."""
        if self.cluster is None:
            return ()
        now = time.time() if now is None else now
        self._refresh_job_ids()
        by_id = {j.job_id: j for j in (sge_jobs or [])}
        if sge_jobs is not None:
            self._last_sge = by_id
        else:
            by_id = self._last_sge
        by_name: dict[str, list[str]] = {}
        if cluster is not None:
            for w in cluster.workers:
                by_name.setdefault(w.name, []).append(w.address)
        rows = []
        vanished = []
        recount = False
        grace = _lost_worker_timeout()
        for name, spec in list(self.cluster.worker_spec.items()):
            name = str(name)
            addrs = tuple(a for w in _worker_names(name, spec) for a in by_name.get(w, ()))
            if addrs:
                self._connected_once.add(name)
            job_id = self._job_ids.get(name)
            submitted = self._submitted_at.get(name)
            row = JobRow(
                name=name,
                job_id=job_id,
                state=JobState.SUBMITTING,
                since=submitted,
                workers=addrs,
                expected_workers=len(_worker_names(name, spec)),
                log_path=self._log_path(job_id, name),
            )
            if addrs and cluster is not None:
                self._had_workers.add(name)
                if self._lost_since.pop(name, None) is not None and name in self._uncounted:
                    self._uncounted.discard(name)
                    self.notices.append(f"job {job_id} ({name}): its worker is back")
                    recount = True
            if self.backend != "sge":
                row = replace(row, state=JobState.RUNNING if addrs else JobState.SUBMITTING)
            elif job_id is not None:
                sj = by_id.get(job_id)
                if sj is not None:
                    if sj.started:
                        self._started_at[name] = sj.started
                    row = replace(
                        row,
                        state=sj.state,
                        raw_state=sj.raw_state,
                        queue=sj.queue,
                        host=sj.host,
                        slots=sj.slots,
                        since=sj.started or sj.submitted or submitted,
                        reason=sj.reason,
                    )
                    since, reason = self._no_worker(name, sj, addrs, cluster, now, grace)
                    if since is not None:
                        row = replace(row, state=JobState.NO_WORKER, since=since, reason=reason)
                        if now - since >= grace and name not in self._uncounted:
                            self._uncounted.add(name)
                            if sj.host:
                                self._avoid[sj.host] = now + AVOID_FOR
                            self.notices.append(
                                f"job {job_id} ({name}) runs in SGE on {sj.host or '?'} without a "
                                f"worker for {now - since:.0f} s: not counted any more"
                                + ("; a replacement is submitted" if self._adaptive is None else "")
                            )
                            recount = True
                elif (
                    sge_jobs is not None
                    and not addrs
                    # a qstat begun before qsub returned cannot list the job (slow qsub)
                    and (sge_time or now) > self._id_seen_at.get(name, now) + 1.0
                ):
                    vanished.append(name)
                    row = replace(row, state=JobState.GONE, since=now)
            if name in self._retiring:
                row = replace(row, state=JobState.RETIRING, since=self._retiring[name])
            rows.append(row)
        if vanished:
            self._forget_gone(vanished, {r.name: r for r in rows}, now)
        if recount and self._adaptive is None and not self._closed:
            self._kick()
        self._last_rows = {r.name: r for r in rows}
        listed = {r.name for r in rows}
        for name, last in list(self._deleting.items()):
            sj = by_id.get(last.job_id or "")
            if sj is None:
                if sge_jobs is not None:
                    del self._deleting[name]
            elif name not in listed:
                rows.append(replace(last, state=sj.state, raw_state=sj.raw_state, workers=()))
                listed.add(name)
        for name, (when, last) in list(self._gone.items()):
            if now - when > GONE_KEEP:
                del self._gone[name]
            elif name not in listed:
                rows.append(last)
        return tuple(rows)

    def _no_worker(self, name, sj: SgeJob, addrs, cluster, now: float, grace: float):
        """(since, reason) when SGE runs the job but it has no worker; (None, "") otherwise."""
        if "t" not in sj.raw_state:
            self._transfer_since.pop(name, None)
        if sj.state is not JobState.RUNNING or addrs or cluster is None or name in self._retiring:
            return None, ""  # (a lost scheduler is not a lost worker)
        clock = lambda t: time.strftime("%H:%M:%S", time.localtime(t))  # noqa: E731
        host = sj.host or "?"
        if name in self._had_workers:
            since = self._lost_since.setdefault(name, now)
            return since, (f"running in SGE on {host}, no worker since {clock(since)}: its node "
                           "may be down; r deletes the job")
        if "t" in sj.raw_state:  # SGE could not hand it to the node's execd
            t0 = self._transfer_since.setdefault(name, now)
            if now - t0 >= grace:
                since = self._lost_since.setdefault(name, t0)
                return since, (f"SGE has been sending it to {host} since {clock(t0)}, no answer: "
                               "its node may be down; r deletes the job")
        return None, ""

    def _forget_gone(self, names: list[str], rows: dict[str, JobRow], now: float) -> None:
        cluster = self.cluster
        failed = 0
        with self._lock:
            names = [n for n in names if n not in self._retiring and n not in self._deleted_by_us]
            lifetime = self.settings.worker_lifetime() if self.backend == "sge" else None
            for n in names:
                self._lost_since.pop(n, None)
                self._uncounted.discard(n)
                self._transfer_since.pop(n, None)
                reason = ""
                started = self._started_at.get(n)
                log = nodecheck.read_tail(rows[n].log_path) if n not in self._had_workers else None
                if log is not None:
                    # it ran (SGE wrote its output file) and no worker of it ever connected: a
                    # replacement would most likely fail the same way, so none is submitted
                    failed += 1
                    reason = nodecheck.start_failure(log)
                    why = f"ended before its worker started: {reason}; not submitted again"
                elif lifetime and started and now - started >= lifetime[0] - lifetime[1] - 5:
                    why = ("ended at its worker lifetime, before the walltime: its workers "
                           "handed their data to the others first")
                else:
                    why = ("left the queue without the console deleting it (qdel from outside, "
                           "walltime, or a node failure)")
                self._gone[n] = (now, replace(rows[n], state=JobState.GONE, since=now, reason=reason))
                self.notices.append(f"job {self._job_ids.get(n)} ({n}) {why}")
            if failed:
                self._target = max(0, self._target - failed)
                if self._adaptive is not None:
                    self._adapt_stop.set()
                    self._adaptive = None
                    self.notices.append("adaptive scaling stopped: jobs fail to start (see above)")
                if n in self._connected_once:
                    self._failed_starts = 0
                else:
                    self._failed_starts += 1
            stop_replacing = self._failed_starts >= FAILED_STARTS_LIMIT
            if stop_replacing and names:
                self.notices.append(
                    f"{self._failed_starts} jobs in a row ended before any of their workers "
                    "connected: not submitting replacements (do the workers fail to start? "
                    f"see a job's output file with l, in {self.settings.log_dir}); scale "
                    "again to retry"
                )

        async def drop():
            for n in names:
                cluster.worker_spec.pop(n, None)
                cluster.workers.pop(n, None)

        if names:
            cluster.sync(drop)
            if self._adaptive is None and not stop_replacing:
                self._kick()  # a fixed job count was asked for: submit replacements

    def _local_log_prefix(self) -> str:
        from naist_dask_tui.core.jobnames import console_job_name

        return f"{console_job_name()}."

    def _log_path(self, job_id: str | None, name: str | None = None) -> str | None:
        if self.backend == "local" and name:
            return worker_log.log_path(self.settings.log_dir, self._local_log_prefix(), name)
        if not job_id or self.backend != "sge" or not self.job_name:
            return None
        return os.path.join(self.settings.log_dir, f"{self.job_name}.o{job_id}")

    def submitted_job_ids(self) -> set[str]:
        self._refresh_job_ids()
        return set(self._job_ids.values())

    # ------------------------------------------------------------------ close
    def close(self, timeout: float = CLOSE_TIMEOUT) -> None:
        """Delete every job of this console (pending ones too) and close the cluster.

        Bounded in every state (a lost scheduler, thousands of jobs asked for, workers failing
        to start): submission stops at once (between two paced batches), every job is deleted
        with one ``qdel`` by id and by this console's job name, and the cluster's own close
        gets ``timeout`` seconds; a cluster that does not close by then is left to the
        process's exit (its jobs are already gone)."""
        if self._closed:
            return
        self._closed = True
        self._stopping.set()
        self._adapt_stop.set()
        self._executor.shutdown(wait=False, cancel_futures=True)
        errors: list[BaseException] = []
        if self.backend == "sge":
            try:
                self._delete_all_jobs()
            except Exception as exc:
                errors.append(exc)
            self._forget_deleted_jobs()
        self._close_cluster(timeout, errors)
        if self.backend == "sge":
            try:  # anything qsub-ed while we were closing
                self._delete_all_jobs()
            except Exception as exc:
                errors.append(exc)
        if self._tls_dir:
            self._remove_credentials()
        if errors:
            logger.warning("errors while closing: %s", errors)

    def _forget_deleted_jobs(self) -> None:
        """The jobs are deleted already: the cluster's close must not ``qdel`` them again one
        by one (a process spawn per job). dask-jobqueue's ``Job.close`` skips a job without an
        id; a job whose ``qsub`` is still running gets its id later, and is deleted by name."""
        cluster = self.cluster
        if cluster is None:
            return
        for job in list(getattr(cluster, "workers", {}).values()):
            if getattr(job, "job_id", None):
                job.job_id = None

    def _close_cluster(self, timeout: float, errors: list[BaseException]) -> None:
        client, cluster = self.client, self.cluster
        scheduler = getattr(cluster, "scheduler", None)
        if scheduler is not None and getattr(scheduler, "status", Status.running) in (
            Status.closed, Status.closing, Status.failed
        ):
            # The scheduler is gone already (the "lost" state): asking it to terminate would
            # wait for a connection until distributed's connect timeout (30 s).
            cluster.shutdown_scheduler = False

        def close_both() -> None:
            for closer in (client, cluster):
                if closer is None:
                    continue
                try:
                    closer.close(timeout=timeout)
                except Exception as exc:
                    errors.append(exc)

        thread = threading.Thread(target=close_both, name="ndtui-close", daemon=True)
        thread.start()
        thread.join(timeout + 2.0)
        if thread.is_alive():
            errors.append(TimeoutError(f"the cluster did not close within {timeout:.0f} s"))
            # distributed's own atexit would try again (and wait once more): it is ours to drop
            with contextlib.suppress(Exception):
                from distributed.deploy.spec import SpecCluster

                SpecCluster._instances.discard(cluster)

    def _remove_credentials(self) -> None:
        # dask-jobqueue keeps the workers' credential files open as NamedTemporaryFiles on the
        # cluster (``_job_<key>``); closing them deletes them. Then the directory goes.
        for key in ("ca_file", "cert", "key"):
            f = getattr(self.cluster, f"_job_{key}", None)
            if f is not None:
                try:
                    f.close()
                except OSError:
                    pass
        shutil.rmtree(self._tls_dir, ignore_errors=True)

    def _delete_all_jobs(self) -> None:
        """One ``qdel`` of every job id this console knows and of its job name (a job whose
        ``qsub`` had not returned yet has no known id but has the name). A job on a dead node
        stays "dr" after a plain qdel until the node answers: those are then forced out, where
        SGE lets us (a forced qdel alone, at once, crashed the qmaster of SGE 8.1.9)."""
        targets = sorted(self.submitted_job_ids())
        if self.job_name:
            targets.append(self.job_name)
        if not targets or not sge.available():
            return
        sge.qdel(targets)
        lost = {self._job_ids.get(n) for n in [*self._lost_since, *self._deleting]} - {None}
        dead = set(self._avoid)
        if not (lost or dead) or not self._can_force():
            return
        try:
            present = {j.job_id: j for j in sge.qstat() if j.name == self.job_name}
        except sge.SgeError as exc:
            logger.warning("qstat failed while closing: %s", exc)
            return
        force = sorted(i for i, j in present.items() if i in lost or j.host in dead)
        if force:
            sge.qdel(force, force=True)

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.close()


def _with_directive(spec: dict, directive: str) -> dict:
    """A copy of a job spec with one more ``#$`` line (the spec dicts are shared)."""
    options = dict(spec["options"])
    options["job_extra_directives"] = [*(options.get("job_extra_directives") or []), directive]
    return {**spec, "options": options}


def _lost_worker_timeout() -> float:
    """How long a job may run without its worker before it stops counting (a nanny restarts a
    worker in a few seconds; a dead node never does): distributed's own lost-worker timeout."""
    try:
        return float(parse_timedelta(dask.config.get("distributed.deploy.lost-worker-timeout")))
    except Exception:
        return 15.0
async def _shield_from_terminal_interrupt() -> None:
    """Run on the cluster's event loop thread: block SIGINT there. Processes started from that
    thread (local workers, qsub) inherit the blocked signal, so a Ctrl+C in the terminal of a
    headless console (sent to its whole process group) does not make every worker print a
    KeyboardInterrupt traceback: the console stops them itself, in order. The main thread,
    which handles the signal, is not affected.

    multiprocessing's resource tracker is started first: starting it unblocks SIGINT again in
    the thread that starts it."""
    if not hasattr(signal, "pthread_sigmask"):
        return
    with contextlib.suppress(Exception):
        from multiprocessing import resource_tracker

        resource_tracker.ensure_running()
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})


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

