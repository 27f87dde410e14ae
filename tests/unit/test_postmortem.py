"""Post-mortems on captured SGE outputs: the qacct parser, the verdict rules, the background
reader (accounting that lags, accounting off), qstat -j reasons (Eqw, hold, schedd_job_info
false) and the start-up diagnosis of a worker's output."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from naist_dask_tui.core import nodecheck, sge
from naist_dask_tui.core.accounting import (
    Accounting,
    AccountingOff,
    AccountingReader,
    NoRecord,
    parse_qacct,
    parse_size,
)
from naist_dask_tui.core.postmortem import read_tail_lines, verdict, why_line

DATA = Path(__file__).parent / "data" / "sge"


def acct(name: str) -> Accounting:
    (record,) = parse_qacct((DATA / f"qacct_{name}.txt").read_text())
    return record


def test_qacct_records_are_parsed_with_units_and_the_category():
    a = acct("walltime")
    assert (a.job_id, a.exit_status, a.failed, a.hostname) == ("708", 137, 37, "vm")
    assert a.failed_text == "qmaster enforced h_rt, h_cpu, or h_vmem limit"
    assert a.wallclock == 6.0 and a.h_rt == 5.0 and a.h_vmem is None
    m = acct("memory")
    assert m.h_vmem == 1024**3 and m.maxvmem == pytest.approx(1.043 * 1024**3)
    q = acct("qdel")
    assert (q.failed, q.exit_status, q.failed_meaning) == (
        100, 137, "ended after the job script (a signal, qdel, or a limit)")
    assert parse_qacct((DATA / "qacct_not_found.txt").read_text()) == []
    assert parse_size("4.480KB") == pytest.approx(4587.52) and parse_size("250G") == 250 * 1024**3


def verdict_of(name: str, log: str | None = "", **over) -> str:
    values = dict(deleted=None, connected=True, has_queue=True,
                  log_tail=None if log is None else tuple(log.splitlines()), acct=acct(name))
    values.update(over)
    return verdict(**values)


def test_the_verdicts_on_captured_accounting():
    assert verdict_of("walltime") == "killed at the walltime (ran 0:00:06 of h_rt 0:00:05)"
    assert verdict_of("memory") == "killed by memory (maxvmem 1.04G of 1G)"
    assert verdict_of("qdel") == "deleted by someone else (killed: exit 137, not by the console)"
    assert verdict_of("qdel", deleted="scale-down") == "deleted by the console (scale-down)"
    log = ("starting\nTraceback (most recent call last):\n  File \"<string>\", line 1\n"
           "ValueError: the input file /data/x.h5 is missing\n")
    assert verdict_of("exit1", log) == "exited 1: ValueError: the input file /data/x.h5 is missing"
    # the walltime a job asked for is known from the settings when the record does not say
    no_h_rt = Accounting(job_id="9", exit_status=137, failed=37, wallclock=3600.0)
    assert verdict(deleted=None, connected=True, has_queue=True, log_tail=(), acct=no_h_rt,
                   walltime=3600.0) == "killed at the walltime (ran 1:00:00 of h_rt 1:00:00)"
    big = Accounting(job_id="9", exit_status=137, failed=100, maxvmem=251 * 1024**3, wallclock=60.0)
    assert verdict(deleted=None, connected=True, has_queue=True, log_tail=(), acct=big,
                   memory=250 * 1024**3) == "killed by memory (maxvmem 251G of 250G)"


def test_lifetime_and_no_accounting_verdicts():
    lifetime = "... Closing worker. Reason: worker-lifetime-reached\n"
    ok = Accounting(job_id="9", exit_status=0, failed=0)
    assert verdict_of("exit1", lifetime, acct=ok).startswith("ended at its worker lifetime")
    assert verdict(deleted=None, connected=True, has_queue=True, log_tail=(), acct=None,
                   lifetime_reached=True).startswith("ended at its worker lifetime")
    off = "no accounting here (qacct: no jobs running since startup)"
    said = verdict(deleted=None, connected=True, has_queue=True, log_tail=(), acct=None, note=off)
    assert said == ("left the queue without the console deleting it (qdel from outside, walltime, "
                    "or a node failure); " + off)
    assert verdict(deleted=None, connected=True, has_queue=False, log_tail=("bye",), acct=None) == \
        "ended without the console stopping it: bye"


def test_a_job_whose_worker_never_started_says_the_line_that_says_why():
    said = verdict_of("exit1", "/nope/venv/bin/python: No such file or directory\n", connected=False)
    assert said == ("ended before its worker started: the Python interpreter /nope/venv/bin/python is "
                    "not there on the node (a virtualenv on a disk the nodes do not share?) (its output: "
                    "/nope/venv/bin/python: No such file or directory)")
    prologue = "naist-dask-tui: worker interface ib9 does not exist on node1; it has: lo eth0\n"
    assert "worker interface ib9 does not exist on node1" in verdict_of("exit1", prologue, connected=False)
    assert verdict_of("exit1", "", connected=False) == "ended before its worker started: its output file is empty"
    assert why_line(["a", "b"]) == "b" and why_line([]) == "its output file is empty"


@pytest.mark.parametrize("text, cause", [
    ("distributed.nanny - INFO - Start Nanny\nOSError: Timed out trying to connect to tls://10.0.0.1:8786 after 30 s",
     "the scheduler tls://10.0.0.1:8786 cannot be reached from the node"),
    ("ssl.SSLCertVerificationError: [SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed",
     "a TLS or certificate error"),
    ("ModuleNotFoundError: No module named 'distributed'",
     "cannot import what the worker needs (No module named 'distributed')"),
    ("UserWarning: Mismatched versions found\n+-------------+", "mismatched Python/dask/distributed versions"),
    ('ValueError: "ib0" is not a valid network interface. Valid network interfaces are: [\'lo\']',
     "network interface ib0 does not exist on the node"),
    ("/job/venv/bin/python3: No such file or directory", "the Python interpreter /job/venv/bin/python3 is not there"),
])
def test_start_up_causes_read_from_a_workers_output(text, cause):
    assert cause in nodecheck.likely_cause(text)
    assert nodecheck.startup_diagnosis(text, 60).startswith("no worker after 60 s: ")


def test_a_worker_that_cannot_reach_the_scheduler_captured_on_a_lab_node():
    lines = (DATA / "worker_scheduler_unreachable.txt").read_text().splitlines()
    said = verdict(deleted=None, connected=False, has_queue=True, log_tail=tuple(lines), acct=None)
    assert said.startswith("ended before its worker started: the scheduler tls://127.0.0.1:45755 "
                           "cannot be reached from the node"), said
    assert said.endswith("(its output: OSError: Timed out trying to connect to tls://127.0.0.1:45755 after 30 s)")
    # still trying (a nanny says nothing until it gives up): the silence is read as such
    quiet = nodecheck.startup_diagnosis("", 60, "tls://10.77.0.1:8786")
    assert quiet.startswith("no worker after 60 s; its output says nothing yet; is the scheduler "
                            "tls://10.77.0.1:8786 unreachable from the node?"), quiet


def test_start_up_diagnosis_without_a_recognisable_cause():
    assert nodecheck.likely_cause("all fine so far") is None
    assert nodecheck.startup_diagnosis(None, 120) == (
        "no worker after 120 s: no output file yet (is the log directory shared with the nodes?)")
    assert nodecheck.startup_diagnosis("a\nstill waiting\n", 60) == (
        "no worker after 60 s; its output ends with: still waiting")


def test_qstat_j_says_why_a_job_is_in_error_or_held_and_when_sge_gives_no_reasons():
    reasons = sge.parse_qstat_j((DATA / "qstat_j_eqw_held.txt").read_text())
    assert reasons["881"] == "error: can't chdir to /nonexistent/dir: No such file or directory; Job is in error state"
    assert reasons["882"] == "Job is in hold state"
    # schedd_job_info false: SGE's own words (MSG_SCHEDD_INFO_TURNEDOFF_) in place of the reasons
    off = sge.parse_qstat_j((DATA / "qstat_j_schedd_job_info_false.txt").read_text())
    assert off["882"] == sge.NO_REASONS and "SGE gives no reasons here" in off["882"]
    assert off["881"].startswith("error: can't chdir to /nonexistent/dir") and sge.NO_REASONS in off["881"]


def test_a_tail_is_the_last_lines_without_a_partial_first_one(tmp_path):
    log = tmp_path / "job.o1"
    assert read_tail_lines(str(log)) is None
    log.write_text("".join(f"line {i}\n" for i in range(1000)))
    tail = read_tail_lines(str(log), lines=200, nbytes=4096)
    assert tail[-1] == "line 999" and all(t.startswith("line ") for t in tail) and len(tail) <= 200
    assert read_tail_lines(str(log), lines=200)[0] == "line 800"


def test_the_reader_retries_a_missing_record_and_says_when_accounting_is_off():
    answers = {"1": [NoRecord("not found"), acct("qdel")], "2": [NoRecord("not found")] * 3}
    done: dict[str, tuple] = {}
    finished = threading.Event()

    def read(job_id):
        answer = answers[job_id].pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def record(job_id, record, note):
        done[job_id] = (record, note)
        if len(done) == 2:
            finished.set()

    reader = AccountingReader(record, read=read, retry_after=(0.01, 0.02, 0.03))
    reader.add("1")
    reader.add("2")
    assert finished.wait(5)
    assert done["1"] == (acct("qdel"), "")
    assert done["2"][0] is None and "no accounting record of job 2" in done["2"][1]
    assert "accounting may lag or be off at this site" in done["2"][1]

    off = AccountingReader(lambda j, r, n: done.__setitem__(j, (r, n)),
                           read=lambda j: (_ for _ in ()).throw(AccountingOff("no jobs running since startup")),
                           retry_after=(0.01,))
    off.add("3")
    for _ in range(200):
        if "3" in done:
            break
        threading.Event().wait(0.01)
    assert done["3"] == (None, "no accounting here (qacct: no jobs running since startup)")
    off.add("4")  # known to be off: answered at once, without qacct
    assert done["4"] == (None, "no accounting here (qacct: no jobs running since startup)")
    reader.stop()
    off.stop()


def test_jobs_beyond_the_readers_queue_are_told_so_not_left_reading(monkeypatch):
    from naist_dask_tui.core import accounting

    monkeypatch.setattr(accounting, "MAX_QUEUED", 3)
    done: dict[str, tuple] = {}
    # qacct never answers in time here: every job stays queued for its retries
    reader = AccountingReader(lambda j, r, n: done.__setitem__(j, (r, n)),
                              read=lambda j: (_ for _ in ()).throw(NoRecord("not found")),
                              retry_after=(60.0,))
    for job in ("1", "2", "3", "4", "5"):
        reader.add(job)
    assert sorted(done) == ["1", "2"]  # the two oldest, dropped from the queue
    record, note = done["1"]
    assert record is None and "not read: more than 3 ended jobs were waiting" in note
    assert "qacct -j 1" in note
    reader.stop()
