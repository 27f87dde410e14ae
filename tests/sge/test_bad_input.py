"""Bad input against the real SGE: one clear message naming the field, and nothing submitted."""

from __future__ import annotations

import os
import subprocess
import sys

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
        (["--interface", "ib9"], ["interface", "ib9"]),
        (["--scheduler-interface", "bond9"], ["scheduler_interface", "bond9"]),
        (["--memory", "250XB"], ["memory", "250XB", "e.g. 250GB"]),
        (["--walltime", "soon"], ["walltime", "soon", "HH:MM:SS"]),
        (["--jobs", "-1"], ["jobs", "-1"]),
        (["--jobs", "two"], ["jobs", "two"]),
        (["--job-extra-directive", "-pe nosuchpe 1"], ["nosuchpe"]),
    ],
    ids=["queue", "interface", "scheduler-interface", "memory", "walltime", "negative-jobs",
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
