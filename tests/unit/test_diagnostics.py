"""Failures, slow tasks with their call stacks, and worker events, read from the scheduler's
diagnostics plugin of a real cluster (the controller's LocalCluster)."""

from __future__ import annotations

import time

import dask.array as da
import numpy as np
import pytest
from distributed import wait

from naist_dask_tui.core import diagnostics
from naist_dask_tui.core.cluster import ClusterController
from naist_dask_tui.core.monitor import Monitor
from naist_dask_tui.core.settings import load_settings
from naist_dask_tui.core.snapshot import JobState
from tests.waiting import wait_until

pytestmark = pytest.mark.timeout(240)


def local(tmp_path, **over):
    values = dict(backend="local", jobs=2, cores=1, memory="600MB", local_directory=str(tmp_path),
                  log_directory=str(tmp_path / "logs"), max_jobs=4)
    values.update(over)
    return load_settings(values, env={})


def bad_chunk(block):
    raise ValueError(f"bad chunk of shape {block.shape}")


def lone_nap(seconds):
    time.sleep(seconds)
    return seconds


def nap(seconds):
    time.sleep(seconds)
    return seconds


def hog():
    blocks = [np.ones(10_000_000) for _ in range(100)]  # 8 GB, far past the 600 MB limit
    return sum(b.sum() for b in blocks)


def test_failures_slow_tasks_and_worker_events(tmp_path):
    with ClusterController(local(tmp_path)) as c:
        m = Monitor(c)
        wait_until(lambda: (s := m.poll()).cluster and s.cluster.n_workers == 2, what="2 workers")
        d = c.diagnostics
        # a ValueError in 100 chunks: one group of 100, with the traceback
        x = da.ones((100, 10), chunks=(1, 10)).map_blocks(bad_chunk, dtype=float).persist()
        wait(x)
        (group,) = wait_until(lambda: [g for g in d.failures() if g.count == 100], 30, what="100 failures")
        assert (group.type, group.message) == ("ValueError", "bad chunk of shape (1, 10)")
        assert group.count_since == 100 and "bad_chunk" in group.traceback and group.worker_name
        assert group.keys and group.key.startswith("('bad_chunk-")
        assert d.failures(since=time.time() + 60) == []  # none since a later run began
        del x

        # a task asleep far longer than its group: listed, and its call stack shows the sleep
        c.client.gather(c.client.map(nap, [0.1] * 4, pure=False))
        slow = c.client.submit(nap, 60, pure=False)
        task = wait_until(lambda: [t for t in d.slow_tasks(floor=2.0) if t.group == "nap"], 30,
                          what="the slow task")[0]
        assert task.running >= 2.0 and task.typical and task.typical < 1.0 and task.worker_name  # the median
        stack = "\n".join(d.call_stack(task.key))
        assert "sleep" in stack and "nap" in stack, stack
        # a task whose group has no finished task to compare with: listed once past the bound
        # (on the other worker, while the slow one holds its thread)
        lone = c.client.submit(lone_nap, 20, pure=False)
        (task,) = wait_until(lambda: [t for t in d.slow_tasks(floor=2.0, bound=2.0) if t.group == "lone_nap"],
                             30, what="the lone slow task")
        assert task.typical is None and task.running >= 2.0
        assert not [t for t in d.slow_tasks(floor=2.0, bound=600.0) if t.group == "lone_nap"]
        lone.cancel()
        slow.cancel()

        # a scale-down retires a worker; a task past the memory limit gets a worker killed
        victim = m.poll().jobs[-1].name
        c.retire_job(victim)
        wait_until(lambda: [e for e in d.worker_events() if e.kind == "left" and e.name == victim], 30,
                   what="the retired worker's event")
        (left,) = [e for e in d.worker_events() if e.kind == "left" and e.name == victim]
        assert left.reason.startswith("retired")
        wait_until(lambda: [j for j in m.poll().ended if j.name == victim and j.state is JobState.ENDED], 30,
                   what="the retired worker among the ended")
        h = c.client.submit(hog, pure=False)
        wait_until(lambda: [e for e in d.worker_events() if "killed by memory" in e.reason], 90,
                   what="a worker killed by memory")
        restarted = wait_until(lambda: [e for e in d.worker_events() if e.kind == "restarted"], 60,
                               what="the nanny's restart")
        assert "killed by memory" in restarted[0].reason
        h.cancel()
        joined = [e for e in d.worker_events() if e.kind == "joined"]
        assert {e.name for e in joined} >= {victim} and all(e.host for e in joined)


def test_killed_worker_names_the_workers_and_jobs_that_died(tmp_path):
    import dask

    with dask.config.set({"distributed.scheduler.allowed-failures": 1}):
        with ClusterController(local(tmp_path)) as c:
            m = Monitor(c)
            wait_until(lambda: (s := m.poll()).cluster and s.cluster.n_workers == 2, what="2 workers")
            f = c.client.submit(hog, pure=False)
            with pytest.raises(Exception, match="KilledWorker|died"):
                f.result(timeout=180)
            (group,) = wait_until(lambda: [g for g in c.diagnostics.failures() if g.type == "KilledWorker"],
                                  30, what="the KilledWorker group")
            assert len(group.died) == 2 and set(group.died) <= {"local-0", "local-1"}
            assert group.count == 1 and "hog" in group.key


def test_a_worker_at_its_lifetime_and_a_lost_one_say_so():
    import logging
    import os
    import signal

    from distributed import Client, LocalCluster

    def events(lifetime, act):
        with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None,
                          lifetime=lifetime, silence_logs=logging.ERROR) as cluster, Client(cluster) as client:
            assert diagnostics.install(client)
            d = diagnostics.Diagnostics(client)
            client.wait_for_workers(1)
            act(client, next(iter(client.scheduler_info()["workers"])))
            return wait_until(lambda: [e for e in d.worker_events() if e.kind == "left"], 60, what="it leaving")

    (left,) = events("3s", lambda client, joined: None)
    assert left.reason == "at its lifetime (--lifetime): it retired itself, its data moved", left

    def kill(client, address):  # kill -9: a crashed process, or a dead node's closed connection
        os.kill(client.run(os.getpid, workers=[address])[address], signal.SIGKILL)

    lost = events(None, kill)
    assert lost[0].reason.startswith("lost: its connection closed"), lost
