"""ClusterController: start, scale (gracefully), adapt, watch and close a Dask cluster.

Backends (:mod:`backends`): an SGECluster from dask-jobqueue, an embedded LocalCluster, or a
scheduler we attach to. Three things dask-jobqueue does not do are done here:

* **Graceful scale-down.** ``SpecCluster.scale()`` passes worker *names* to
  ``retire_workers``, which wants addresses, so nothing is retired and a job is ``qdel``-ed
  with its data (distributed#4069). Here every worker process of a leaving job is retired by
  address (its keys are copied to the workers that stay) and only then is the job deleted.
  Adaptive scaling (:mod:`adaptive`) uses the same path, and closes a job only when *all* its
  worker processes may go (dask-jobqueue#498).
* **Pending is normal.** Worker names are never reused, so distributed's lost-worker timer
  cannot kill a re-submitted job that waits in a busy queue (see DESIGN.md).
* **No orphaned jobs.** ``close()`` deletes every job this console submitted, pending ones
  included, by id and by this console's job name.

Every job has a record in a :class:`~jobledger.Ledger` that outlives it. Each refresh runs
:meth:`ClusterController.reconcile`: the ledger is updated from SGE's queue and the workers
(:mod:`reconcile`: jobs gone, jobs without a worker, jobs that cannot start), the effects are
carried out here (specs forgotten, replacements submitted), and the rows are built from the
ledger. A job that left the queue keeps a post-mortem: its output's last lines at once, its
accounting (``qacct``) from a background thread, and a one-line verdict.

All public methods are blocking and thread-safe; the UI calls them from thread workers.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import threading
import time

import dask
from dask.utils import parse_timedelta
from distributed.core import Status

from naist_dask_tui.core import sge
from naist_dask_tui.core.accounting import Accounting, AccountingReader
from naist_dask_tui.core.adaptive import AdaptiveScaling
from naist_dask_tui.core.backends import backend_for, shield_from_terminal_interrupt, worker_names
from naist_dask_tui.core.errors import ControllerError
from naist_dask_tui.core.jobledger import Ledger, ended_rows, job_detail, job_rows
from naist_dask_tui.core.notices import NoticeLog
from naist_dask_tui.core.postmortem import read_tail_lines
from naist_dask_tui.core.reconcile import (  # noqa: F401  (FAILED_STARTS_LIMIT: tests read it here)
    FAILED_STARTS_LIMIT,
    Observation,
    Policy,
    reconcile,
    refresh_verdict,
)
from naist_dask_tui.core.scaling import Scaler
from naist_dask_tui.core.snapshot import ClusterSnapshot, JobRow, SgeJob

logger = logging.getLogger(__name__)

CLOSE_TIMEOUT = 15.0  # seconds close() waits for the cluster's own close before giving up on it


class ClusterController:
    def __init__(self, settings):
        self.settings = settings
        self._backend = backend_for(self)
        self.backend: str = self._backend.name
        self.cluster = None
        self.client = None
        self.name: str | None = None  # set by a keeper that owns this controller
        self.notices = NoticeLog(maxlen=50)
        self.credentials = None  # ClusterCredentials when the cluster speaks TLS
        self.job_name: str | None = None  # SGE -N of this console's jobs
        self.limits = None  # core.limits.Limits in force (max_jobs; None: attached)
        self.tls_dir: str | None = None
        self.lock = threading.RLock()
        self.target = 0  # jobs asked for (by the user or adaptive scaling)
        self.closed = False
        self.ledger = Ledger()
        self._adaptive = AdaptiveScaling(self)
        self.scaler = Scaler(self)
        self._may_force: bool | None = None
        self._accounting: AccountingReader | None = None
        self._diagnostics = None

    # ------------------------------------------------------------------ life cycle
    def start(self) -> None:
        self._backend.start()
        if self.cluster is not None:
            self.cluster.sync(shield_from_terminal_interrupt)
        from naist_dask_tui.core.diagnostics import install

        install(self.client)  # failed tasks and worker events, recorded from the start
        s = self.settings
        if self._backend.scalable:
            if s.adapt_bounds is not None:
                self.adapt(*s.adapt_bounds)
            else:
                self.scale(s.jobs)

    @property
    def capabilities(self):
        return self._backend.capabilities

    @property
    def has_queue(self) -> bool:
        return self._backend.has_queue

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

    @property
    def max_jobs(self) -> int | None:
        return self.limits.max_jobs if self.limits is not None else None

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
        return self.target

    @property
    def adaptive(self) -> tuple[int, int] | None:
        return self._adaptive.bounds

    @property
    def processes(self) -> int:
        return self._backend.processes

    @property
    def diagnostics(self):
        """Failed tasks, slow tasks and their call stacks, worker events (see :mod:`diagnostics`)."""
        from naist_dask_tui.core.diagnostics import Diagnostics

        if self._diagnostics is None or self._diagnostics.client is not self.client:
            self._diagnostics = Diagnostics(self.client, self.job_of)
        return self._diagnostics

    def job_of(self, worker_name: str) -> str | None:
        """SGE job id of a worker, from its name (``<spec>`` or ``<spec>-<i>``)."""
        with self.lock:
            return self.ledger.job_of(worker_name, self.processes)

    def _refresh_job_ids(self) -> None:
        ids = self._backend.job_ids()
        with self.lock:
            self.ledger.note_job_ids(ids, time.time())

    def submitted_job_ids(self) -> set[str]:
        self._refresh_job_ids()
        with self.lock:
            return self.ledger.job_ids()

    def reconnect(self) -> bool:
        """Attach mode: once the client gave up on a scheduler that went away, try a new
        client at the same address. True when a new client is in place; callers holding the
        old one (probe, compute session) rebind to ``self.client``. Other backends own their
        scheduler: nothing to reconnect to."""
        return self._backend.reconnect()

    # ------------------------------------------------------------------ scaling
    def wait_idle(self, timeout: float = 300) -> None:
        """Block until background scaling work has finished (tests, headless mode)."""
        self.scaler.wait_idle(timeout)

    def _require_scalable(self) -> None:
        if not self._backend.scalable or self.cluster is None:
            raise ControllerError(
                "attached to a scheduler started elsewhere: scale it where it was started"
            )
        if self.closed:
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
        self._adaptive.stop()
        with self.lock:
            self.target = jobs
            self.ledger.failed_starts = 0  # asked again: try again
        self.scaler.kick()

    def retire_job(self, name_or_job_id: str) -> None:
        """Gracefully remove one job (by spec name or SGE job id); the target drops by one.

        A job that SGE runs but whose worker is gone (its node died) has nothing to hand over:
        it is deleted at once (see :meth:`delete_job`), and the target stays (it was not
        counted)."""
        self._require_scalable()
        name = self._resolve_job(name_or_job_id)
        rec = self.ledger.get(name)
        if rec is not None and rec.lost_since is not None:
            self.delete_job(name, "its worker was gone")
            return
        self._adaptive.stop()
        with self.lock:
            self.target = max(0, len(self.scaler.active_names()) - 1)
            rec = self.ledger.ensure(name)
            rec.retiring_since = rec.retiring_since or time.time()
        self.scaler.submit(self.scaler.remove_jobs_safe, [name], "retired with r")

    def _resolve_job(self, key: str) -> str:
        key = str(key)
        spec = self.cluster.worker_spec
        if key in spec:
            return key
        rec = self.ledger.by_job_id(key)
        if rec is not None and rec.name in spec:
            return rec.name
        for name, s in list(spec.items()):
            if key in worker_names(name, s):
                return name
        raise ControllerError(f"no job {key!r} in this cluster")

    def delete_job(self, name_or_job_id: str, why: str = "deleted from the screen") -> None:
        """Delete a job now, without moving data: for a job whose worker is gone, or one SGE
        cannot start (Eqw). Returns at once; ``qdel -f`` (for SGE managers and operators)
        removes it even when its node does not answer, else a plain ``qdel`` marks it and SGE
        keeps it until the node answers."""
        self._require_scalable()
        name = self._resolve_job(name_or_job_id)
        with self.lock:
            rec = self.ledger.ensure(name)
            if not (rec.uncounted or rec.lost_since is not None) and self.adaptive is None:
                self.target = max(0, self.target - 1)  # it counted: no replacement for it
            rec.deleted = why
            rec.show_deleting = True
            rec.uncounted = False
            lost = rec.lost_since is not None
            rec.lost_since = None
            rec.retiring_since = None
        self.scaler.submit(self.scaler.delete_now, name, lost)

    def clear_job_error(self, name_or_job_id: str) -> str:
        """``qmod -cj``: SGE tries an error (Eqw) job again, once its cause is fixed."""
        if not self.has_queue:
            raise ControllerError("only SGE jobs have an error state to clear")
        rec = self.ledger.find(name_or_job_id)
        if rec is None or not rec.job_id:
            raise ControllerError(f"no job {name_or_job_id!r} in this cluster")
        words = sge.qmod_clear([rec.job_id])
        self.notices.append(f"job {rec.job_id}: error cleared ({'; '.join(words) or 'done'})")
        return "; ".join(words)

    def can_force(self) -> bool:
        if self._may_force is None:
            self._may_force = sge.may_force_delete()
        return self._may_force

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
        self._adaptive.start(minimum, maximum, interval, wait_count)

    def stop_adapt(self) -> None:
        self._adaptive.stop()

    # ------------------------------------------------------------------ the jobs, each refresh
    def _policy(self) -> Policy:
        b = self._backend
        return Policy(
            has_queue=b.has_queue, grace=_lost_worker_timeout(), adaptive=self.adaptive is not None,
            closed=self.closed, lifetime=b.lifetime(), walltime=b.walltime(), memory=b.memory(),
            log_dir=self.settings.log_dir, log_path=b.log_path,
            scheduler=self.cluster.scheduler_address if self.cluster is not None else None,
        )

    def reconcile(
        self,
        sge_jobs: list[SgeJob] | None,
        cluster: ClusterSnapshot | None,
        now: float | None = None,
        sge_time: float | None = None,
    ) -> tuple[JobRow, ...]:
        """One reconcile step (see :mod:`reconcile`) and its effects; returns the live job
        rows. ``sge_jobs`` is a fresh ``qstat`` taken at ``sge_time`` (None: none this time);
        ``cluster`` the scheduler's snapshot (None: it did not answer)."""
        if self.cluster is None:
            return ()
        now = time.time() if now is None else now
        self._refresh_job_ids()
        specs = {str(n): tuple(worker_names(str(n), s)) for n, s in list(self.cluster.worker_spec.items())}
        workers: dict[str, tuple[str, ...]] | None = None
        if cluster is not None:
            workers = {}
            for w in cluster.workers:
                workers[w.name] = (*workers.get(w.name, ()), w.address)
        qstat = {j.job_id: j for j in sge_jobs} if sge_jobs is not None else None
        obs = Observation(now=now, specs=specs, workers=workers, qstat=qstat, qstat_time=sge_time)
        with self.lock:
            fx = reconcile(self.ledger, obs, self._policy())
            if fx.failed:
                self.target = max(0, self.target - fx.failed)
            if fx.stop_adaptive:
                self._adaptive.stop_soon()
            rows = job_rows(self.ledger, list(specs), self.ledger.last_sge,
                            has_queue=self.has_queue, now=now)
        for text in fx.notices:
            self.notices.append(text)
        if fx.drop:
            self._forget_specs(fx.drop)
        for name in fx.ended:
            self._read_accounting(name)
        if fx.kick and not self.closed:
            self.scaler.kick()
        return rows

    def ended_jobs(self) -> tuple[JobRow, ...]:
        """The newest jobs that left the queue, each with its verdict (``reason``)."""
        with self.lock:
            return ended_rows(self.ledger)

    def postmortem(self, name_or_job_id: str) -> dict:
        """Everything known of one job (live or ended): its record, SGE's last word, its
        output's last lines, its accounting and verdict once it ended."""
        with self.lock:
            rec = self.ledger.find(str(name_or_job_id))
            if rec is None:
                raise ControllerError(f"no job {name_or_job_id!r} in this cluster")
            detail = job_detail(rec, self.has_queue)
        if detail["postmortem"] is None:  # a live job: its output now
            detail["log_tail"] = list(read_tail_lines(detail["log_path"]) or ())
        return detail

    def _forget_specs(self, names: list[str]) -> None:
        cluster = self.cluster

        async def drop():
            for n in names:
                cluster.worker_spec.pop(n, None)
                cluster.workers.pop(n, None)

        cluster.sync(drop)

    def _read_accounting(self, name: str) -> None:
        rec = self.ledger.get(name)
        if rec is None or not self.has_queue or not rec.job_id or self.closed:
            return
        if self._accounting is None:
            self._accounting = AccountingReader(self._on_accounting)
        self._accounting.add(rec.job_id)

    def _on_accounting(self, job_id: str, acct: Accounting | None, note: str) -> None:
        with self.lock:
            rec = self.ledger.by_job_id(job_id)
            if rec is None or rec.postmortem is None:
                return
            before = rec.postmortem.verdict
            rec.postmortem.accounting, rec.postmortem.accounting_note = acct, note
            verdict = refresh_verdict(rec, self._policy())
        if acct is not None and not rec.deleted and verdict != before:
            self.notices.append(f"job {job_id} ({rec.name}): {verdict}")

    def lost_job_ids(self) -> set[str]:
        """Jobs SGE runs whose node seems dead (lost worker, or deleted and still listed)."""
        with self.lock:
            return {r.job_id for r in self.ledger
                    if r.job_id and (r.lost_since is not None or (r.show_deleting and not r.ended))}

    def avoided_hosts(self) -> set[str]:
        with self.lock:
            return set(self.ledger.avoid)

    # ------------------------------------------------------------------ close
    def close(self, timeout: float = CLOSE_TIMEOUT) -> None:
        """Delete every job of this console (pending ones too) and close the cluster.

        Bounded in every state (a lost scheduler, thousands of jobs asked for, workers failing
        to start): submission stops at once (between two paced batches), every job is deleted
        with one ``qdel`` by id and by this console's job name, and the cluster's own close
        gets ``timeout`` seconds; a cluster that does not close by then is left to the
        process's exit (its jobs are already gone)."""
        if self.closed:
            return
        self.closed = True
        self._adaptive.stop_soon()
        self.scaler.shutdown()
        if self._accounting is not None:
            self._accounting.stop()
        with self.lock:
            for rec in self.ledger:
                if not rec.ended and not rec.deleted:
                    rec.deleted = "the cluster was stopped"
        errors: list[BaseException] = []
        self._backend.before_close(errors)
        self._close_cluster(timeout, errors)
        self._backend.after_close(errors)
        if self.tls_dir:
            self._remove_credentials()
        if errors:
            logger.warning("errors while closing: %s", errors)

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
        shutil.rmtree(self.tls_dir, ignore_errors=True)

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.close()


def _lost_worker_timeout() -> float:
    """How long a job may run without its worker before it stops counting (a nanny restarts a
    worker in a few seconds; a dead node never does): distributed's own lost-worker timeout."""
    try:
        return float(parse_timedelta(dask.config.get("distributed.deploy.lost-worker-timeout")))
    except Exception:
        return 15.0
