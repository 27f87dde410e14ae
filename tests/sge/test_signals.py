"""No orphaned jobs: a console stopped by SIGTERM, SIGHUP (SSH drop) or Ctrl+C deletes every
job it submitted, pending ones included; one killed by SIGKILL leaves jobs that the next
start finds by name and ``--cleanup`` deletes."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

from naist_dask_tui.core import sge
from naist_dask_tui.core.jobnames import console_job_name
from naist_dask_tui.core.snapshot import JobState

from .conftest import spawn, wait_for

pytestmark = [pytest.mark.sge, pytest.mark.timeout(240)]


def headless_console(tmp_path, *extra: str) -> tuple[subprocess.Popen, list[str]]:
    cmd = [
        sys.executable, "-m", "naist_dask_tui", "--headless", "--backend", "sge",
        "--cores", "1", "--processes", "1", "--memory", "1GB",
        "--interface", "lo", "--scheduler-interface", "lo",
        "--local-directory", str(tmp_path), "--log-directory", str(tmp_path / "logs"),
        "--refresh-interval", "0.5", *extra,
    ]  # fmt: skip
    return spawn(cmd, tmp_path)


def mine(proc) -> list:
    return [j for j in sge.qstat() if j.name == console_job_name(pid=proc.pid)]


@pytest.mark.parametrize(
    "signum, held",
    [
        (signal.SIGTERM, False),
        (signal.SIGHUP, False),
        (signal.SIGINT, False),
        (signal.SIGHUP, True),  # a job still pending in the queue goes too
    ],
    ids=["SIGTERM", "SIGHUP", "SIGINT", "SIGHUP-pending"],
)
def test_stop_signal_leaves_qstat_empty(tmp_path, signum, held):
    directives = ["--job-extra-directive", "-pe smp 1"]
    if held:
        directives += ["--job-extra-directive=-h"]
    proc, lines = headless_console(tmp_path, "--jobs", "2", *directives)
    try:
        if held:
            wait_for(lambda: len(mine(proc)) == 2 and all(j.state is JobState.HELD for j in mine(proc)),
                     60, what="2 held jobs")
        else:
            wait_for(lambda: any("workers=2" in line for line in lines), 90, what=f"2 workers: {lines[-3:]}")
        proc.send_signal(signum)
        t0 = time.time()
        rc = proc.wait(timeout=60)
        wait_for(lambda: not mine(proc), 30, what="qstat empty of the console's jobs")
        elapsed = time.time() - t0
        assert rc == 0, lines[-10:]
        assert any("closed" in line for line in lines), lines[-10:]
        assert elapsed < 30
    finally:
        if proc.poll() is None:
            proc.kill()
        sge.qdel([j.job_id for j in mine(proc)])


def test_sigkill_leftovers_are_found_and_cleaned_up(tmp_path):
    proc, lines = headless_console(tmp_path, "--jobs", "1", "--job-extra-directive", "-pe smp 1")
    try:
        wait_for(lambda: any("workers=1" in line for line in lines), 90, what="1 worker")
        job_ids = [j.job_id for j in mine(proc)]
        assert len(job_ids) == 1
        proc.kill()
        proc.wait(timeout=10)
        time.sleep(1)
        leftovers = [item for item in sge.find_leftovers() if item.job.job_id in job_ids]
        assert leftovers and leftovers[0].dead and leftovers[0].pid == proc.pid
        out = subprocess.run(
            [sys.executable, "-m", "naist_dask_tui", "--cleanup"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert out.returncode == 0, out.stderr
        assert f"deleting job {job_ids[0]}" in out.stdout
        wait_for(lambda: not [j for j in sge.qstat() if j.job_id in job_ids], 30, what="leftovers gone")
    finally:
        sge.qdel([j.job_id for j in mine(proc)])


def test_cleanup_keeps_jobs_of_a_live_console(tmp_path):
    proc, lines = headless_console(tmp_path, "--jobs", "1", "--job-extra-directive", "-pe smp 1")
    try:
        wait_for(lambda: mine(proc), 60, what="the console's job")
        out = subprocess.run(
            [sys.executable, "-m", "naist_dask_tui", "--cleanup"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert out.returncode == 0, out.stderr
        assert mine(proc), "cleanup deleted the job of a console that is still running"
        assert "keeping" in out.stdout
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        sge.qdel([j.job_id for j in mine(proc)])
