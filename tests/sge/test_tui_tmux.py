"""End to end, as a person would: the installed ``naist-dask-tui`` in tmux against the real SGE.
Keys scale it to 2 jobs, both workers show on screen and in qstat, keys scale it back, ``q``
and "stop" quit, and qstat is empty afterwards. ``d`` and a killed tmux session (the SSH-drop
case: SIGHUP) detach: the jobs keep running, ``ls`` lists the cluster, ``naist-dask-tui`` again
reattaches to the same jobs, and ``naist-dask-tui stop`` empties qstat."""

from __future__ import annotations

import shutil
import subprocess
import time

import pytest

from naist_dask_tui.core import sge
from naist_dask_tui.core.snapshot import JobState
from tests.tmux_helper import EXE, Tmux, until

from .conftest import keeper_jobs, wait_for

pytestmark = [
    pytest.mark.sge,
    pytest.mark.timeout(300),
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux not installed"),
]


def console_jobs() -> list:
    """This test's cluster's jobs (remembered: once the keeper is gone its record is too)."""
    jobs = keeper_jobs()
    _seen_names.update(j.name for j in jobs)
    return jobs or [j for j in sge.qstat() if j.name in _seen_names]


_seen_names: set[str] = set()


def flags(tmp_path) -> list[str]:
    return [
        "--backend", "sge", "--jobs", "0", "--cores", "1", "--processes", "1", "--memory", "1GB",
        "--interface", "lo", "--scheduler-interface", "lo", "--job-extra-directive", "-pe smp 1",
        "--local-directory", str(tmp_path), "--log-directory", str(tmp_path / "logs"),
    ]  # fmt: skip


def flat(screen: str) -> str:
    """The screen's words with the line breaks of a narrow terminal taken out."""
    return " ".join(screen.replace("│", " ").split())


def worker_rows(screen: str) -> list[str]:
    """Rows of the Workers table (SGE workers are named job-<n>)."""
    return [line for line in screen.splitlines() if line.startswith("│job-")]


def show_workers(t) -> None:
    """The Workers panel (2): the Overview's graphs come first."""
    until(t, lambda: "1 Overview" in t.screen(), 60, "the screen")
    t.keys("2")


@pytest.fixture
def tmux(tmp_path):
    t = Tmux(tmp_path, "e2e")
    yield t
    t.kill()


def test_keys_scale_to_two_and_back_then_q_quits_clean(tmux, tmp_path):
    tmux.start(*flags(tmp_path))
    until(tmux, lambda: "connected" in tmux.screen(), 60, "the console's first screen")
    show_workers(tmux)
    before = {j.job_id for j in console_jobs()}
    tmux.keys("+")
    tmux.keys("+")
    until(tmux, lambda: "2 req" in tmux.screen(), 10, "the request shown at once")
    until(tmux, lambda: len(worker_rows(tmux.screen())) == 2, 90, "2 worker rows")
    mine = [j for j in console_jobs() if j.job_id not in before]
    assert len(mine) == 2 and all(j.state is JobState.RUNNING for j in mine)
    # a worker's job id comes with the next qstat reading after it connects
    until(tmux, lambda: all(j.job_id in tmux.screen() for j in mine), 20, f"jobs {[j.job_id for j in mine]} on screen")

    tmux.keys("-")  # 2 -> 1: graceful, no question
    until(tmux, lambda: len(worker_rows(tmux.screen())) == 1, 60, "1 worker row")
    wait_for(lambda: len([j for j in console_jobs() if j.job_id not in before]) == 1, 30, what="1 job")

    tmux.keys("q")
    until(tmux, lambda: "Stop naist?" in tmux.screen(), 10, "the quit question")
    assert [j for j in console_jobs() if j.job_id not in before], "nothing is deleted before answering"
    tmux.keys("s")
    until(tmux, lambda: "EXITED 0" in tmux.screen(), 60, "the console to exit")
    assert "cluster naist stopped" in tmux.screen()
    wait_for(lambda: not [j for j in console_jobs() if j.job_id not in before], 30, what="qstat empty")


def _cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([EXE, *args], capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("how", ["d", "killed-terminal"])
def test_detach_leaves_the_job_running_and_attach_comes_back_to_it(tmp_path, how):
    before = {j.job_id for j in console_jobs()}
    first = Tmux(tmp_path, "first")
    second = Tmux(tmp_path, "second")
    try:
        first.start(*flags(tmp_path)[:3], "1", *flags(tmp_path)[4:])
        show_workers(first)
        until(first, lambda: len(worker_rows(first.screen())) == 1, 90, "1 worker row")
        [job] = [j for j in console_jobs() if j.job_id not in before]
        if how == "d":
            first.keys("d")
            until(first, lambda: "EXITED 0" in first.screen(), 30, "the screen to exit")
            assert "detached; cluster naist keeps running" in first.screen()
        else:
            first.kill()  # the SSH connection drops: SIGHUP to the screen
        time.sleep(2 * 1.0 + 1)  # two refreshes: nothing may stop it meanwhile
        assert [j.job_id for j in console_jobs() if j.job_id == job.job_id] == [job.job_id]
        ls = _cli("ls")
        assert ls.returncode == 0 and ls.stdout.splitlines()[1].split()[:2] == ["naist", "sge"], ls
        # naist-dask-tui again: the same cluster, the same job id on screen
        second.start()
        show_workers(second)
        until(second, lambda: len(worker_rows(second.screen())) == 1, 60, "the worker, reattached")
        second.keys("5")  # the Jobs panel
        until(second, lambda: job.job_id in second.screen(), 20, f"job {job.job_id} on screen")
        second.keys("d")
        until(second, lambda: "EXITED 0" in second.screen(), 30, "the second screen to detach")
        stop = _cli("stop")
        assert stop.returncode == 0 and "cluster naist stopped" in stop.stdout, stop
        wait_for(lambda: not [j for j in console_jobs() if j.job_id not in before], 30, what="qstat empty")
    finally:
        first.kill()
        second.kill()
        _cli("stop", "--all")


def test_ctrl_c_twice_quits_and_leaves_qstat_empty(tmux, tmp_path):
    before = {j.job_id for j in console_jobs()}
    tmux.start(*flags(tmp_path)[:3], "1", *flags(tmp_path)[4:])
    show_workers(tmux)
    until(tmux, lambda: len(worker_rows(tmux.screen())) == 1, 90, "1 worker row")
    mine = [j for j in console_jobs() if j.job_id not in before]
    assert mine
    tmux.keys("C-c")  # a key in the raw terminal: asks first, like q
    until(tmux, lambda: "Stop naist?" in tmux.screen(), 10, "the quit question")
    tmux.keys("C-c")  # a second Ctrl+C means: stop it
    until(tmux, lambda: "EXITED" in tmux.screen(), 60, "the console to exit")
    wait_for(lambda: not [j for j in console_jobs() if j.job_id in {m.job_id for m in mine}], 30,
             what="qstat empty after Ctrl+C")


def test_two_screens_on_one_cluster_see_each_others_keys(tmp_path):
    """Counted in refreshes (polls) in tests/unit/test_keeper.py; here, as a person sees it."""
    before = {j.job_id for j in console_jobs()}
    a, b = Tmux(tmp_path, "a"), Tmux(tmp_path, "b")
    try:
        a.start(*flags(tmp_path)[:3], "1", *flags(tmp_path)[4:], "--refresh-interval", "1")
        show_workers(a)
        until(a, lambda: len(worker_rows(a.screen())) == 1, 90, "1 worker row")
        b.start("attach", "--refresh-interval", "1")
        show_workers(b)
        until(b, lambda: len(worker_rows(b.screen())) == 1, 60, "the same worker in the second screen")
        until(b, lambda: "2 screens" in flat(b.screen()), 10, "the second screen counted")
        a.keys("+")
        until(b, lambda: "2 req" in flat(b.screen()), 10, "the first screen's + in the second")
        until(b, lambda: len(worker_rows(b.screen())) == 2, 90, "2 worker rows in the second screen")
        b.keys("-")
        until(a, lambda: "1 req" in flat(a.screen()), 10, "the second screen's - in the first")
        a.keys("q")
        until(a, lambda: "1 other screen(s)" in flat(a.screen()), 10, "the question naming the other screen")
        a.keys("s")
        until(a, lambda: "EXITED 0" in a.screen(), 60, "the first screen to stop the cluster")
        until(b, lambda: "is gone" in b.screen() or "stopping" in b.screen(), 30,
              "the second screen to say so")
        wait_for(lambda: not [j for j in console_jobs() if j.job_id not in before], 30, what="qstat empty")
    finally:
        a.kill()
        b.kill()
        _cli("stop", "--all")
