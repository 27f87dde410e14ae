"""The keeper on a real SGE: the cluster outlives its screens, the user's own scripts use it (and
nobody else can), it stops when abandoned, and every way of stopping it empties qstat."""

from __future__ import annotations

import os
import pwd
import signal
import subprocess
import sys
import textwrap
import time

import psutil
import pytest

from naist_dask_tui.core import registry, sge
from naist_dask_tui.core.launch import start_keeper
from naist_dask_tui.core.remote import RemoteController, connect
from naist_dask_tui.core.snapshot import JobState

from .conftest import wait_for

pytestmark = [pytest.mark.sge, pytest.mark.timeout(300)]


def keeper_jobs(record) -> list:
    return [j for j in sge.qstat() if j.name == record.job_name]


def running_workers(controller, n: int, timeout: float = 90) -> None:
    monitor = controller.make_monitor()
    wait_for(lambda: (s := monitor.poll()).cluster is not None and s.cluster.n_workers == n,
             timeout, what=f"{n} worker(s)")


@pytest.fixture
def sge_keeper(sge_settings):
    """A real keeper daemon on SGE with one job; stopped (qstat emptied) afterwards."""
    started = []

    def start(**over):
        record = start_keeper(sge_settings(**{"jobs": 1, "refresh_interval": 0.5, **over}))
        started.append(record)
        return record

    yield start
    for record in started:
        if record.alive():
            registry.stop(record)


def test_a_script_uses_the_cluster_through_env_and_connect(sge_keeper, tmp_path):
    record = sge_keeper()
    c = RemoteController.attached(record)
    try:
        running_workers(c, 1)
    finally:
        c.close()
    # an unchanged script: Client() with no arguments, after eval "$(naist-dask-tui env)"
    script = tmp_path / "analysis.py"
    script.write_text(textwrap.dedent("""\
        import dask.array as da
        from distributed import Client
        if __name__ == "__main__":
            with Client() as client:
                x = da.ones((2000, 2000), chunks=500)
                print("SUM", int(x.sum().compute()), "ON", sorted(client.scheduler_info(n_workers=-1)["workers"]))
    """))
    env = {k: v for k, v in os.environ.items() if not k.startswith("DASK_")}
    exports = subprocess.run([sys.executable, "-m", "naist_dask_tui", "env"], capture_output=True,
                             text=True, timeout=60, env=env)
    assert exports.returncode == 0, exports.stderr
    assert exports.stdout.count("export ") == 5
    out = subprocess.run(["bash", "-c", f"eval \"$({sys.executable} -m naist_dask_tui env)\"; "
                          f"{sys.executable} {script}"], capture_output=True, text=True,
                         timeout=120, env=env)
    assert "SUM 4000000 ON ['tls://" in out.stdout, out.stderr[-3000:]
    # connect(): the same from Python
    with connect(set_as_default=False) as client:
        assert client.submit(lambda: 6 * 7).result(timeout=60) == 42
        [worker] = client.scheduler_info(n_workers=-1)["workers"].values()
        assert str(worker["name"]).startswith("job-")


def test_nobody_without_the_credentials_gets_in(sge_keeper):
    record = sge_keeper()
    from distributed import Client
    from distributed.security import Security

    for attempt, security in (
        (record.address.replace("tls://", "tcp://"), None),
        (record.address, Security.temporary()),  # TLS, but not signed by this cluster's CA
    ):
        with pytest.raises(OSError):
            Client(attempt, security=security, timeout="3s", set_as_default=False)
    # Another Unix user on this login node can neither read the credentials nor connect
    # without them (the system python: no dask needed to knock on a TLS port).
    other = "sgeuser"
    try:
        pwd.getpwnam(other)
    except KeyError:
        pytest.skip(f"no second user {other!r} on this machine (ci/setup-sge.sh creates it)")
    if os.getuid() != 0:
        pytest.skip("needs root to act as another user")
    files = record.client_files
    for path in (files.key, files.cert, files.ca):
        out = subprocess.run(["runuser", "-u", other, "--", "cat", str(path)], capture_output=True, text=True)
        assert out.returncode != 0 and "Permission denied" in out.stderr, (path, out)
    host, port = record.address.replace("tls://", "").rsplit(":", 1)
    knock = textwrap.dedent(f"""\
        import socket, ssl
        ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
        with socket.create_connection(({host!r}, {port})) as raw:
            with ctx.wrap_socket(raw) as tls:
                tls.sendall(b"x" * 64)
                print("READ", tls.recv(64))
    """)
    out = subprocess.run(["runuser", "-u", other, "--", "/usr/bin/python3", "-c", knock],
                         capture_output=True, text=True, timeout=30)
    assert "READ b'x" not in out.stdout
    assert out.returncode != 0 and ("SSL" in out.stderr or "reset" in out.stderr.lower()), out


def test_an_abandoned_cluster_stops_within_its_idle_timeout_and_a_computation_holds_it(sge_keeper):
    record = sge_keeper(idle_timeout="30s")
    c = RemoteController.attached(record)
    running_workers(c, 1)
    c.detach()
    c.close()
    # a computation of a client that is not a screen holds the cluster past the timeout
    with connect(set_as_default=False) as client:
        fut = client.submit(time.sleep, 40, pure=False)
        time.sleep(35)
        assert record.alive() and keeper_jobs(record), "a running task must hold the cluster"
        fut.result(timeout=60)
    t0 = time.time()
    wait_for(lambda: not record.alive(), 30 + 10, what="the idle stop")
    wait_for(lambda: not keeper_jobs(record), 30, what="qstat empty after the idle stop")
    assert time.time() - t0 < 30 + 2 + 10
    log = open(record.log).read()
    assert "idle for" in log and "no screen attached" in log


@pytest.mark.parametrize("how", ["SIGTERM", "SIGHUP", "stop"])
def test_every_way_of_stopping_the_keeper_empties_qstat(sge_keeper, how):
    record = sge_keeper(jobs=2, job_extra_directives=["-pe smp 1"])
    wait_for(lambda: len(keeper_jobs(record)) == 2, 30, what="2 jobs")
    if how == "stop":
        out = subprocess.run([sys.executable, "-m", "naist_dask_tui", "stop", record.name],
                             capture_output=True, text=True, timeout=90)
        assert out.returncode == 0 and f"cluster {record.name} stopped" in out.stdout, out
    else:
        os.kill(record.pid, getattr(signal, how))
    t0 = time.time()
    wait_for(lambda: not keeper_jobs(record), 30, what=f"qstat empty after {how}")
    assert time.time() - t0 < 30
    wait_for(lambda: not record.alive(), 30, what="the keeper to exit")
    assert registry.clusters() == []


def test_a_held_job_goes_too(sge_keeper):
    record = sge_keeper(job_extra_directives=["-pe smp 1", "-h"])
    wait_for(lambda: [j.state for j in keeper_jobs(record)] == [JobState.HELD], 30, what="a held job")
    os.kill(record.pid, signal.SIGHUP)
    wait_for(lambda: not keeper_jobs(record), 30, what="the held job deleted")


def test_a_keeper_killed_with_sigkill_leaves_jobs_that_the_next_start_finds(sge_keeper):
    record = sge_keeper()
    wait_for(lambda: keeper_jobs(record), 30, what="the job")
    job_ids = [j.job_id for j in keeper_jobs(record)]
    os.kill(record.pid, signal.SIGKILL)
    wait_for(lambda: not psutil.pid_exists(record.pid)
             or psutil.Process(record.pid).status() == psutil.STATUS_ZOMBIE, 10, what="the kill")
    from naist_dask_tui.core.paths import state_dir

    tls = state_dir() / "tls" / str(record.pid)
    assert tls.is_dir(), "the workers' credentials of the killed keeper"
    assert registry.clusters() == [], "a dead keeper is never listed"
    assert not tls.exists() and not record.directory.exists(), "stale credentials are removed"
    leftovers = [item for item in sge.find_leftovers() if item.job.job_id in job_ids]
    assert leftovers and all(item.dead for item in leftovers)
    out = subprocess.run([sys.executable, "-m", "naist_dask_tui", "--cleanup"], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0 and f"deleting job {job_ids[0]}" in out.stdout, out
    wait_for(lambda: not [j for j in sge.qstat() if j.job_id in job_ids], 30, what="leftovers gone")
