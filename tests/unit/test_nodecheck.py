"""The workers' interface checked where the workers run (the job script's first line)."""

from __future__ import annotations

import subprocess

import psutil

from naist_dask_tui.core.nodecheck import interface_prologue, start_failure


def run_prologue(nic: str) -> subprocess.CompletedProcess:
    # as in the job script: the check, then the worker (here an echo)
    script = f"{interface_prologue(nic)}\necho worker starts\n"
    return subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=30)


def test_the_job_goes_on_when_the_interface_exists_on_its_node():
    done = run_prologue("lo")
    assert done.returncode == 0 and done.stdout == "worker starts\n" and done.stderr == ""


def test_a_missing_interface_ends_the_job_with_one_line_the_console_reads():
    done = run_prologue("ib9")
    assert done.returncode == 3 and done.stdout == ""  # the worker never started
    here = subprocess.run(["hostname"], capture_output=True, text=True).stdout.strip()
    has = sorted(psutil.net_if_addrs())
    assert start_failure("Some earlier line\n" + done.stderr) == (
        f"worker interface ib9 does not exist on {here} (it has: {', '.join(has)}); "
        "use --interface with one of those"
    )


def test_an_odd_interface_name_stays_one_shell_word():
    done = run_prologue("ib 0;touch /tmp/ndtui-should-not-exist")
    assert done.returncode == 3
    assert "worker interface ib 0;touch /tmp/ndtui-should-not-exist does not exist" in done.stderr
    assert subprocess.run(["test", "-e", "/tmp/ndtui-should-not-exist"]).returncode == 1


def test_other_start_failures_are_the_end_of_the_output():
    # (an output file's tail is read by postmortem.read_tail_lines, tested in test_postmortem)
    text = "a\n\n/venv/bin/python: No such file or directory\n"
    assert start_failure(text) == "its output ends with: a | /venv/bin/python: No such file or directory"
    assert start_failure("\n") == "its output file is empty"
