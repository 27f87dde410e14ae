"""End to end, as a person would: the installed ``naist-dask-tui`` in tmux against the real SGE.
Keys scale it to 2 jobs, both workers show on screen and in qstat, keys scale it back, ``q``
and a confirmation quit, and qstat is empty afterwards. A second run is ended by killing its
tmux session (the SSH-drop case: SIGHUP)."""

from __future__ import annotations

import shutil
import time

import pytest

from naist_dask_tui.core import sge
from naist_dask_tui.core.jobnames import JOB_NAME_PREFIX
from naist_dask_tui.core.snapshot import JobState

from tests.tmux_helper import Tmux, until

from .conftest import wait_for

pytestmark = [
    pytest.mark.sge,
    pytest.mark.timeout(300),
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux not installed"),
]


def console_jobs() -> list:
    return [j for j in sge.qstat() if j.name.startswith(JOB_NAME_PREFIX + ".")]


def flags(tmp_path) -> list[str]:
    return [
        "--backend", "sge", "--jobs", "0", "--cores", "1", "--processes", "1", "--memory", "1GB",
        "--interface", "lo", "--scheduler-interface", "lo", "--job-extra-directive", "-pe smp 1",
        "--local-directory", str(tmp_path), "--log-directory", str(tmp_path / "logs"),
    ]  # fmt: skip


def worker_rows(screen: str) -> list[str]:
    """Rows of the Workers table (SGE workers are named job-<n>)."""
    return [line for line in screen.splitlines() if line.startswith("│job-")]


@pytest.fixture
def tmux(tmp_path):
    t = Tmux(tmp_path, "e2e")
    yield t
    t.kill()


def test_keys_scale_to_two_and_back_then_q_quits_clean(tmux, tmp_path):
    tmux.start(*flags(tmp_path))
    until(tmux, lambda: "connected" in tmux.screen(), 60, "the console's first screen")
    before = {j.job_id for j in console_jobs()}
    tmux.keys("+")
    tmux.keys("+")
    until(tmux, lambda: "2 req" in tmux.screen(), 10, "the request shown at once")
    until(tmux, lambda: len(worker_rows(tmux.screen())) == 2, 90, "2 worker rows")
    mine = [j for j in console_jobs() if j.job_id not in before]
    assert len(mine) == 2 and all(j.state is JobState.RUNNING for j in mine)
    screen = tmux.screen()
    for job in mine:
        assert job.job_id in screen, f"job {job.job_id} not on screen"

    tmux.keys("-")  # 2 -> 1: graceful, no question
    until(tmux, lambda: len(worker_rows(tmux.screen())) == 1, 60, "1 worker row")
    wait_for(lambda: len([j for j in console_jobs() if j.job_id not in before]) == 1, 30, what="1 job")

    tmux.keys("q")
    until(tmux, lambda: "Quit?" in tmux.screen(), 10, "the quit confirmation")
    assert [j for j in console_jobs() if j.job_id not in before], "nothing is deleted before confirming"
    tmux.keys("y")
    until(tmux, lambda: "EXITED 0" in tmux.screen(), 60, "the console to exit")
    wait_for(lambda: not [j for j in console_jobs() if j.job_id not in before], 30, what="qstat empty")


def test_killed_tmux_session_is_an_ssh_drop_and_leaves_qstat_empty(tmux, tmp_path):
    before = {j.job_id for j in console_jobs()}
    tmux.start(*flags(tmp_path)[:3], "1", *flags(tmp_path)[4:])
    until(tmux, lambda: len(worker_rows(tmux.screen())) == 1, 90, "1 worker row")
    mine = [j for j in console_jobs() if j.job_id not in before]
    assert mine
    t0 = time.time()
    tmux.kill()  # the terminal goes away: SIGHUP to the console
    wait_for(lambda: not [j for j in console_jobs() if j.job_id in {m.job_id for m in mine}], 30,
             what="qstat empty after SIGHUP")
    assert time.time() - t0 < 30


def test_ctrl_c_twice_quits_and_leaves_qstat_empty(tmux, tmp_path):
    before = {j.job_id for j in console_jobs()}
    tmux.start(*flags(tmp_path)[:3], "1", *flags(tmp_path)[4:])
    until(tmux, lambda: len(worker_rows(tmux.screen())) == 1, 90, "1 worker row")
    mine = [j for j in console_jobs() if j.job_id not in before]
    assert mine
    tmux.keys("C-c")  # a key in the raw terminal: asks first, like q
    until(tmux, lambda: "Quit?" in tmux.screen(), 10, "the quit confirmation")
    tmux.keys("C-c")  # a second Ctrl+C means it
    until(tmux, lambda: "EXITED" in tmux.screen(), 60, "the console to exit")
    wait_for(lambda: not [j for j in console_jobs() if j.job_id in {m.job_id for m in mine}], 30,
             what="qstat empty after Ctrl+C")
