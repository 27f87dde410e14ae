"""ClusterController and Monitor on a real embedded LocalCluster: scaling, graceful
scale-down, adaptive scaling without lost data, attaching, a lost scheduler, bad requests."""

from __future__ import annotations

import time

import dask.array as da
import numpy as np
import pytest
from dask.utils import key_split
from distributed import Client, LocalCluster, wait

from naist_dask_tui.core.cluster import ClusterController, ControllerError
from naist_dask_tui.core.monitor import Monitor
from naist_dask_tui.core.settings import load_settings
from naist_dask_tui.core.snapshot import JobState
from tests.waiting import closed_within, wait_until

pytestmark = pytest.mark.timeout(180)




def local_settings(tmp_path, **over):
    values = dict(backend="local", jobs=0, cores=1, memory="800MB", local_directory=str(tmp_path))
    values.update(over)
    return load_settings(values, env={})


def memory_transitions(client, prefix):
    def count(dask_scheduler, prefix=prefix):
        tp = dask_scheduler.task_prefixes.get(prefix)
        return tp.state_counts.get("memory", 0) if tp is not None else 0

    return client.run_on_scheduler(count)


def workers(monitor) -> int:
    snap = monitor.poll()
    return snap.cluster.n_workers if snap.cluster else -1


def test_start_scale_and_close(tmp_path):
    c = ClusterController(local_settings(tmp_path, jobs=1, max_jobs=4))
    try:
        c.start()
        assert c.backend == "local"
        m = Monitor(c)
        wait_until(lambda: workers(m) == 1, what="1 worker")
        c.scale(3)
        assert c.requested_jobs == 3 and m.poll().requested_jobs == 3
        wait_until(lambda: workers(m) == 3, what="3 workers")
        snap = m.poll()
        assert len(snap.jobs) == 3 and {j.state for j in snap.jobs} == {JobState.RUNNING}
        assert all(len(j.workers) == 1 for j in snap.jobs)
        names = {w.name for w in snap.cluster.workers}
        c.scale(1)
        wait_until(lambda: workers(m) == 1, what="1 worker")
        c.scale(2)
        wait_until(lambda: workers(m) == 2, what="2 workers")
        new = {w.name for w in m.poll().cluster.workers} - names
        assert new, "a worker name was reused after a scale-down"
    finally:
        c.close()
    assert c.cluster.status.name == "closed"


def test_scale_down_is_graceful_no_task_recomputed(tmp_path):
    with ClusterController(local_settings(tmp_path, jobs=2)) as c:
        m = Monitor(c)
        wait_until(lambda: workers(m) == 2, what="2 workers")
        x = da.random.default_rng(1).random((1200, 1200), chunks=(100, 100))
        x = c.client.persist(x)
        wait(x)
        assert len([a for a, k in c.client.has_what().items() if k]) == 2
        prefix, n = key_split(x.name), x.npartitions
        assert memory_transitions(c.client, prefix) == n
        c.scale(1)
        c.wait_idle()
        assert workers(m) == 1
        assert len(c.client.has_what()[m.poll().cluster.workers[0].address]) >= n
        result = (x + 1).sum().compute()
        assert memory_transitions(c.client, prefix) == n, "a persisted chunk was recomputed"
        np.testing.assert_allclose(result, (x.compute() + 1).sum())


def test_retire_one_job_by_name(tmp_path):
    with ClusterController(local_settings(tmp_path, jobs=2)) as c:
        m = Monitor(c)
        wait_until(lambda: workers(m) == 2, what="2 workers")
        victim = m.poll().jobs[0].name
        c.retire_job(victim)
        assert c.requested_jobs == 1
        wait_until(lambda: workers(m) == 1, what="1 worker")
        assert victim not in {j.name for j in m.poll().jobs}
        with pytest.raises(ControllerError, match="no job"):
            c.retire_job("nonsense")


def test_adaptive_scales_up_and_down_without_losing_data(tmp_path):
    with ClusterController(local_settings(tmp_path, jobs=0)) as c:
        m = Monitor(c)
        c.adapt(0, 2, interval=0.5, wait_count=2)
        assert c.adaptive == (0, 2)
        assert m.poll().adaptive == (0, 2)
        # Work arrives: adaptive asks for workers.
        futs = c.client.map(lambda i: (time.sleep(0.3), np.full(10_000, i))[1], range(40), pure=False)
        wait_until(lambda: workers(m) >= 1, what="adaptive scale-up")
        wait(futs)
        prefix = key_split(futs[0].key)
        assert memory_transitions(c.client, prefix) == 40
        # Idle with results held: adaptive may shrink, but only by moving the data.
        time.sleep(4)
        values = c.client.gather(futs)
        assert [int(v[0]) for v in values] == list(range(40))
        assert memory_transitions(c.client, prefix) == 40, "adaptive scale-down lost data"
        del futs, values
        wait_until(lambda: workers(m) == 0, 60, what="adaptive scale-down to 0")
        c.stop_adapt()
        assert c.adaptive is None


def test_bad_scale_requests(tmp_path):
    with ClusterController(local_settings(tmp_path, jobs=0)) as c:
        for bad in (-1, "3", 2.5, True):
            with pytest.raises(ValueError, match="jobs"):
                c.scale(bad)
        with pytest.raises(ValueError, match="larger than maximum"):
            c.adapt(3, 1)
        assert c.requested_jobs == 0


def test_attach_to_a_running_scheduler_and_lose_it(tmp_path):
    cluster = LocalCluster(n_workers=1, threads_per_worker=1, dashboard_address=None, processes=False, protocol="tcp")
    c = ClusterController(load_settings(dict(attach=cluster.scheduler_address), env={}))
    try:
        c.start()
        assert c.backend == "attach"
        m = Monitor(c)
        snap = m.poll()
        assert snap.connected and snap.cluster.n_workers == 1
        with pytest.raises(ControllerError, match="attached"):
            c.scale(2)
        cluster.close()
        lost = wait_until(lambda: (s := m.poll()) and not s.connected and s, 30, what="lost")
        assert lost.cluster is None and "not answering" in lost.error
    finally:
        c.close()
        cluster.close()


def _spawn(*args: str):
    import subprocess
    import sys

    return subprocess.Popen(
        [sys.executable, "-m", *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def test_attached_console_reconnects_when_the_scheduler_comes_back(tmp_path, monkeypatch):
    """A scheduler we attach to restarts at the same address (a researcher's batch job
    restarted): the console shows it lost, then reconnects by itself, and the compute pane
    runs on the new connection."""
    from distributed.utils import open_port

    import naist_dask_tui.core.backends as backends_mod
    from naist_dask_tui.core.compute import ComputeSession

    monkeypatch.setattr(backends_mod, "ATTACH_TIMEOUT", 2.0)  # the client gives up after 2 s
    address = f"tcp://127.0.0.1:{open_port('127.0.0.1')}"
    sched_args = ("distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port",
                  address.rsplit(":", 1)[1], "--no-dashboard")
    worker_args = ("distributed.cli.dask_worker", address, "--nthreads", "1", "--no-nanny")
    procs = [_spawn(*sched_args)]
    c = ClusterController(load_settings(dict(attach=address), env={}))
    try:
        procs.append(_spawn(*worker_args))
        wait_until(lambda: _answers(address), 60, what="the scheduler")
        c.start()
        m = Monitor(c)
        session = ComputeSession(c.client, None, client_source=lambda: c.client)
        wait_until(lambda: (s := m.poll()).connected and s.cluster.n_workers == 1, 60, what="a worker")
        first_client = c.client
        for p in procs:
            p.kill()
            p.wait()
        wait_until(lambda: not m.poll().connected, 30, what="the lost state")
        procs = [_spawn(*sched_args)]
        procs.append(_spawn(*worker_args))
        snap = wait_until(
            lambda: (s := m.poll()).connected and s.cluster and s.cluster.n_workers == 1 and s,
            90, interval=1.0, what="the console to reconnect",
        )
        assert c.client is not first_client and snap.error is None
        assert any("reconnected" in n for n in snap.notices)
        result = session.run("da.ones((100, 100), chunks=50).sum()")
        assert result.ok and "10000" in result.value_repr, result
    finally:
        c.close()
        for p in procs:
            p.kill()
            p.wait()


def _answers(address: str) -> bool:
    try:
        with Client(address, timeout=2) as client:
            return client.scheduler_info() is not None
    except Exception:
        return False


def test_client_side_compute_uses_the_console_cluster(tmp_path):
    # A user's bare .compute() in the console must run on the console's cluster.
    with ClusterController(local_settings(tmp_path, jobs=1)) as c:
        wait_until(lambda: len(c.client.scheduler_info(n_workers=-1)["workers"]) == 1)
        assert Client.current() is c.client


def test_max_jobs_refuses_scale_adapt_and_start_in_one_line(tmp_path):
    import os

    from naist_dask_tui.core.limits import JobLimitError

    cores = os.cpu_count() or 1
    with ClusterController(local_settings(tmp_path, jobs=0)) as c:
        assert c.max_jobs == cores  # local: the machine's cores
        with pytest.raises(JobLimitError) as err:
            c.scale(10000)
        assert str(err.value).startswith(f"max_jobs: 10000 workers asked for (scale) is above max_jobs {cores}")
        with pytest.raises(JobLimitError, match="max_jobs"):
            c.adapt(0, cores + 1)
        assert c.requested_jobs == 0 and c.adaptive is None and not c.cluster.worker_spec
    # a start above the ceiling fails before any cluster exists
    c = ClusterController(local_settings(tmp_path, jobs=3, max_jobs=2))
    try:
        with pytest.raises(JobLimitError, match=r"max_jobs: 3 workers asked for \(from --jobs\)"):
            c.start()
        assert c.cluster is None
    finally:
        c.close()


def no_worker_process_left() -> None:
    import psutil

    me = psutil.Process()
    wait_until(lambda: not [p for p in me.children(recursive=True) if "resource_tracker" not in " ".join(p.cmdline())],
               20, what="no worker process left")


def test_a_huge_request_is_paced_and_close_is_prompt(tmp_path):
    """The reported case, 10000 local workers, is refused by max_jobs (above); with the
    ceiling raised as far as the memory allows (20 x 800MB), workers start one at a time, and
    close() stops the submission at once and leaves no worker process."""
    c = ClusterController(local_settings(tmp_path, jobs=0, max_jobs=20))
    with closed_within(c):
        c.start()
        c.scale(20)
        # paced: one worker asked for at a time, the next once it started; checked all along
        # the first 2 s (how many start in that time depends on the machine's load)
        t0 = time.monotonic()
        while time.monotonic() - t0 < 2.0:
            started, asked = len(c.cluster.workers), len(c.cluster.worker_spec)
            assert asked <= started + 1, f"{asked} workers asked for with {started} started: not paced"
            time.sleep(0.05)
        assert 1 <= len(c.cluster.workers) < 20, "none, or all 20, started in 2 s"
    no_worker_process_left()


def test_close_with_the_scheduler_lost_is_bounded(tmp_path):
    c = ClusterController(local_settings(tmp_path, jobs=1))
    with closed_within(c):
        c.start()
        wait_until(lambda: len(c.cluster.scheduler.workers) == 1, what="1 worker")
        c.client.sync(c.cluster.scheduler.close)
        time.sleep(0.5)
    no_worker_process_left()


def test_local_workers_memory_limits_add_up_to_no_more_than_the_machine(tmp_path):
    import psutil

    s = load_settings(dict(backend="local", local_directory=str(tmp_path)), env={})
    with ClusterController(s) as c:
        c.scale(c.max_jobs)
        m = Monitor(c)
        wait_until(lambda: workers(m) == c.max_jobs, 90, what=f"{c.max_jobs} workers")
        limits = [w.memory_limit for w in m.poll().cluster.workers]
        assert all(limits) and sum(limits) <= psutil.virtual_memory().total


def _noisy_task(x):
    import warnings

    print("PRINTED-BY-TASK", x, flush=True)
    warnings.warn("WARNED-BY-TASK", stacklevel=1)
    return x


def _failing_task(x):
    raise ValueError("FAILED-TASK")


def test_local_workers_write_to_their_log_file_not_the_terminal(tmp_path, capfd):
    """A task's print, a warning and a failed task's dump go to the worker's log file (the
    one l follows, JobRow.log_path), and nothing of it to the console's stdout/stderr."""
    logs = tmp_path / "logs"
    with ClusterController(local_settings(tmp_path, jobs=1, log_directory=str(logs))) as c:
        m = Monitor(c)
        wait_until(lambda: workers(m) == 1, what="1 worker")
        assert c.client.submit(_noisy_task, 7).result() == 7
        with pytest.raises(ValueError, match="FAILED-TASK"):
            c.client.submit(_failing_task, 1).result()
        (row,) = m.poll().jobs
        assert row.log_path and row.log_path.startswith(str(logs)) and row.name in row.log_path
        markers = ("PRINTED-BY-TASK 7", "WARNED-BY-TASK", "FAILED-TASK")
        text = wait_until(
            lambda: (t := open(row.log_path).read()) and all(k in t for k in markers) and t,
            30, what="the markers in the worker's log file",
        )
        assert "Compute Failed" in text, text[-2000:]  # the worker's dump of the failed task
    out, err = capfd.readouterr()
    for marker in ("PRINTED-BY-TASK", "WARNED-BY-TASK", "Compute Failed"):
        assert marker not in out + err, f"{marker!r} reached the terminal"
