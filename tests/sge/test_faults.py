"""Faults on a real SGE: a job deleted mid-computation, a scale-down mid-computation, a worker
dying of memory. The console keeps working and loses nothing it can keep."""

from __future__ import annotations

import time

import dask
import dask.array as da
import numpy as np
import pytest

from naist_dask_tui.core import sge
from naist_dask_tui.core.cluster import ClusterController
from naist_dask_tui.core.compute import ComputeSession
from naist_dask_tui.core.monitor import Monitor
from naist_dask_tui.core.snapshot import JobState

from .conftest import _ours, wait_for
from .scenarios import _slow_block, run_in_thread, scale_down_mid_computation

pytestmark = [pytest.mark.sge, pytest.mark.timeout(300)]


def n_workers(m: Monitor) -> int:
    snap = m.poll()
    return snap.cluster.n_workers if snap.cluster else -1


def test_qdel_mid_computation_result_right_job_lost_and_replaced(sge_settings):
    with ClusterController(sge_settings(jobs=2)) as c:
        m = Monitor(c, sge_interval=0)
        wait_for(lambda: n_workers(m) == 2, 90, what="2 workers")
        x = da.random.default_rng(3).random((2000, 2000), chunks=(100, 100))
        z = x.map_blocks(_slow_block, dtype=float).sum()
        result = run_in_thread(lambda: c.client.compute(z).result(timeout=60))
        time.sleep(2)
        victim = sorted(j.job_id for j in _ours())[0]
        sge.qdel([victim])

        def shown_lost():
            return [j for j in m.poll().jobs if j.job_id == victim and j.state is JobState.GONE]

        wait_for(shown_lost, 60, what="the deleted job shown as gone")
        value = result(timeout=90)
        np.testing.assert_allclose(value, np.arcsin(x.compute()).sum())
        wait_for(lambda: n_workers(m) == 2 and victim not in {j.job_id for j in _ours()}, 90,
                 what="a replacement job's worker")


def test_scale_down_mid_computation_recomputes_nothing(sge_settings):
    with ClusterController(sge_settings(jobs=2)) as c:
        m = Monitor(c)
        wait_for(lambda: n_workers(m) == 2, 90, what="2 workers")

        def scale_to_one():
            c.scale(1)
            c.wait_idle(timeout=120)

        out = scale_down_mid_computation(c.client, scale_to_one)
        assert out["holders_before"] == 2
        assert out["correct"]
        assert out["recomputed"] == 0, out
        assert n_workers(m) == 1 and len(_ours()) == 1


def test_busy_queue_2_0_2_converges_no_pending_job_killed(sge_settings):
    # Jobs are submitted on hold, as if the queue were full; the lost-worker timeout is shorter
    # than the wait. Scaling 2 -> 0 -> 2 must still end with 2 running workers.
    s = sge_settings(jobs=2, job_extra_directives=["-pe smp 1", "-h"])
    with dask.config.set({"distributed.deploy.lost-worker-timeout": "3s"}):
        with ClusterController(s) as c:
            m = Monitor(c, sge_interval=0)
            held = wait_for(lambda: len(_ours()) == 2 and all(j.state is JobState.HELD for j in _ours()) and _ours(),
                            30, what="2 held jobs")
            sge.qrls([j.job_id for j in held])
            wait_for(lambda: n_workers(m) == 2, 90, what="2 workers")
            c.scale(0)
            wait_for(lambda: n_workers(m) == 0, 60, what="0 workers")
            c.scale(2)
            held = wait_for(lambda: len(_ours()) == 2 and all(j.state is JobState.HELD for j in _ours()) and _ours(),
                            30, what="2 new held jobs")
            time.sleep(6)  # two lost-worker timeouts while pending
            assert {j.job_id for j in _ours()} == {j.job_id for j in held}, "a pending job was killed"
            assert {r.state for r in m.poll().jobs} == {JobState.HELD}
            sge.qrls([j.job_id for j in held])
            wait_for(lambda: n_workers(m) == 2, 90, what="2 workers again")


def test_worker_dying_of_memory_is_an_error_not_a_crash(sge_settings):
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        with ClusterController(sge_settings(jobs=1, memory="1GB")) as c:
            m = Monitor(c)
            wait_for(lambda: n_workers(m) == 1, 90, what="1 worker")
            before = m.poll().cluster.workers[0].address
            session = ComputeSession(c.client, c.cluster)
            # 1.6 GB on a worker limited to 0.93 GiB: its nanny kills it.
            hog = session.run("dask.delayed(lambda: np.ones(200_000_000).sum())()")
            assert not hog.ok
            assert "KilledWorker" in hog.error or "died" in hog.error or "memory" in hog.error.lower(), hog.error
            # the nanny restarts the worker in the same job; the console carries on
            wait_for(lambda: (s := m.poll()).cluster and s.cluster.n_workers == 1
                     and s.cluster.workers[0].address != before, 60, what="the restarted worker")
            assert len(_ours()) == 1
            ok = session.run("da.ones((100, 100), chunks=50).sum()")
            assert ok.ok and "10000" in ok.value_repr


def test_worker_lifetime_retires_before_the_walltime_keeps_data_and_is_replaced(sge_settings):
    """A job whose workers reach their --lifetime (set before the walltime so that SGE never
    kills them with their data) retires gracefully: its data moves to the job that stays, no
    chunk is recomputed, the console says why the job ended and submits a replacement."""
    from dask.utils import key_split
    from distributed import wait

    from .scenarios import memory_transitions

    settings = sge_settings(jobs=1, lifetime="30s")
    assert settings.worker_lifetime() == (30.0, 1.5)
    with ClusterController(settings) as c:
        m = Monitor(c, sge_interval=0)
        wait_for(lambda: n_workers(m) == 1, 90, what="the first job's worker")
        first = next(j for j in m.poll().jobs if j.state is JobState.RUNNING)
        x = da.random.default_rng(5).random((800, 800), chunks=(100, 100))
        expected = float(x.sum().compute(scheduler="sync"))
        x = c.client.persist(x)
        wait(x)
        prefix, chunks = key_split(x.name), x.npartitions
        # the second job starts well after the first, so it outlives the first one's lifetime
        time.sleep(8)
        c.scale(2)
        wait_for(lambda: n_workers(m) == 2, 60, what="the second job's worker")

        def first_gone():
            return any(j.job_id == first.job_id and j.state is JobState.GONE for j in m.poll().jobs)

        wait_for(first_gone, 60, what="the first job to end at its lifetime")
        assert memory_transitions(c.client, prefix) == chunks  # moved, not recomputed
        assert float(x.sum().compute()) == pytest.approx(expected)
        assert any(f"job {first.job_id}" in n and "worker lifetime" in n for n in c.notices), list(c.notices)
        with open(first.log_path) as f:
            log = f.read()
        assert "worker-lifetime-reached" in log, log[-2000:]
        wait_for(
            lambda: n_workers(m) >= 1 and len(c.submitted_job_ids()) >= 3, 60,
            what="a replacement job for the one that ended",
        )
