"""Bad input against the real SGE: one clear message naming the field, and nothing submitted."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from naist_dask_tui.core import sge
from naist_dask_tui.core.cluster import ClusterController
from naist_dask_tui.core.jobnames import console_job_name

from .conftest import _ours, wait_for

pytestmark = [pytest.mark.sge, pytest.mark.timeout(120)]

BASE = [
    "--backend", "sge", "--cores", "1", "--memory", "1GB", "--interface", "lo",
    "--scheduler-interface", "lo", "--job-extra-directive", "-pe smp 1", "--jobs", "1",
]  # fmt: skip


def console(tmp_path, *args: str, path: str | None = None) -> subprocess.CompletedProcess:
    """Run a headless console that should refuse to start; it must not submit anything."""
    env = dict(os.environ)
    if path is not None:
        env["PATH"] = path
    proc = subprocess.Popen(
        [sys.executable, "-m", "naist_dask_tui", "--headless", *BASE,
         "--local-directory", str(tmp_path), "--log-directory", str(tmp_path / "logs"), *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path, env=env,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.communicate(timeout=60)
    submitted = [j for j in sge.qstat(user="*") if j.name == console_job_name(pid=proc.pid)]
    assert not submitted, f"a job was submitted despite the bad input: {submitted}"
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


@pytest.mark.parametrize(
    "args, words",
    [
        (["--queue", "nosuch.q"], ["queue", "nosuch.q"]),
        (["--scheduler-interface", "bond9"], ["scheduler_interface", "bond9"]),
        (["--memory", "250XB"], ["memory", "250XB", "e.g. 250GB"]),
        (["--walltime", "soon"], ["walltime", "soon", "HH:MM:SS"]),
        (["--jobs", "-1"], ["jobs", "-1"]),
        (["--jobs", "two"], ["jobs", "two"]),
        (["--job-extra-directive", "-pe nosuchpe 1"], ["nosuchpe"]),
    ],
    ids=["queue", "scheduler-interface", "memory", "walltime", "negative-jobs",
         "text-jobs", "pe"],
)
def test_bad_setting_is_one_line_and_nothing_is_submitted(tmp_path, args, words):
    out = console(tmp_path, *args)
    assert out.returncode != 0
    err = out.stderr.strip()
    assert err.startswith("naist-dask-tui: error: "), err
    assert "Traceback" not in err, err
    for word in words:
        assert word in err, f"{word!r} missing from: {err}"


def test_missing_qsub_is_a_clear_message(tmp_path):
    empty = tmp_path / "empty-path"
    empty.mkdir()
    out = console(tmp_path, path=str(empty))  # no q* commands anywhere
    assert out.returncode != 0
    assert "qsub" in out.stderr and "Traceback" not in out.stderr, out.stderr


def test_qsub_refusing_a_job_comes_back_in_sges_words(sge_settings):
    # Valid to us, refused by SGE itself at submit time.
    with ClusterController(sge_settings(jobs=0, resource_spec="nosuchresource=1")) as c:
        c.scale(1)
        c.wait_idle()
        note = wait_for(lambda: [n for n in c.notices if "qsub refused" in n], 10, what="a notice")
        assert "nosuchresource" in note[0], note
        assert not _ours()
        assert len(c.cluster.worker_spec) == 0, "the refused job is still counted"


def test_worker_interface_missing_on_the_node_is_said_once_and_not_resubmitted(sge_settings):
    """The workers' NIC is checked where the workers run, not on the login node: a start is
    never refused for it; a job on a node without it ends at once, the console says why in one
    line (from the job's output file) and does not flood the queue with replacements."""
    from naist_dask_tui.core.monitor import Monitor
    from naist_dask_tui.core.snapshot import JobState

    with ClusterController(sge_settings(jobs=2, interface="ib9", scheduler_interface="lo")) as c:
        m = Monitor(c, sge_interval=0)
        submitted = wait_for(lambda: len(c.submitted_job_ids()) == 2 and c.submitted_job_ids(), 30,
                             what="2 jobs submitted")
        notes = wait_for(lambda: m.poll() and [n for n in c.notices if "ib9" in n and "does not exist" in n]
                         and len([n for n in c.notices if "not submitted again" in n]) == 2
                         and [n for n in c.notices if "ib9" in n], 60, what="the reason of both jobs")
        assert f"worker interface ib9 does not exist on {sge_host()}" in notes[0], notes
        assert "use --interface with one of those" in notes[0] and "not submitted again" in notes[0]
        rows = {r.job_id: r for r in m.poll().jobs}
        assert {rows[j].state for j in submitted} == {JobState.GONE}
        assert all("ib9" in rows[j].reason for j in submitted)
        time.sleep(6)  # three qstat rounds: nothing new submitted, nothing queued
        m.poll()
        assert c.submitted_job_ids() == submitted and c.requested_jobs == 0 and not _ours()


def sge_host() -> str:
    import socket

    return socket.gethostname().split(".")[0]
