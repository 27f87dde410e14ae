"""Why a job ended, on a real SGE: its verdict from its accounting (qacct) and its output, kept
after it left the queue; an error (Eqw) job's reason, cleared or deleted from its detail. Each
test asks for one job at a time and leaves qstat empty."""

from __future__ import annotations

import time

import dask
import pytest

from naist_dask_tui.core import registry, sge
from naist_dask_tui.core.cluster import ClusterController
from naist_dask_tui.core.launch import start_keeper
from naist_dask_tui.core.monitor import Monitor
from naist_dask_tui.core.remote import RemoteController
from naist_dask_tui.core.snapshot import JobState

from .conftest import _ours, wait_for

pytestmark = [pytest.mark.sge, pytest.mark.timeout(300)]


def n_workers(m: Monitor) -> int:
    snap = m.poll()
    return snap.cluster.n_workers if snap.cluster else -1


def ended_with(m: Monitor, job_id: str, words: str, timeout: float = 90):
    """The ended row of ``job_id`` once its verdict says ``words`` (qacct comes in the background)."""
    def found():
        rows = [r for r in m.poll().ended if r.job_id == job_id]
        return rows[0] if rows and words in rows[0].reason else None

    try:
        return wait_for(found, timeout, interval=1.0, what=f"job {job_id}'s verdict: {words}")
    except AssertionError:
        raise AssertionError(f"{[(r.job_id, r.reason) for r in m.poll().ended]}") from None


def hold_memory(nbytes: int) -> float:
    """Hold ``nbytes`` in this worker and as much in a child process: each process stays
    under the job's h_vmem (SGE's per-process address space limit), the job does not."""
    import subprocess
    import sys

    import numpy as np

    child = subprocess.Popen([sys.executable, "-c", f"import time; a = bytearray({nbytes}); time.sleep(90)"])
    try:
        a = np.ones(nbytes // 8)
        time.sleep(90)
        return float(a.sum())
    finally:
        child.kill()


# the workers cannot import this test module: the function travels by value (see scenarios.py)
hold_memory.__module__ = "__shipped_by_value__"


def test_a_job_at_its_walltime_is_said_killed_at_the_walltime(sge_settings):
    with ClusterController(sge_settings(jobs=1, walltime="00:00:20", lifetime="off")) as c:
        m = Monitor(c, sge_interval=0.5)
        wait_for(lambda: n_workers(m) == 1, 90, what="the worker")
        (job,) = wait_for(lambda: [j for j in m.poll().jobs if j.state is JobState.RUNNING], 30, what="the job running")
        row = ended_with(m, job.job_id, "killed at the walltime", 120)
        assert row.state is JobState.GONE and "of h_rt 0:00:20" in row.reason, row.reason
        detail = c.postmortem(job.job_id)
        acct = detail["postmortem"]["accounting"]
        assert acct["exit_status"] == 137 and acct["h_rt"] == 20 and acct["wallclock"] >= 19
        assert detail["postmortem"]["log_tail"], "its output, kept"
        c.scale(0)


def test_a_job_over_its_memory_is_said_killed_by_memory_with_maxvmem(sge_settings):
    with ClusterController(sge_settings(jobs=1, memory="8GB", resource_spec="h_vmem=3G")) as c:
        m = Monitor(c, sge_interval=0.5)
        wait_for(lambda: n_workers(m) == 1, 90, what="the worker")
        (job,) = wait_for(lambda: [j for j in m.poll().jobs if j.state is JobState.RUNNING], 30, what="the job running")
        c.client.submit(hold_memory, 1600 * 2**20, pure=False)
        row = ended_with(m, job.job_id, "killed by memory", 150)
        assert "maxvmem" in row.reason and row.reason.endswith("of 3G)"), row.reason
        c.scale(0)


def test_a_job_deleted_from_outside_is_said_deleted_by_someone_else_through_a_keeper(sge_settings):
    record = start_keeper(sge_settings(jobs=1, refresh_interval=0.5))
    try:
        c = RemoteController.attached(record)
        try:
            m = c.make_monitor()
            wait_for(lambda: (s := m.poll()).cluster is not None and s.cluster.n_workers == 1, 90,
                     what="the worker")
            # the keeper's job rows follow its next qstat reading
            (job,) = wait_for(lambda: [j for j in m.poll().jobs if j.state is JobState.RUNNING], 30,
                              what="the job running in the keeper's rows")
            sge.qdel([job.job_id])
            row = ended_with(m, job.job_id, "deleted by someone else", 90)
            assert row.state is JobState.GONE
            detail = c.postmortem(job.job_id)  # through the keeper's control action
            assert detail["postmortem"]["accounting"]["exit_status"] == 137
            assert detail["postmortem"]["verdict"] == row.reason
            c.scale(0)
        finally:
            c.close()
    finally:
        registry.stop(record)


def test_a_job_whose_python_is_not_there_says_the_line_that_says_why(sge_settings):
    with dask.config.set({"jobqueue.sge.python": "/nonexistent/venv/bin/python"}):
        with ClusterController(sge_settings(jobs=1)) as c:
            m = Monitor(c, sge_interval=0.5)
            (job_id,) = wait_for(lambda: c.submitted_job_ids(), 30, what="the job")
            row = ended_with(m, job_id, "ended before its worker started", 60)
            assert "the Python interpreter /nonexistent/venv/bin/python is not there" in row.reason
            assert "No such file or directory" in row.reason, row.reason  # the line itself
            assert c.requested_jobs == 0 and c.submitted_job_ids() == {job_id}  # not submitted again


def test_an_error_job_shows_sges_reason_and_is_cleared_or_deleted(sge_settings):
    s = sge_settings(jobs=1, job_extra_directives=["-pe smp 1", "-wd /nonexistent/ndtui-dir"])
    with ClusterController(s) as c:
        m = Monitor(c, sge_interval=0.5, reason_interval=0)

        def in_error():
            rows = [j for j in m.poll().jobs if j.state is JobState.ERROR and j.reason]
            return rows[0] if rows else None

        row = wait_for(in_error, 60, what="the job in Eqw with its reason")
        assert "can't chdir to /nonexistent/ndtui-dir" in row.reason, row.reason
        detail = c.postmortem(row.job_id)
        assert detail["can_clear"] and detail["can_delete"] and detail["raw_state"] == "Eqw"
        c.clear_job_error(row.job_id)  # not fixed: SGE tries again and puts it back in Eqw
        assert any(f"job {row.job_id}: error cleared" in n for n in c.notices)
        wait_for(lambda: in_error() and in_error().job_id == row.job_id, 60, what="Eqw again")
        c.delete_job(row.job_id)
        ended = ended_with(m, row.job_id, "deleted by the console (deleted from the screen)", 60)
        assert ended.state is JobState.ENDED and c.requested_jobs == 0
        time.sleep(2)
        assert not _ours(), "a replacement was submitted for the deleted job"


@pytest.mark.lab
def test_a_job_whose_worker_cannot_reach_the_scheduler_is_flagged_with_the_cause(tmp_path):
    """On the lab network: the scheduler on the login host's loopback, the worker on a node,
    where 127.0.0.1 is the node itself. The job runs, its worker never connects: a minute in,
    its row says why, from the worker's own output."""
    from . import lab

    # the worker keeps trying for 150 s (by default it gives up after 30 s, and the verdict of
    # the job that ended says the same: see test_postmortem's captured output of this case)
    prologue = ["export DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT=150s"]
    keep_trying = {"jobqueue.sge.job-script-prologue": prologue, "jobqueue.sge.death-timeout": 200}
    with dask.config.set(keep_trying), \
            ClusterController(lab.naist_settings(tmp_path, jobs=1, scheduler_interface="lo")) as c:
        m = Monitor(c, sge_interval=0.5)
        seen: list = []

        def running(saying: str = ""):
            jobs = m.poll().jobs
            seen[:] = [(j.job_id, j.state.name, j.host, j.reason) for j in jobs]
            found = [j for j in jobs if j.state is JobState.RUNNING and saying in (j.reason or "")]
            return found[0] if found else None

        # a node busy with an earlier test's jobs (still being deleted) can keep it pending a
        # while under CI's load: running first, then the minute with no worker
        try:
            wait_for(running, 120, interval=1.0, what="the job running")
            row = wait_for(lambda: running("no worker after 60 s"), 100, interval=1.0,
                           what="the running job flagged after a minute")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; the jobs: {seen}; qstat: {sge.qstat()}") from None
        assert f"is the scheduler {c.scheduler_address} unreachable from the node?" in row.reason, row.reason
        assert c.scheduler_address.startswith("tls://127.0.0.1:")
        assert any(f"job {row.job_id} (job-0) no worker after 60 s" in n for n in c.notices), list(c.notices)
        assert not row.workers and row.host in ("node1", "node2")
        c.scale(0)
