"""One refresh of the console: scheduler probe + SGE queue + the jobs' reconcile -> a frozen ConsoleSnapshot.

``Monitor.poll()`` blocks (call it from a thread) and never raises: a lost scheduler comes
back as ``connected=False`` with the reason in words, and the next poll tries again.
The queue is read at its own, slower pace (``qstat`` is a process spawn), and ``qstat -j``
only for jobs that wait.
"""

from __future__ import annotations

import logging
import time

from naist_dask_tui.core import sge
from naist_dask_tui.core.probe import SchedulerProbe
from naist_dask_tui.core.snapshot import ConsoleSnapshot, JobState, SgeJob

logger = logging.getLogger(__name__)


class Monitor:
    def __init__(
        self,
        controller,
        *,
        sge_interval: float = 2.0,
        reason_interval: float = 10.0,
    ):
        self.controller = controller
        self.sge_interval = sge_interval
        self.reason_interval = reason_interval
        self.probe = SchedulerProbe(controller.client, job_of=controller.job_of)
        self._last_qstat = 0.0
        self._last_reasons = 0.0
        self._reasons: dict[str, str] = {}
        self._notices_seen = 0
        self.sge_error: str | None = None

    def _read_queue(self, now: float) -> tuple[list[SgeJob] | None, float | None]:
        if self.controller.backend != "sge" or now - self._last_qstat < self.sge_interval:
            return None, None
        self._last_qstat = now
        try:
            jobs = sge.qstat()
            waiting = [j.job_id for j in jobs if j.state in (JobState.PENDING, JobState.HELD, JobState.ERROR)]
            mine = self.controller.submitted_job_ids()
            waiting = [j for j in waiting if j in mine]
            if waiting and now - self._last_reasons >= self.reason_interval:
                self._last_reasons = now
                self._reasons = sge.pending_reasons(waiting)
            self.sge_error = None
            return sge.with_reasons(jobs, self._reasons), now
        except sge.SgeError as exc:
            self.sge_error = str(exc)
            return None, None

    def _probe_snapshot(self):
        c = self.controller
        if self.probe.client is not c.client:  # the controller reconnected (attach mode)
            self.probe = SchedulerProbe(c.client, job_of=c.job_of)
        return self.probe.snapshot()

    def poll(self) -> ConsoleSnapshot:
        c = self.controller
        now = time.time()
        error = None
        try:
            cluster = self._probe_snapshot()
            connected = True
        except Exception as exc:
            cluster = None
            connected = False
            error = f"scheduler {c.scheduler_address} not answering: {type(exc).__name__}: {exc}".rstrip(": ")
            if c.reconnect():  # attach mode, once the old client gave up
                try:
                    cluster, connected, error = self._probe_snapshot(), True, None
                except Exception:
                    pass
        jobs, sge_time = self._read_queue(now)
        try:
            rows = c.reconcile(jobs, cluster, now=now, sge_time=sge_time)
            ended = c.ended_jobs()
        except Exception as exc:  # never let a refresh die on bookkeeping
            logger.warning("reconciling the jobs failed: %s", exc)
            rows, ended = (), ()
        notices = list(c.notices)
        if self.sge_error:
            notices.append(self.sge_error)
        return ConsoleSnapshot(
            time=now,
            backend=c.backend,
            scheduler_address=c.scheduler_address,
            connected=connected,
            cluster=cluster,
            jobs=rows,
            requested_jobs=c.requested_jobs,
            adaptive=c.adaptive,
            dashboard_link=c.dashboard_link,
            local_directory=getattr(c.settings, "local_directory", None),
            error=error or self.sge_error,
            notices=tuple(notices),
            limits=c.limits,
            ended=ended,
        )
