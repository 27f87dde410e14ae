"""The keeper on a real LocalCluster: the registry on disk, control over the scheduler's RPC,
two clients at once, the idle rule, the client credentials, and the real daemon process."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time

import psutil
import pytest
from distributed import Client

from naist_dask_tui.core import registry
from naist_dask_tui.core.errors import ControllerError
from naist_dask_tui.core.keeper import Keeper
from naist_dask_tui.core.launch import KeeperStartError, start_keeper
from naist_dask_tui.core.remote import RemoteController, connect, env_lines
from naist_dask_tui.core.settings import load_settings
from tests.waiting import wait_until

pytestmark = pytest.mark.timeout(180)




def settings_for(tmp_path, **over):
    values = dict(
        backend="local", jobs=1, cores=1, memory="700MB", refresh_interval=0.3,
        local_directory=str(tmp_path), idle_timeout="off",
    )
    values.update(over)
    return load_settings(values, env={}, dask_config={})


@pytest.fixture
def keeper(tmp_path):
    k = Keeper(settings_for(tmp_path), registry.claim(None, "local"))
    k.start()
    try:
        yield k
    finally:
        k.request_stop("test over")
        k.close()


def test_the_registry_lists_a_running_keeper_and_forgets_a_closed_one(tmp_path):
    k = Keeper(settings_for(tmp_path), registry.claim(None, "local"))
    k.start()
    try:
        [record] = registry.clusters()
        assert (record.name, record.backend, record.state) == ("local", "local", "running")
        assert record.pid == os.getpid() and record.alive()
        assert record.address.startswith("tls://")
        assert registry.find("local") == record
        with pytest.raises(registry.RegistryError, match="already running"):
            registry.claim("local", "local")
        assert registry.claim(None, "local").name == "local-2"  # the next free name
        wait_until(lambda: registry.read_record(record.directory).status.get("workers") == 1,
                   what="status.json to show the worker")
    finally:
        k.request_stop("test over")
        k.close()
    assert [r.name for r in registry.clusters()] == []
    assert not record.directory.exists()


def test_a_stale_record_is_never_listed_and_is_removed(tmp_path):
    directory = registry.claim("ghost", "x")
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    # the pid of a process that is gone, and one that runs but started at another time
    for pid, started in ((proc.pid, time.time()), (os.getpid(), 12345.0)):
        registry.write_record(registry.ClusterRecord(
            name="ghost", directory=directory, pid=pid, create_time=started,
            host=registry.short_hostname(), backend="sge", state="running", address="tls://x:1",
        ))
        assert registry.clusters(clean=False) == []
    registry.clusters()
    assert not directory.exists()


def test_two_clients_see_each_others_intents_within_two_refreshes(keeper):
    a, b = (RemoteController.attached(registry.find(keeper.name)) for _ in range(2))
    try:
        ma, mb = a.make_monitor(), b.make_monitor()
        wait_until(lambda: (ma.poll().screens, mb.poll().screens) == (2, 2), what="2 screens")
        assert mb.poll().requested_jobs == 1
        a.scale(2)
        seen = [mb.poll().requested_jobs for _ in range(2) if not time.sleep(keeper.settings.refresh_interval)]
        assert seen[-1] == 2, seen
        wait_until(lambda: (s := mb.poll()).cluster is not None and s.cluster.n_workers == 2,
                   what="the second worker, seen by the other client")
        b.adapt(1, 2)
        wait_until(lambda: ma.poll().adaptive == (1, 2), what="adaptive, seen by the first")
        b.stop_adapt()
        wait_until(lambda: ma.poll().adaptive is None, what="adaptive off")
        a.detach()
        wait_until(lambda: mb.poll().screens == 1, what="the detached screen to go")
    finally:
        a.close()
        b.close()


def test_control_errors_come_back_in_words(keeper):
    c = RemoteController.attached(registry.find(keeper.name))
    try:
        with pytest.raises(ControllerError, match="no job 'nope'"):
            c.retire_job("nope")
        with pytest.raises(ValueError, match="negative"):
            c.scale(-1)
        with pytest.raises(ControllerError, match="not a whole number"):
            c._control("scale", jobs="many")
        with pytest.raises(ControllerError, match="unknown control action"):
            c._control("explode")
        assert c.requested_jobs == 1  # nothing changed
    finally:
        c.close()


def test_a_jobs_log_is_read_through_the_keeper(keeper, tmp_path):
    log = tmp_path / "job.log"
    log.write_text("line one\nline two\n")
    c = RemoteController.attached(registry.find(keeper.name))
    try:
        m = c.make_monitor()
        wait_until(lambda: m.poll().jobs, what="the job row")
        from dataclasses import replace

        def read(**kw):
            # the keeper's own loop replaces last_snapshot each refresh: point the row at our
            # file just before each read, and read again if a refresh came in between
            for _ in range(20):
                snap = keeper.last_snapshot
                row = snap.jobs[0]
                keeper.last_snapshot = replace(snap, jobs=(replace(row, log_path=str(log)),))
                piece = c.read_log(row.name, **kw)
                if piece["data"].startswith("line"):
                    return piece
            return piece

        piece = read()
        assert piece["data"] == "line one\nline two\n" and piece["offset"] == log.stat().st_size
        with log.open("a") as f:
            f.write("line three\n")
        assert read(offset=piece["offset"])["data"] == "line three\n"
    finally:
        c.close()


def test_client_credentials_are_private_and_required(keeper):
    record = registry.find(keeper.name)
    files = record.client_files
    assert stat.S_IMODE(record.directory.stat().st_mode) == 0o700
    for path in (files.ca, files.cert, files.key):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # plain, no credentials: distributed refuses a tls:// address without a TLS context
    with pytest.raises((OSError, TypeError)):
        Client(record.address, timeout="3s", set_as_default=False)
    from distributed.security import Security

    with pytest.raises(OSError):  # TLS, but a certificate this cluster's CA did not sign
        Client(record.address, security=Security.temporary(), timeout="3s", set_as_default=False)
    with connect(keeper.name, set_as_default=False) as client:
        client.wait_for_workers(1, timeout=60)
        assert client.submit(sum, [1, 2, 3]).result(timeout=30) == 6
        # and the script's dask.array graphs make their chunks where they are used, as the pane's
        import dask
        import dask.array as da

        from naist_dask_tui.core import rootfuse

        assert dask.config.get("array_optimize") is rootfuse.optimize
        x, y = da.ones((40, 40), chunks=10), da.zeros((40, 40), chunks=10)
        assert client.compute((x + y).sum()).result(timeout=30) == 1600


def test_env_lines_make_an_unchanged_client_connect(keeper, tmp_path):
    record = registry.find(keeper.name)
    script = tmp_path / "mine.py"
    script.write_text(
        "from distributed import Client\n"
        "if __name__ == '__main__':\n"
        "    with Client() as c:\n"
        "        c.wait_for_workers(1, timeout=60)\n"
        "        print('RESULT', c.submit(pow, 2, 10).result())\n"
    )
    shell = "\n".join(env_lines(record)) + f"\n{sys.executable} {script}\n"
    env = {k: v for k, v in os.environ.items() if not k.startswith("DASK_")}
    out = subprocess.run(["bash", "-c", shell], capture_output=True, text=True, timeout=120, env=env)
    assert "RESULT 1024" in out.stdout, out.stderr[-2000:]


def test_an_abandoned_cluster_stops_after_its_idle_timeout(tmp_path):
    k = Keeper(settings_for(tmp_path, idle_timeout="2s"), registry.claim(None, "local"))
    k.start()
    try:
        c = RemoteController.attached(registry.find(k.name))
        m = c.make_monitor()
        # a screen polling keeps it, and so does a task that runs
        for _ in range(12):
            m.poll()
            time.sleep(0.3)
        assert not k.stopping
        c.detach()
        with connect(k.name, set_as_default=False) as client:
            client.wait_for_workers(1, timeout=60)
            fut = client.submit(time.sleep, 4, pure=False)
            time.sleep(3)
            assert not k.stopping, "a running task must hold the cluster"
            fut.result(timeout=30)
            t0 = time.time()
            assert wait_until(lambda: k.stopping, 15, what="the idle stop")
            assert time.time() - t0 < 2 + 3 * k.settings.refresh_interval + 1
        assert "idle" in k.stop_reason and "no screen attached" in k.stop_reason
        c.close()
    finally:
        k.close()
    assert registry.clusters() == []


# -- the real daemon -----------------------------------------------------------------------------


def _family(pid: int) -> list[psutil.Process]:
    proc = psutil.Process(pid)
    return [proc, *proc.children(recursive=True)]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_the_keeper_daemon_outlives_its_parent_and_stops_on_a_signal(tmp_path, sig):
    record = start_keeper(settings_for(tmp_path))
    family = []
    try:
        assert record.alive() and record.pid != os.getpid()
        assert os.getsid(record.pid) == record.pid  # its own session: an SSH drop misses it
        c = RemoteController.attached(record)
        wait_until(lambda: (s := c.make_monitor().poll()).cluster and s.cluster.n_workers == 1,
                   what="the worker")
        c.close()
        family = _family(record.pid)
        assert len(family) > 1  # the keeper and its worker processes
        os.kill(record.pid, sig)
        from tests.ui.test_console_signals import wait_gone

        alive = wait_gone(family, 60)
        assert not alive, f"left running: {alive}"
        assert registry.clusters() == []
        log = open(record.log).read()
        assert f"received {signal.Signals(sig).name}" in log and "every job of this cluster deleted" in log
    finally:
        for p in family:
            if p.is_running():
                p.kill()


def test_a_keeper_that_cannot_start_says_why(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no qsub here
    settings = settings_for(tmp_path, backend="sge", queue="grid_short.q", interface=None,
                            scheduler_interface=None)
    with pytest.raises(KeeperStartError, match="qsub"):
        start_keeper(settings)
    assert registry.clusters() == []
    assert not list(registry.clusters_dir().iterdir())


def test_status_json_is_what_ls_shows(keeper):
    from naist_dask_tui.commands import cluster_lines

    record = wait_until(lambda: (r := registry.find(keeper.name)).status.get("workers") == 1 and r,
                        what="the status file")
    lines = cluster_lines([record], now=record.started + 90)
    assert lines[0].split()[:3] == ["NAME", "BACKEND", "ADDRESS"]
    assert lines[1].split()[:4] == ["local", "local", record.address, "1/0"]
    assert "never stops" in lines[1] and "(1m" in lines[1] or "(90s ago)" in lines[1]
    assert json.loads((record.directory / registry.STATUS).read_text())["requested"] == 1


def _bad(i):
    raise ValueError(f"no good: {i % 2}")


def test_ended_jobs_their_post_mortems_and_the_failures_reach_a_screen(keeper):
    """A scale-down: the ended worker is in the keeper's state with its verdict, its detail
    comes through the postmortem action; the screen reads failures from the scheduler."""
    c = RemoteController.attached(registry.find(keeper.name))
    try:
        m = c.make_monitor()
        c.scale(2)
        wait_until(lambda: len([j for j in m.poll().jobs if j.workers]) == 2, what="2 workers")
        c.retire_job(m.poll().jobs[-1].name)
        snap = wait_until(lambda: (s := m.poll()).ended and s, what="an ended worker")
        (ended,) = snap.ended
        assert ended.reason == "stopped by the console (retired with r)"
        assert ended.name not in {j.name for j in snap.jobs}
        detail = c.postmortem(ended.name)
        assert detail["postmortem"]["verdict"] == ended.reason and detail["left_at"]
        assert detail["postmortem"]["log_tail"], "the worker's log was kept"
        live = c.postmortem(snap.jobs[0].name)
        assert live["postmortem"] is None and live["log_tail"] and not live["can_clear"]
        with pytest.raises(ControllerError, match="no job 'nope'"):
            c.postmortem("nope")
        with pytest.raises(ControllerError, match="only SGE jobs"):
            c.clear_job_error(snap.jobs[0].name)
        futures = c.client.map(_bad, range(10))
        wait_until(lambda: all(f.status == "error" for f in futures), what="the failures")
        groups = wait_until(lambda: c.diagnostics.failures(), what="the failure groups")
        assert sorted((g.message, g.count) for g in groups) == [("no good: 0", 5), ("no good: 1", 5)]
        # x in a job's detail, through the keeper: the job is deleted and said so
        survivor = snap.jobs[0].name
        c.delete_job(survivor)
        (gone,) = wait_until(lambda: [j for j in m.poll().ended if j.name == survivor], 90,
                             what="the deleted job among the ended")
        assert gone.reason.endswith("by the console (deleted from the screen)"), gone.reason  # local: "stopped"
    finally:
        c.close()
