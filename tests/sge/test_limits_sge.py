"""The ceiling on scaling against the real SGE: a request above ``max_jobs`` is refused with
nothing submitted, a request above what the queue runs at once is asked about (or refused
without a terminal) first, the built-in profile's job count is never submitted without a word,
and a console asked for many jobs submits them at a pace and ends on SIGTERM / SIGHUP / Ctrl+C
within 30 s with qstat empty."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from naist_dask_tui import cli
from naist_dask_tui.core import limits, registry, sge
from naist_dask_tui.core.cluster import ClusterController
from naist_dask_tui.core.jobnames import console_job_name
from naist_dask_tui.core.settings import load_settings
from naist_dask_tui.core.snapshot import JobState
from tests.waiting import closed_within

from .conftest import wait_for

pytestmark = [pytest.mark.sge, pytest.mark.timeout(180)]

QUEUE = os.environ.get("SGE_QUEUE", "grid_short.q")
BASE = [
    "--backend", "sge", "--cores", "1", "--processes", "1", "--memory", "1GB",
    "--interface", "lo", "--scheduler-interface", "lo", "--job-extra-directive", "-pe smp 1",
    "--queue", QUEUE,
]  # fmt: skip


def queue_slots() -> tuple[int, int]:
    """(TOTAL, TOTAL - cdsuE) of the queue, read the way a user would (qstat -g c)."""
    out = subprocess.run(["qstat", "-g", "c"], capture_output=True, text=True, timeout=30).stdout
    for line in out.splitlines():
        parts = line.split()
        if parts and parts[0] == QUEUE:
            return int(parts[5]), int(parts[5]) - int(parts[7])
    raise AssertionError(f"{QUEUE} not in qstat -g c:\n{out}")


def runnable() -> int:
    """What the queue runs at once now (1-slot jobs)."""
    return queue_slots()[1]


def size() -> int:
    """What the queue runs at once with every instance up: the base of the default ceiling."""
    return queue_slots()[0]


def surely_pending() -> int:
    """A job count the queue cannot run at once even if it grows meanwhile (on this shared
    machine other engineers add and remove compute nodes)."""
    return 3 * size() + 1


def headless(tmp_path, *args: str) -> tuple[subprocess.Popen, list[str]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "naist_dask_tui", "--headless", *BASE,
         "--local-directory", str(tmp_path), "--log-directory", str(tmp_path / "logs"),
         "--refresh-interval", "0.5", *args],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path,
        stdin=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    lines: list[str] = []

    def read():
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))

    threading.Thread(target=read, daemon=True).start()
    return proc, lines


def console_pid(t) -> int:
    """The console's pid in a tmux pane (the pane runs a shell that runs it)."""
    import psutil

    shell = psutil.Process(t.pid())
    found = [p for p in shell.children(recursive=True) if "naist-dask-tui" in " ".join(p.cmdline())]
    assert found, "no console process in the pane"
    return found[0].pid


def mine(proc) -> list:
    return [j for j in sge.qstat(user="*") if j.name == console_job_name(pid=proc.pid)]


def refused(tmp_path, *args: str) -> str:
    proc, lines = headless(tmp_path, *args)
    try:
        rc = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    time.sleep(0.3)
    text = "\n".join(lines)
    assert rc == 2, text
    assert not any(line.startswith("started ") for line in lines), f"a cluster was started:\n{text}"
    assert not mine(proc), "a job was submitted"
    errors = [line for line in lines if line.startswith("naist-dask-tui: error:")]
    assert len(errors) == 1 and "Traceback" not in text, text
    return errors[0]


def test_queue_capacity_is_read_from_qstat():
    s = load_settings({"backend": "sge", "queue": QUEUE, "job_extra_directives": ["-pe smp 1"]},
                      env={}, dask_config={})
    cap = limits.sge_capacity(s)
    assert (cap.size, cap.runnable) == queue_slots() and QUEUE in cap.detail
    lim = limits.resolve(s, "sge", cap)
    assert lim.max_jobs == limits.FACTOR * size()


def test_above_max_jobs_is_refused_with_nothing_submitted(tmp_path):
    line = refused(tmp_path, "--jobs", "3", "--max-jobs", "2")
    assert line.startswith("naist-dask-tui: error: max_jobs: 3 jobs asked for (from --jobs) is above max_jobs 2")
    # the default ceiling comes from the queue
    before = size()
    line = refused(tmp_path, "--jobs", "10000")
    import re

    m = re.search(rf"is above max_jobs (\d+) \({limits.FACTOR} x the (\d+) jobs queue {QUEUE}", line)
    assert m and int(m[1]) == limits.FACTOR * int(m[2]), line
    assert int(m[2]) in (before, size()), line  # what qstat -g c said around that start
    line = refused(tmp_path, "--adapt", f"0:{limits.FACTOR * size() * 2 + 1}")
    assert "max_jobs" in line and "adaptive maximum" in line


def test_above_what_the_queue_runs_is_refused_without_a_terminal(tmp_path):
    n = surely_pending()
    line = refused(tmp_path, "--jobs", str(n), "--max-jobs", str(n), "--job-extra-directive=-h")
    assert f"{n} jobs asked for, but queue {QUEUE}" in line and "would pend" in line
    assert "--allow-pending" in line


def test_the_profiles_job_count_is_not_submitted_silently(tmp_path):
    # no --jobs: the built-in profile's 10 jobs
    proc, lines = headless(tmp_path)
    assert proc.wait(timeout=60) == 2
    text = "\n".join(lines)
    assert "not submitting 10 SGE jobs" in text and "--jobs 10" in text and "--jobs 0" in text, text
    assert not mine(proc)


def test_start_question_on_a_terminal(tmp_path):
    s = load_settings({"backend": "sge", "queue": QUEUE, "cores": "1", "memory": "1GB",
                       "job_extra_directives": ["-pe smp 1"], "interface": "lo",
                       "scheduler_interface": "lo", "local_directory": str(tmp_path)},
                      env={}, dask_config={})
    assert not s.explicit("jobs") and s.jobs == 10
    asked: list[str] = []

    def answer(text):
        def ask(prompt):
            asked.append(prompt)
            return text
        return ask

    with pytest.raises(cli.Declined):
        cli.confirm_start(s, interactive=True, ask=answer("n"), err=open(os.devnull, "w"))
    out = cli.confirm_start(s, interactive=True, ask=answer("2"), err=open(os.devnull, "w"))
    assert out.jobs == 2 and out.explicit("jobs")
    # more than the queue runs at once: a second question
    n = surely_pending()
    explicit = load_settings({**{k: getattr(s, k) for k in ("backend", "queue", "cores", "memory",
                              "interface", "scheduler_interface", "local_directory")},
                              "job_extra_directives": ["-pe smp 1"], "jobs": n, "max_jobs": n},
                             env={}, dask_config={})
    asked.clear()
    with pytest.raises(cli.Declined):
        cli.confirm_start(explicit, interactive=True, ask=answer(""), err=open(os.devnull, "w"))
    assert asked == [f"Submit all {n} anyway? [y/N] "]  # an explicit --jobs: no first question
    assert cli.confirm_start(explicit, interactive=False, allow_pending=True) is explicit


def test_controller_scale_above_max_jobs_submits_nothing(sge_settings):
    c = ClusterController(sge_settings(jobs=0, max_jobs=2))
    try:
        c.start()
        with pytest.raises(limits.JobLimitError, match="max_jobs: 3 jobs asked for"):
            c.scale(3)
        time.sleep(1.5)
        assert not c.cluster.worker_spec and not c.submitted_job_ids()
    finally:
        c.close()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT],
                         ids=["SIGTERM", "SIGHUP", "SIGINT"])
def test_a_large_request_is_paced_and_a_signal_ends_it_within_30s(tmp_path, signum):
    # 500 held jobs asked for; pacing keeps what is actually submitted to a handful before the
    # signal, and the signal ends everything (submission, the jobs, the process).
    proc, lines = headless(tmp_path, "--jobs", "500", "--max-jobs", "500", "--allow-pending",
                           "--job-extra-directive=-h")
    try:
        first = wait_for(lambda: mine(proc), 60, interval=0.2, what="the first held job")
        t_first = time.time()
        time.sleep(0.5)
        submitted = len(mine(proc))
        assert submitted <= 12, f"{submitted} jobs within ~0.5 s of the first: not paced"
        assert all(j.state is JobState.HELD for j in first)
        proc.send_signal(signum)
        t0 = time.time()
        rc = proc.wait(timeout=30)
        wait_for(lambda: not mine(proc), 30 - (time.time() - t0), interval=0.3,
                 what="qstat empty of the console's jobs")
        elapsed = time.time() - t0
        text = "\n".join(lines)
        assert elapsed < 30, f"{elapsed:.1f} s"
        assert rc == 0, text[-2000:]
        assert "Traceback" not in text and "KeyboardInterrupt" not in text, text[-3000:]
        assert any("closed" in line for line in lines), text[-2000:]
        print(f"{signal.Signals(signum).name}: {submitted} submitted in ~{time.time() - t_first:.1f} s "
              f"window; ended in {elapsed:.1f} s")
    finally:
        if proc.poll() is None:
            proc.kill()
        sge.qdel([j.job_id for j in mine(proc)])


@pytest.mark.skipif(not __import__("shutil").which("tmux"), reason="tmux not installed")
def test_scale_dialog_refuses_above_max_jobs_and_asks_before_pending_jobs(tmp_path):
    from tests.tmux_helper import Tmux, until

    n = surely_pending()
    t = Tmux(tmp_path, "limits")
    try:
        # held jobs: were the question skipped, nothing would run
        t.start(*BASE, "--jobs", "0", "--max-jobs", str(n), "--job-extra-directive=-h",
                "--local-directory", str(tmp_path),
                "--log-directory", str(tmp_path / "logs"))
        until(t, lambda: "connected" in t.screen(), 60, "the console's first screen")
        t.keys("s")
        until(t, lambda: f"at most {n}" in t.screen(), 10, "the scale dialog")
        def type_count(count: int) -> None:
            # one key a write: a burst of ctrl keys and digits reads as a paste
            for key in ("C-a", "C-k", *str(count), "Enter"):
                t.keys(key)
                time.sleep(0.1)

        type_count(n + 1)
        until(t, lambda: "max_jobs:" in t.screen(), 10, "the refusal naming max_jobs")
        type_count(n)
        until(t, lambda: "would pend" in t.screen(), 10, "the question about pending jobs")
        screen = " ".join(t.screen().split())
        # (the queue's size may change under a shared SGE: how many would pend is not pinned)
        assert f"Scale to {n} jobs?" in screen and "would pend" in screen, screen
        t.keys("n")
        until(t, lambda: "Nothing changed" in t.screen(), 10, "the answer taken")
        time.sleep(2)
        assert "0 req" in t.screen() or "jobs 0" in t.screen(), t.screen()
        [record] = registry.clusters()
        t.keys("q")
        until(t, lambda: "Stop naist?" in t.screen(), 10, "the quit question")
        t.keys("s")
        until(t, lambda: "EXITED 0" in t.screen(), 60, "the console to exit")
        assert not [j for j in sge.qstat(user="*") if j.name == record.job_name], "a job was submitted"
    finally:
        t.kill()


def test_close_with_the_scheduler_lost_is_bounded_and_deletes_every_job(sge_settings):
    c = ClusterController(sge_settings(jobs=2, job_extra_directives=["-pe smp 1", "-h"]))
    with closed_within(c):
        c.start()
        wait_for(lambda: len([j for j in sge.qstat() if j.name == c.job_name]) == 2, 60,
                 what="2 held jobs")
        c.client.sync(c.cluster.scheduler.close)  # the scheduler goes away
        time.sleep(1)
    wait_for(lambda: not [j for j in sge.qstat() if j.name == c.job_name], 10, what="qstat empty")


@pytest.mark.skipif(not __import__("shutil").which("tmux"), reason="tmux not installed")
def test_q_ends_a_console_asked_for_many_jobs_within_30s(tmp_path):
    from tests.tmux_helper import Tmux, until

    t = Tmux(tmp_path, "many")
    try:
        t.start(*BASE, "--jobs", "0", "--max-jobs", "500", "--job-extra-directive=-h",
                "--local-directory", str(tmp_path), "--log-directory", str(tmp_path / "logs"))
        until(t, lambda: "connected" in t.screen(), 60, "the console's first screen")
        [record] = registry.clusters()  # the cluster's keeper names its jobs
        ours = lambda: [j for j in sge.qstat(user="*") if j.name == record.job_name]  # noqa: E731
        t.keys("s")
        until(t, lambda: "at most 500" in t.screen(), 10, "the scale dialog")
        t.type("C-a", "C-k", *"500", "Enter")
        until(t, lambda: "would pend" in t.screen(), 10, "the question about pending jobs")
        t.keys("y")
        until(t, lambda: ours(), 30, "the first held job")
        t.keys("q")  # the screen still answers while jobs are being submitted
        until(t, lambda: "Stop naist?" in t.screen(), 10, "the quit question")
        submitted = len(ours())
        t.keys("s")
        t0 = time.time()
        until(t, lambda: "EXITED" in t.screen(), 30, "the console to exit")
        wait_for(lambda: not ours(), 30 - (time.time() - t0), interval=0.3, what="qstat empty")
        assert time.time() - t0 < 30
        assert submitted <= 20, f"{submitted} jobs submitted before q: not paced"
    finally:
        t.kill()


def test_jobs_whose_workers_cannot_start_are_not_replaced_forever(sge_settings):
    """A worker that cannot start (here a bad worker argument) makes its job end at once; a
    fixed job count would replace it every few seconds, for ever. After a few in a row the
    console stops replacing them and says why. (When the job's output file shows that no
    worker started, the first such job is not replaced at all: core/nodecheck.py.)"""
    from naist_dask_tui.core import cluster as cluster_mod
    from naist_dask_tui.core.monitor import Monitor

    c = ClusterController(sge_settings(jobs=1, worker_extra_args=["--no-such-option"]))
    try:
        c.start()
        m = Monitor(c, sge_interval=0.5)
        wait_for(lambda: m.poll() and any("ended before any of their workers" in n
                                          or "not submitted again" in n for n in c.notices),
                 120, interval=0.5, what="the console to stop replacing, saying why")
        ids = set(c.submitted_job_ids())
        assert len(ids) <= cluster_mod.FAILED_STARTS_LIMIT + 1, ids
        for _ in range(10):  # more polls: nothing new is submitted
            m.poll()
            time.sleep(0.5)
        assert set(c.submitted_job_ids()) == ids
    finally:
        c.close()
