"""What differs between an SGE cluster, a local cluster and a scheduler attached to.

The controller holds one backend object and asks it, instead of branching on a name: how to
start the cluster, what a job's log file is, how many worker processes a job has, how jobs
are submitted (paced), what closing must delete, and what a screen may do with the cluster.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import signal

from dask_jobqueue import SGECluster
from distributed import Client, LocalCluster
from distributed.deploy.cluster import Cluster

from naist_dask_tui.core import limits as job_limits, sge, worker_log
from naist_dask_tui.core.control import WATCH_ONLY, Capabilities

logger = logging.getLogger(__name__)

ATTACH_TIMEOUT = 15.0  # seconds a client waits for (or tries to get back) a scheduler we attach to
# In this process the cluster lives and dies with it: nothing to detach from.
OWNED = Capabilities(scale=True, adapt=True, retire=True, stop=True, detach=False, logs=True)


def worker_names(name: str, spec: dict) -> list[str]:
    """The worker names of one job spec (``name``, or ``name-0``, ``name-1``... with processes)."""
    if "group" in spec:
        return [f"{name}{suffix}" for suffix in spec["group"]]
    return [str(name)]


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


class Backend:
    """A cluster the controller owns (the base of SGE and local)."""

    name = ""
    has_queue = False  # SGE: jobs wait in a queue the console reads
    scalable = True
    capabilities = OWNED
    submit_batch = 1  # jobs started together; a batch starts at most every submit_pause s
    submit_pause = 0.0

    def __init__(self, controller) -> None:
        self.c = controller

    def start(self) -> None:
        raise NotImplementedError

    @property
    def processes(self) -> int:
        return 1

    def job_ids(self) -> dict[str, str]:
        return {}

    def log_path(self, name: str, job_id: str | None) -> str | None:
        return None

    def lifetime(self) -> tuple[float, float] | None:
        return None

    def walltime(self) -> float | None:
        return None

    def memory(self) -> float | None:
        """The memory limit the jobs ask SGE for (for the verdicts); None: none asked."""
        return None

    def avoid_directive(self, hosts: set[str]) -> str | None:
        return None

    def reconnect(self) -> bool:
        return False

    def before_close(self, errors: list[BaseException]) -> None:
        pass

    def after_close(self, errors: list[BaseException]) -> None:
        pass

    # helpers of the owned backends
    def _check_start_request(self, s) -> None:
        """The start's own request against max_jobs, before anything is submitted."""
        if s.adapt_bounds is not None:
            self.c.limits.check(s.adapt_bounds[1], f"adaptive maximum, from {s.origin_of('adapt_max')}")
        else:
            self.c.limits.check(s.jobs, f"from {s.origin_of('jobs')}")

    def _scheduler_options(self, opts: dict | None) -> dict:
        opts = dict(opts or {})
        if self.c.settings.dashboard:
            opts["dashboard"] = True
            opts["dashboard_address"] = self.c.settings.dashboard_address
        else:
            # No Bokeh dashboard; the plain HTTP routes only on loopback, on a free port.
            opts["dashboard"] = False
            opts["dashboard_address"] = "127.0.0.1:0"
        return opts

    def _security(self):
        from naist_dask_tui.core.credentials import make_credentials

        self.c.credentials = make_credentials()
        return self.c.credentials.security()


class SgeBackend(Backend):
    name = "sge"
    has_queue = True
    submit_batch = 4  # so that a large request never floods the queue, and a scale-down,
    submit_pause = 1.0  # close or signal acts between two batches

    def start(self) -> None:
        from naist_dask_tui.core import preflight

        c, s = self.c, self.c.settings
        preflight.require_ready(s)  # bad queue/interface/qsub: no job submitted
        c.limits = job_limits.resolve(s, "sge")
        self._check_start_request(s)
        kwargs = dict(s.sge_cluster_kwargs())
        kwargs["scheduler_options"] = self._scheduler_options(kwargs.get("scheduler_options"))
        os.makedirs(s.log_dir, exist_ok=True)
        if s.tls:
            os.makedirs(s.tls_dir, mode=0o700, exist_ok=True)
            os.chmod(s.tls_dir, 0o700)
            c.tls_dir = s.tls_dir
            kwargs["security"] = self._security()
        c.job_name = kwargs.get("job_name")
        c.cluster = ConsoleSGECluster(**kwargs)
        c.client = Client(c.cluster)

    @property
    def processes(self) -> int:
        return int(self.c.settings.processes)

    def job_ids(self) -> dict[str, str]:
        cluster = self.c.cluster
        if cluster is None:
            return {}
        return {str(n): str(j.job_id) for n, j in list(cluster.workers.items()) if getattr(j, "job_id", None)}

    def log_path(self, name: str, job_id: str | None) -> str | None:
        if not job_id or not self.c.job_name:
            return None
        return os.path.join(self.c.settings.log_dir, f"{self.c.job_name}.o{job_id}")

    def lifetime(self) -> tuple[float, float] | None:
        return self.c.settings.worker_lifetime()

    def walltime(self) -> float | None:
        return self.c.settings.walltime_seconds

    def memory(self) -> float | None:
        from naist_dask_tui.core.accounting import memory_limit

        s = self.c.settings
        asked = [s.resource_spec or "", *(d[3:].strip() for d in s.job_extra_directives if d.startswith("-l "))]
        return memory_limit(",".join(a for a in asked if a))

    def avoid_directive(self, hosts: set[str]) -> str | None:
        if not hosts:
            return None
        s = self.c.settings
        asked = " ".join([s.resource_spec or "", *s.job_extra_directives])
        if re.search(r"(^|[\s,])(h|hostname)=", asked):
            return None  # the user chose hosts: a second hostname request would replace theirs
        return "-l h=" + "&".join(f"!{h}" for h in sorted(hosts))

    def before_close(self, errors: list[BaseException]) -> None:
        try:
            self.delete_all_jobs()
        except Exception as exc:
            errors.append(exc)
        self._forget_deleted_jobs()

    def after_close(self, errors: list[BaseException]) -> None:
        try:  # anything qsub-ed while we were closing
            self.delete_all_jobs()
        except Exception as exc:
            errors.append(exc)

    def _forget_deleted_jobs(self) -> None:
        """The jobs are deleted already: the cluster's close must not ``qdel`` them again one
        by one (a process spawn per job). dask-jobqueue's ``Job.close`` skips a job without an
        id; a job whose ``qsub`` is still running gets its id later, and is deleted by name."""
        cluster = self.c.cluster
        if cluster is None:
            return
        for job in list(getattr(cluster, "workers", {}).values()):
            if getattr(job, "job_id", None):
                job.job_id = None

    def delete_all_jobs(self) -> None:
        """One ``qdel`` of every job id this console knows and of its job name (a job whose
        ``qsub`` had not returned yet has no known id but has the name). A job on a dead node
        stays "dr" after a plain qdel until the node answers: those are then forced out, where
        SGE lets us (a forced qdel alone, at once, crashed the qmaster of SGE 8.1.9)."""
        c = self.c
        targets = sorted(c.submitted_job_ids())
        if c.job_name:
            targets.append(c.job_name)
        if not targets or not sge.available():
            return
        sge.qdel(targets)
        lost, dead = c.lost_job_ids(), c.avoided_hosts()
        if not (lost or dead) or not c.can_force():
            return
        try:
            present = {j.job_id: j for j in sge.qstat() if j.name == c.job_name}
        except sge.SgeError as exc:
            logger.warning("qstat failed while closing: %s", exc)
            return
        force = sorted(i for i, j in present.items() if i in lost or j.host in dead)
        if force:
            sge.qdel(force, force=True)


class LocalBackend(Backend):
    name = "local"

    def start(self) -> None:
        c = self.c
        local, c.limits = job_limits.local_view(c.settings)
        for note in getattr(local, "notes", ()):
            c.notices.append(note)
        c.settings = local
        self._check_start_request(local)
        opts = self._scheduler_options({})
        tls = {}
        if local.tls:
            # A login node is shared: a plain port on loopback lets any local user run
            # code as you. The same mutual TLS as on SGE.
            tls = {"protocol": "tls://", "security": self._security()}
        c.cluster = ConsoleLocalCluster(
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
            env={worker_log.ENV_DIR: local.log_dir, worker_log.ENV_PREFIX: self._log_prefix()},
        )
        c.client = Client(c.cluster)

    @staticmethod
    def _log_prefix() -> str:
        from naist_dask_tui.core.jobnames import console_job_name

        return f"{console_job_name()}."

    def log_path(self, name: str, job_id: str | None) -> str | None:
        return worker_log.log_path(self.c.settings.log_dir, self._log_prefix(), name)


class AttachBackend(Backend):
    """A scheduler started elsewhere: watched, never scaled."""

    name = "attach"
    scalable = False
    capabilities = WATCH_ONLY

    def start(self) -> None:
        self.c.client = Client(self.c.settings.attach, timeout=ATTACH_TIMEOUT)

    def reconnect(self) -> bool:
        """Once the client gave up on a scheduler that went away (it retries by itself for
        ``ATTACH_TIMEOUT``), try a new client at the same address."""
        c = self.c
        if c.closed or c.client is None or c.client.status not in ("closed", "closing"):
            return False  # connected, or still reconnecting by itself
        try:
            new = Client(c.settings.attach, timeout=min(ATTACH_TIMEOUT, 5.0))
        except Exception:
            return False
        with c.lock:
            old, c.client = c.client, new
        with contextlib.suppress(Exception):
            old.close()
        c.notices.append(f"reconnected to the scheduler at {c.settings.attach}")
        return True


BACKENDS = {b.name: b for b in (SgeBackend, LocalBackend, AttachBackend)}


def backend_for(controller) -> Backend:
    return BACKENDS[controller.settings.resolved_backend()](controller)


async def shield_from_terminal_interrupt() -> None:
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
