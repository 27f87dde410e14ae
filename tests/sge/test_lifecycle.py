"""The cluster life cycle on a real Son of Grid Engine: start, scale, retire, lose, pend, close."""

from __future__ import annotations

import time

import dask
import dask.array as da
import numpy as np
import pytest
from dask.utils import key_split
from distributed import wait

from naist_dask_tui.core import sge
from naist_dask_tui.core.cluster import ClusterController
from naist_dask_tui.core.monitor import Monitor
from naist_dask_tui.core.snapshot import JobState

from .conftest import _ours, wait_for

pytestmark = [pytest.mark.sge, pytest.mark.timeout(300)]


def memory_transitions(client, prefix: str) -> int:
    """How many times a task of ``prefix`` went to memory: more than the number of its tasks
    means something was recomputed."""

    def count(dask_scheduler, prefix=prefix):
        tp = dask_scheduler.task_prefixes.get(prefix)
        return tp.state_counts.get("memory", 0) if tp is not None else 0

    return client.run_on_scheduler(count)


def n_workers(monitor: Monitor) -> int:
    snap = monitor.poll()
    return snap.cluster.n_workers if snap.cluster else -1


def running_jobs() -> list[str]:
    return sorted(j.job_id for j in _ours() if j.state is JobState.RUNNING)


def test_scale_0_2_1_0_workers_come_and_go(sge_settings):
    with ClusterController(sge_settings(jobs=0)) as c:
        m = Monitor(c, sge_interval=0)
        assert n_workers(m) == 0 and not _ours()

        c.scale(2)
        assert c.requested_jobs == 2  # the request shows at once
        wait_for(lambda: n_workers(m) == 2, 90, what="2 workers")
        assert len(running_jobs()) == 2
        snap = m.poll()
        job_ids = {w.job_id for w in snap.cluster.workers}
        assert job_ids == set(running_jobs()), "each worker maps to its SGE job"
        assert {j.state for j in snap.jobs} == {JobState.RUNNING}

        c.scale(1)
        wait_for(lambda: n_workers(m) == 1 and len(_ours()) == 1, 60, what="1 worker, 1 job")
        left = m.poll().cluster.workers[0].job_id
        assert running_jobs() == [left]

        c.scale(0)
        wait_for(lambda: n_workers(m) == 0 and not _ours(), 60, what="no worker, no job")


def test_scale_down_moves_data_and_recomputes_nothing(sge_settings):
    with ClusterController(sge_settings(jobs=2)) as c:
        m = Monitor(c, sge_interval=0)
        wait_for(lambda: n_workers(m) == 2, 90, what="2 workers")
        client = c.client
        rng = da.random.default_rng(42)
        x = rng.random((2000, 2000, 4), chunks=(250, 250, 4))
        x = client.persist(x)
        wait(x)
        holders = {addr for addr, keys in client.has_what().items() if keys}
        assert len(holders) == 2, "the data must live on both jobs for this test to mean anything"
        prefix = key_split(x.name)
        n_chunks = x.npartitions
        assert memory_transitions(client, prefix) == n_chunks

        c.scale(1)
        wait_for(lambda: n_workers(m) == 1 and len(_ours()) == 1, 90, what="scale-down to 1")
        # the leaving job's keys moved: still all in memory, none recomputed
        total = (da.arcsin(x) + 1).sum(axis=(1, 2)).compute()
        assert memory_transitions(client, prefix) == n_chunks
        expected = (np.arcsin(x.compute()) + 1).sum(axis=(1, 2))
        np.testing.assert_allclose(total, expected)
        assert memory_transitions(client, prefix) == n_chunks


def test_job_deleted_from_outside_shows_gone_and_is_replaced(sge_settings):
    with ClusterController(sge_settings(jobs=2)) as c:
        m = Monitor(c, sge_interval=0)
        wait_for(lambda: n_workers(m) == 2, 90, what="2 workers")
        victim = running_jobs()[0]
        sge.qdel([victim])

        def gone_row():
            snap = m.poll()
            return [j for j in snap.jobs if j.job_id == victim and j.state is JobState.GONE]

        wait_for(gone_row, 60, what=f"job {victim} to show as gone")
        assert any(victim in n and "without the console" in n for n in c.notices)
        # a fixed count of 2 was asked for: a replacement job is submitted and joins
        wait_for(
            lambda: n_workers(m) == 2 and victim not in running_jobs() and len(running_jobs()) == 2,
            90,
            what="a replacement worker",
        )


def test_held_job_is_reported_pending_and_not_killed_as_lost(sge_settings):
    # Every job is submitted on hold (-h), so it waits in the queue for as long as we like.
    # The lost-worker timeout is far shorter than that wait: a console that reused worker
    # names would kill the re-submitted job of a scale 1 -> 0 -> 1 cycle (see DESIGN.md).
    s = sge_settings(jobs=1, job_extra_directives=["-pe smp 1", "-h"])
    with dask.config.set({"distributed.deploy.lost-worker-timeout": "5s"}):
        with ClusterController(s) as c:
            m = Monitor(c, sge_interval=0, reason_interval=0)

            def held_row():
                rows = [j for j in m.poll().jobs if j.state is JobState.HELD and j.job_id]
                return rows[0] if rows and "hold" in rows[0].reason else None

            for cycle in range(2):
                row = wait_for(held_row, 30, what="the held job, reported with its reason")
                time.sleep(7)  # past the lost-worker timeout of the worker that just left
                assert [j.job_id for j in _ours()] == [row.job_id], "the held job was killed"
                assert held_row().job_id == row.job_id
                sge.qrls([row.job_id])
                wait_for(lambda: n_workers(m) == 1, 90, what="the released job's worker")
                if cycle == 0:
                    c.scale(0)
                    wait_for(lambda: n_workers(m) == 0, 60, what="scale to 0")
                    c.scale(1)  # at once: within the lost-worker timeout of the old worker


def test_unsatisfiable_request_is_pending_with_reason(sge_settings):
    s = sge_settings(jobs=1, resource_spec="m_mem_free=100G")
    with ClusterController(s) as c:
        m = Monitor(c, sge_interval=0, reason_interval=0)

        def pending_with_reason():
            rows = [j for j in m.poll().jobs if j.state is JobState.PENDING and j.reason]
            return rows

        rows = wait_for(pending_with_reason, 60, what="a pending job with its reason")
        assert "m_mem_free" in rows[0].reason
        time.sleep(3)
        assert _ours() and _ours()[0].state is JobState.PENDING
