"""The lab's network: the scheduler on this host's bond1, the workers on compute nodes node1 and
node2 (their own hosts, their ib0), started with the shipped ``naist`` profile. Data moves
between nodes, a node's job log is read from the login node, jobs on both nodes go at quit,
and a node dies. See tests/sge/lab.py and ci/lab-network.sh."""

from __future__ import annotations

import re
import signal
import subprocess
import time

import dask.array as da
import numpy as np
import pytest
from dask.utils import key_split
from distributed import wait

from naist_dask_tui.core import sge
from naist_dask_tui.core.cluster import ClusterController
from naist_dask_tui.core.jobnames import console_job_name
from naist_dask_tui.core.monitor import Monitor
from naist_dask_tui.core.snapshot import JobState

from . import lab
from .conftest import _ours, wait_for
from .scenarios import _slow_block, memory_transitions, run_in_thread

pytestmark = [pytest.mark.sge, pytest.mark.lab, pytest.mark.timeout(300)]


def workers_on(m: Monitor) -> dict[str, list]:
    """Connected workers by the host the Workers panel shows."""
    snap = m.poll()
    out: dict[str, list] = {}
    for w in snap.cluster.workers if snap.cluster else ():
        out.setdefault(w.host, []).append(w)
    return out


def hosts_of_workers(m: Monitor) -> list[str]:
    return sorted(h for h, ws in workers_on(m).items() for _ in ws)


def running_on(m: Monitor) -> dict[str, str]:
    """SGE job id -> host, for the console's jobs SGE runs with a worker connected."""
    return {j.job_id: j.host for j in m.poll().jobs if j.state is JobState.RUNNING and j.workers}


def job_on(m: Monitor, node: str) -> str:
    return next(job for job, host in running_on(m).items() if host == node)


def computing(c: ClusterController, seed: int):
    """A slow computation under way: its input, and a function that waits for its result."""
    x = da.random.default_rng(seed).random((2000, 2000), chunks=(100, 100))
    z = x.map_blocks(_slow_block, dtype=float).sum()
    result = run_in_thread(lambda: c.client.compute(z).result(timeout=180))
    time.sleep(2)  # under way: tasks and results on both nodes
    return x, result


def add_job_on(c: ClusterController, m: Monitor, node: str) -> None:
    """One job more, started on ``node`` (no other node takes a new job meanwhile)."""
    want = sorted([*hosts_of_workers(m), node])
    with lab.only(node):
        c.scale(c.requested_jobs + 1)
        wait_for(lambda: hosts_of_workers(m) == want, 90, what=f"a new worker on {node}")


def node_python_processes(node: str) -> list[str]:
    pids = subprocess.run(["ip", "netns", "pids", node], capture_output=True, text=True).stdout.split()
    names = []
    for pid in pids:
        try:
            with open(f"/proc/{pid}/comm") as f:
                names.append(f.read().strip())
        except OSError:
            pass
    return [n for n in names if n.startswith("python")]


def test_naist_profile_starts_without_ib0_here_and_the_panels_name_the_nodes(tmp_path):
    s = lab.naist_settings(tmp_path, jobs=2)
    # the profile as shipped, shrunk in size only
    assert (s.queue, s.interface, s.scheduler_interface, s.local_directory, s.tls) == (
        "grid_short.q", "ib0", "bond1", "/var/tmp", True)  # fmt: skip
    assert s.worker_lifetime() is not None and not s.skip_interface_check
    with lab.one_slot_each(), ClusterController(s) as c:
        m = Monitor(c, sge_interval=0)
        wait_for(lambda: hosts_of_workers(m) == ["node1", "node2"], 90,
                 what="a worker on node1 and one on node2, shown by name")  # fmt: skip
        assert c.scheduler_address.startswith("tls://10.77.0.1:")  # bond1
        snap = m.poll()
        by_job = {j.job_id: j for j in snap.jobs}
        for w in snap.cluster.workers:
            node_ip = {"node1": "10.77.0.2", "node2": "10.77.0.3"}[w.host]
            assert w.address.startswith(f"tls://{node_ip}:"), w  # the node's ib0
            assert by_job[w.job_id].host == w.host  # Workers and Jobs panels agree
        assert sorted(j.host for j in snap.jobs) == ["node1", "node2"]


def test_scale_down_moves_data_from_node1_to_node2_and_recomputes_nothing(tmp_path):
    with ClusterController(lab.naist_settings(tmp_path)) as c:
        m = Monitor(c, sge_interval=0)
        add_job_on(c, m, "node2")
        add_job_on(c, m, "node1")  # the newer job: the one a scale-down removes
        client = c.client
        x = client.persist(da.random.default_rng(11).random((1600, 1600), chunks=(200, 200)))
        wait(x)
        where = {w.host: w.address for ws in workers_on(m).values() for w in ws}
        held = {addr: len(keys) for addr, keys in client.has_what().items()}
        assert held[where["node1"]] and held[where["node2"]], "the data must be on both nodes"
        prefix, chunks = key_split(x.name), x.npartitions
        expected = float(x.sum().compute())

        c.scale(1)
        wait_for(lambda: hosts_of_workers(m) == ["node2"] and len(_ours()) == 1, 90,
                 what="scale-down to the job on node2")  # fmt: skip
        assert list(client.has_what()) == [where["node2"]]
        assert len(client.has_what()[where["node2"]]) >= chunks  # all of x moved to node2
        assert float(x.sum().compute()) == pytest.approx(expected)
        assert memory_transitions(client, prefix) == chunks, "a chunk was recomputed"


def test_the_log_of_a_job_on_node2_is_read_from_here(tmp_path):
    """``l`` follows the job's SGE output file: written by node2, read on the login node."""
    from textual.app import App
    from textual.widgets import Log

    from naist_dask_tui.screens.log_tail import LogTailScreen

    with ClusterController(lab.naist_settings(tmp_path)) as c:
        m = Monitor(c, sge_interval=0)
        add_job_on(c, m, "node2")
        job = next(j for j in m.poll().jobs if j.host == "node2")
        assert job.log_path and job.log_path.startswith(str(tmp_path / "logs"))
        text = wait_for(lambda: "Registered to" in (t := open(job.log_path).read()) and t, 30,
                        what="the worker's registration in its log")  # fmt: skip
        assert re.search(r"Start worker at: +tls://10\.77\.0\.3:", text), text  # node2's ib0
        assert re.search(r"Registered to: +tls://10\.77\.0\.1:", text), text  # bond1

        async def follow() -> str:
            app = App()
            async with app.run_test() as pilot:
                await app.push_screen(LogTailScreen(f"job {job.job_id}", job.log_path, interval=0.1))
                for _ in range(100):
                    await pilot.pause(0.1)
                    lines = "\n".join(app.screen.query_one(Log).lines)
                    if "Registered to" in lines:
                        return lines
                return lines

        import asyncio

        shown = asyncio.run(follow())
        assert "tls://10.77.0.3:" in shown and "Registered to" in shown, shown[-2000:]


def test_qdel_from_outside_of_a_node2_job_mid_computation(tmp_path):
    with lab.one_slot_each(), ClusterController(lab.naist_settings(tmp_path, jobs=2)) as c:
        m = Monitor(c, sge_interval=0)
        wait_for(lambda: hosts_of_workers(m) == ["node1", "node2"], 90, what="workers on both nodes")
        x, result = computing(c, seed=3)
        victim = job_on(m, "node2")
        sge.qdel([victim])  # an admin, from outside
        wait_for(lambda: [j for j in m.poll().jobs if j.job_id == victim and j.state is JobState.GONE],
                 60, what="the node2 job shown as gone")  # fmt: skip
        assert any(victim in n and "without the console" in n for n in c.notices)
        np.testing.assert_allclose(result(timeout=150), np.arcsin(x.compute()).sum())
        wait_for(lambda: len(hosts_of_workers(m)) == 2 and victim not in running_on(m), 90,
                 what="a replacement job's worker")  # fmt: skip


@pytest.mark.parametrize("how", ["close", signal.SIGTERM, signal.SIGHUP, signal.SIGINT],
                         ids=["quit", "SIGTERM", "SIGHUP", "ctrl-c"])  # fmt: skip
def test_quit_and_signals_leave_qstat_empty_with_jobs_on_both_nodes(tmp_path, how):
    if how == "close":  # what q (and the keeper's stop) calls
        with lab.one_slot_each():
            c = ClusterController(lab.naist_settings(tmp_path, jobs=2))
            try:
                c.start()
                m = Monitor(c, sge_interval=0)
                wait_for(lambda: hosts_of_workers(m) == ["node1", "node2"], 90, what="workers on both nodes")
            finally:
                c.close()
        mine = _ours
    else:
        with lab.one_slot_each():
            proc, lines = lab.headless(tmp_path, "--jobs", "2")

            def mine():
                return [j for j in sge.qstat() if j.name == console_job_name(pid=proc.pid)]

            try:
                wait_for(lambda: sorted(j.host or "" for j in mine() if j.state is JobState.RUNNING)
                         == ["node1", "node2"] and any("workers=2" in line for line in lines), 90,
                         what=f"jobs on both nodes, 2 workers: {lines[-3:]}")  # fmt: skip
            except BaseException:
                proc.kill()
                raise
        assert any(line.startswith("started sge cluster at tls://10.77.0.1:") for line in lines), lines[:3]
        proc.send_signal(how)
        try:
            assert proc.wait(timeout=60) == 0, lines[-10:]
        finally:
            if proc.poll() is None:
                proc.kill()
        assert any("closed" in line for line in lines), lines[-5:]
    t0 = time.time()
    wait_for(lambda: not mine(), 30, what="qstat empty of the console's jobs")
    # and nothing of theirs runs on the nodes any more
    wait_for(lambda: not node_python_processes("node1") + node_python_processes("node2"), 30,
             what="the workers' processes on the nodes to end")  # fmt: skip
    assert time.time() - t0 < 30


@pytest.fixture
def node2_revived():
    yield
    lab.script("revive", "node2")  # idempotent: starts its execd unless it runs


def test_a_node_dies(tmp_path, node2_revived):
    """Every process of node2 is killed at once (power loss): the computation finishes right on
    node1; node2's job shows as running in SGE with no worker and is not capacity; a
    replacement runs on node1; the job is deleted from the Jobs panel's path (r)."""
    with ClusterController(lab.naist_settings(tmp_path)) as c:
        m = Monitor(c, sge_interval=0)
        with lab.one_slot_each():
            c.scale(2)
            wait_for(lambda: hosts_of_workers(m) == ["node1", "node2"], 90, what="workers on both nodes")
        x, result = computing(c, seed=5)
        dead = job_on(m, "node2")

        lab.script("kill", "node2")

        def no_worker_row():
            snap = m.poll()
            rows = [j for j in snap.jobs if j.job_id == dead and j.state is JobState.NO_WORKER]
            return rows and (rows[0], snap)

        row, snap = wait_for(no_worker_row, 60, what="node2's job shown as running in SGE, no worker")
        assert (row.raw_state, row.host, row.workers) == ("r", "node2", ())
        assert "running in SGE on node2, no worker since" in row.reason
        assert snap.jobs_running == 1 and snap.jobs_no_worker == 1  # not counted as running
        assert hosts_of_workers(m) == ["node1"]
        np.testing.assert_allclose(result(timeout=200), np.arcsin(x.compute()).sum())

        # not capacity: a fixed count of 2 gets a replacement, which can only run on node1
        wait_for(lambda: hosts_of_workers(m) == ["node1", "node1"], 90,
                 what="a replacement worker on node1")  # fmt: skip
        assert c.requested_jobs == 2
        assert any(dead in n and "not counted" in n for n in c.notices), list(c.notices)
        assert [j.raw_state for j in _ours() if j.job_id == dead] == ["r"]  # SGE still runs it

        c.retire_job(dead)  # r on the row in the Jobs panel
        wait_for(lambda: dead not in {j.job_id for j in _ours()}, 30, what="SGE to let go of the job")
        time.sleep(3)
        assert hosts_of_workers(m) == ["node1", "node1"] and c.requested_jobs == 2
        assert len(_ours()) == 2 and {j.host for j in _ours()} == {"node1"}


def test_worker_interface_missing_on_the_nodes_is_said_with_the_node(tmp_path):
    with ClusterController(lab.naist_settings(tmp_path, jobs=1, interface="ib9")) as c:
        m = Monitor(c, sge_interval=0)
        note = wait_for(lambda: m.poll() and [n for n in c.notices if "does not exist" in n], 60,
                        what="the job's reason")  # fmt: skip
        assert "worker interface ib9 does not exist on node" in note[0], note
        assert "(it has: ib0, lo)" in note[0] and "not submitted again" in note[0], note
        time.sleep(4)
        assert len(c.submitted_job_ids()) == 1 and not _ours()
