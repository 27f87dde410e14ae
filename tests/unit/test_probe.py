"""The scheduler probe against a real distributed scheduler and workers."""

from __future__ import annotations

import time

import dask
import numpy as np
import pytest
from distributed import Client, LocalCluster, wait

from naist_dask_tui.core.probe import SchedulerProbe
from naist_dask_tui.core.scheduler_plugin import HANDLER, ROW_WIDTH

pytestmark = pytest.mark.timeout(120)


def wait_until(pred, timeout=20.0, interval=0.1):
    end = time.time() + timeout
    while time.time() < end:
        value = pred()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("timed out")


@pytest.fixture(scope="module")
def eight_workers():
    with LocalCluster(
        n_workers=8, threads_per_worker=1, processes=False, dashboard_address=None
    ) as cluster, Client(cluster) as client:
        client.wait_for_workers(8)
        yield client


def test_every_worker_never_a_truncated_list(eight_workers):
    probe = SchedulerProbe(eight_workers)
    snap = probe.snapshot()
    assert probe.mode == "plugin"
    assert snap.n_workers == 8
    assert {w.address for w in snap.workers} == set(
        eight_workers.scheduler_info(n_workers=-1)["workers"]
    )
    assert snap.nthreads == 8
    w = snap.workers[0]
    assert w.memory > 0 and w.memory_limit > 0 and w.host
    assert w.unmanaged == max(0, w.memory - w.managed)


def test_identity_fallback_sees_the_same_workers(eight_workers):
    plugin = SchedulerProbe(eight_workers)
    fallback = SchedulerProbe(eight_workers)
    fallback.mode = "identity"
    a, b = plugin.snapshot(), fallback.snapshot()
    assert [w.address for w in a.workers] == [w.address for w in b.workers]
    assert [w.name for w in a.workers] == [w.name for w in b.workers]


def test_only_changed_rows_travel_and_unchanged_rows_are_reused(eight_workers):
    client = eight_workers
    probe = SchedulerProbe(client)
    first = probe.snapshot()
    assert first.changed is None  # first poll: everything is new
    # Two raw calls back to back: the second carries (almost) no rows.
    rpc = getattr(client.scheduler, HANDLER)
    client.sync(rpc, token="t", full=True)
    again = client.sync(rpc, token="t")
    # (the workers' static fields travel only when the set of workers changes)
    assert len(again["flat"]) < 8 * ROW_WIDTH and again["static"] is None

    second = probe.snapshot()
    assert second.changed is not None
    for w in second.workers:
        if w.address not in second.changed:
            old = next(o for o in first.workers if o.address == w.address)
            assert w is old, "an unchanged worker must be the same object"

    target = first.workers[3].address
    fut = client.submit(np.ones, 1000, workers=[target], pure=False)
    wait(fut)

    def landed():
        s = probe.snapshot()
        return s if target in (s.changed or ()) or any(
            w.address == target and w.in_memory == 1 for w in s.workers
        ) else None

    snap = wait_until(landed)
    row = next(w for w in snap.workers if w.address == target)
    wait_until(lambda: next(w for w in probe.snapshot().workers if w.address == target).in_memory == 1)
    assert row.address == target
    del fut


def test_task_counts_include_queued(eight_workers):
    client = eight_workers
    probe = SchedulerProbe(client)
    # 8 threads, 200 sleeping tasks: most of them are queued on the scheduler, which
    # get_task_prefix_states would not count.
    futs = client.map(time.sleep, [0.05] * 200, pure=False)
    snap = wait_until(lambda: (s := probe.snapshot()).tasks.queued > 0 and s)
    t = snap.tasks
    assert t.queued + t.processing + t.memory + t.waiting + t.released <= t.total
    assert t.processing <= 8 * 2
    wait(futs)
    done = probe.snapshot().tasks
    assert done.memory >= 200 and done.queued == 0
    del futs


def test_spilled_bytes_on_a_worker_with_a_tiny_memory_limit(tmp_path):
    # Spill as soon as managed memory passes 10% of a 400 MB limit; no pausing or killing.
    with dask.config.set(
        {
            "distributed.worker.memory.target": 0.1,
            "distributed.worker.memory.spill": False,
            "distributed.worker.memory.pause": False,
            "distributed.worker.memory.terminate": False,
        }
    ):
        with LocalCluster(
            n_workers=1,
            threads_per_worker=1,
            processes=False,
            memory_limit="400MB",
            local_directory=str(tmp_path),
            dashboard_address=None,
        ) as cluster, Client(cluster) as client:
            probe = SchedulerProbe(client)
            futs = client.map(lambda i: np.full(10_000_000 // 8, i, dtype="f8"), range(12), pure=False)
            wait(futs)
            snap = wait_until(lambda: (s := probe.snapshot()).spilled > 0 and s)
            w = snap.workers[0]
            assert w.spilled >= 10_000_000  # at least one 10 MB array is on disk
            assert w.managed < 12 * 10_000_000  # what is in RAM excludes what was spilled
            assert w.memory_limit == 400_000_000
            assert snap.target_fraction == 0.1
            del futs


def test_workers_joining_and_leaving_keep_rows_matched_to_their_workers():
    # Rows name their worker by its index in the scheduler's list, which shifts when workers
    # come and go: every row must still carry its own worker's name and address.
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
    ) as cluster, Client(cluster) as client:
        probe = SchedulerProbe(client)
        assert probe.snapshot().n_workers == 2

        def matches(n):
            snap = probe.snapshot()
            info = client.scheduler_info(n_workers=-1)["workers"]
            if snap.n_workers != n or {w.address for w in snap.workers} != set(info):
                return None
            assert all(w.name == str(info[w.address]["name"]) for w in snap.workers)
            return snap

        cluster.scale(4)
        wait_until(lambda: matches(4))
        cluster.scale(1)
        snap = wait_until(lambda: matches(1))
        assert snap.changed is not None  # a changed set, not a full table again
