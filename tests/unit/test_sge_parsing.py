"""Parsing what SGE prints: ``qstat -xml`` and ``qstat -j`` as captured from Son of Grid
Engine 8.1.9 (tests/unit/data), and the job names that mark the console's jobs."""

from __future__ import annotations

from pathlib import Path

import pytest

from naist_dask_tui.core import sge
from naist_dask_tui.core.jobnames import console_job_name, parse_console_job_name
from naist_dask_tui.core.snapshot import JobState, SgeJob

DATA = Path(__file__).parent / "data"


def test_qstat_xml_running_pending_and_held():
    jobs = {j.job_id: j for j in sge.parse_qstat_xml((DATA / "qstat.xml").read_text())}
    assert len(jobs) == 3
    by_state = {j.state: j for j in jobs.values()}
    running = by_state[JobState.RUNNING]
    assert running.raw_state == "r" and running.queue == "grid_short.q" and running.host == "vm"
    assert running.slots == 1 and running.started is not None and running.name == "ndtui.vm.1"
    held = by_state[JobState.HELD]
    assert held.raw_state == "hqw" and held.host is None and held.submitted is not None
    pending = by_state[JobState.PENDING]
    assert pending.raw_state == "qw" and pending.name == "other"


@pytest.mark.parametrize(
    "raw, state",
    [
        ("qw", JobState.PENDING),
        ("hqw", JobState.HELD),
        ("r", JobState.RUNNING),
        ("t", JobState.RUNNING),
        ("Eqw", JobState.ERROR),
        ("dr", JobState.DELETING),
        ("dt", JobState.DELETING),
        ("s", JobState.SUSPENDED),
        ("Rr", JobState.RUNNING),
    ],
)
def test_state_codes(raw, state):
    assert sge.map_state(raw) is state


def test_qstat_j_reasons():
    reasons = sge.parse_qstat_j((DATA / "qstat_j.txt").read_text())
    assert sorted(reasons.values()) == sorted(
        [
            "Job is in hold state",
            '(-l m_mem_free=100G) cannot run at host "vm" because it offers only hc:m_mem_free=23.541G',
        ]
    )


def test_qstat_j_multiline_reason_and_error_reason():
    text = (
        "==============================================================\n"
        "job_number:                 17\n"
        "job_name:                   ndtui.vm.5\n"
        "error reason    1:          11/26/2026 10:00:00 [0:1]: can't chdir to /nope: No such file\n"
        "scheduling info:            queue instance \"a.q@n1\" dropped because it is full\n"
        "                            queue instance \"b.q@n2\" dropped because it is disabled\n"
    )
    reason = sge.parse_qstat_j(text)["17"]
    assert "can't chdir to /nope" in reason and "b.q@n2" in reason and "a.q@n1" in reason


def test_job_names_round_trip_and_foreign_names():
    name = console_job_name(pid=4242, host="login1")
    assert name == "ndtui.login1.4242"
    assert parse_console_job_name(name) == ("login1", 4242)
    assert parse_console_job_name("dask-worker") is None
    assert parse_console_job_name("ndtui.login1.notapid") is None


def test_leftovers_dead_only_when_same_host_and_process_gone():
    import os

    from naist_dask_tui.core.jobnames import short_hostname

    here = short_hostname()

    def job(name, submitted=1.0):
        return SgeJob("1", name, "me", JobState.RUNNING, "r", submitted=submitted)

    dead_pid = 2**22 + 12345  # above the default pid_max: no such process
    found = sge.find_leftovers(
        [
            job(f"ndtui.{here}.{dead_pid}"),
            job(f"ndtui.{here}.{os.getppid()}", submitted=4e9),  # alive, started before
            job(f"ndtui.{here}.{os.getppid()}", submitted=1.0),  # pid reused since
            job(f"ndtui.otherlogin.{dead_pid}"),
            job(f"ndtui.{here}.{os.getpid()}"),  # this console's own: not a leftover
            job("dask-worker"),
        ]
    )
    assert [(f.host, f.dead) for f in found] == [
        (here, True),
        (here, False),
        (here, True),
        ("otherlogin", False),
    ]


def test_missing_command_is_a_readable_error(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    assert not sge.available()
    with pytest.raises(sge.SgeError, match="qstat not found on PATH"):
        sge.qstat()
