"""Reading Son of Grid Engine's queue, which dask-jobqueue never does.

``qstat -xml`` gives the state of the console's jobs (pending, running, error, deleting, ...),
``qstat -j`` says why a pending job waits. Every failure of a q* command comes back as an
:class:`SgeError` carrying the command's own words.
"""

from __future__ import annotations

import getpass
import os
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

import psutil

from naist_dask_tui.core.jobnames import parse_console_job_name, short_hostname
from naist_dask_tui.core.snapshot import JobState, SgeJob

COMMAND_TIMEOUT = 20.0


class SgeError(RuntimeError):
    """A q* command failed; the message holds the command and SGE's own words."""

    def __init__(self, command: Sequence[str], message: str, returncode: int | None = None):
        self.command = list(command)
        self.returncode = returncode
        super().__init__(f"{' '.join(self.command[:2])} failed: {message.strip() or 'no output'}")


def available() -> bool:
    """True when this host can talk to SGE (qsub, qstat and qdel are on PATH)."""
    return all(shutil.which(c) for c in ("qsub", "qstat", "qdel"))


class CommandFailed(OSError):
    """A command gave no output: the message says why, with the command and its own words."""


def output(command: Sequence[str], timeout: float = COMMAND_TIMEOUT) -> str:
    """stdout of ``command`` (qstat, qconf, ...), or :class:`CommandFailed` naming it in
    backquotes: not on PATH, no answer within ``timeout``, could not run, or failed (its words)."""
    shown = " ".join(command)
    exe = shutil.which(command[0])
    if exe is None:
        raise CommandFailed(f"{command[0]} not found on PATH")
    try:
        done = subprocess.run([exe, *command[1:]], capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise CommandFailed(f"`{shown}` did not answer within {timeout:g} s") from None
    except OSError as e:
        raise CommandFailed(f"`{shown}` could not run: {e.strerror or e}") from None
    if done.returncode != 0:
        words = " ".join((done.stderr or done.stdout or f"exit status {done.returncode}").split())
        raise CommandFailed(f"`{shown}` failed: {words}")
    return done.stdout


def run(command: Sequence[str], *, timeout: float = COMMAND_TIMEOUT, check: bool = True) -> str:
    exe = shutil.which(command[0])
    if exe is None:
        raise SgeError(command, f"{command[0]} not found on PATH (is this an SGE login node?)")
    try:
        proc = subprocess.run(
            [exe, *command[1:]],
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        raise SgeError(command, f"no answer within {timeout:.0f} s (is sge_qmaster up?)") from None
    if check and proc.returncode != 0:
        raise SgeError(command, (proc.stderr or proc.stdout), proc.returncode)
    return proc.stdout


_STATE_ORDER = (
    # (predicate on SGE's state letters, our state); first match wins. "d" (deletion) beats all.
    (lambda s: "d" in s, JobState.DELETING),
    (lambda s: "E" in s, JobState.ERROR),
    (lambda s: "h" in s, JobState.HELD),
    (lambda s: "s" in s or "S" in s or "T" in s, JobState.SUSPENDED),
    (lambda s: "r" in s or "t" in s, JobState.RUNNING),
    (lambda s: "q" in s or "w" in s, JobState.PENDING),
)


def map_state(raw: str) -> JobState:
    for pred, state in _STATE_ORDER:
        if pred(raw):
            return state
    return JobState.PENDING


def _parse_time(text: str | None) -> float | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.strip()).timestamp()
    except ValueError:
        return None


def parse_qstat_xml(xml_text: str) -> list[SgeJob]:
    """Parse ``qstat -xml`` (running jobs in queue_info, pending ones in job_info)."""
    root = ET.fromstring(xml_text)
    jobs: list[SgeJob] = []
    for el in root.iter("job_list"):
        raw = (el.findtext("state") or "").strip()
        queue_field = (el.findtext("queue_name") or "").strip()
        queue, _, host = queue_field.partition("@")
        tasks = (el.findtext("tasks") or "").strip()
        job_id = (el.findtext("JB_job_number") or "").strip()
        if tasks:  # array jobs: one line per task
            job_id = f"{job_id}.{tasks}"
        jobs.append(
            SgeJob(
                job_id=job_id,
                name=(el.findtext("JB_name") or "").strip(),
                owner=(el.findtext("JB_owner") or "").strip(),
                state=map_state(raw),
                raw_state=raw,
                queue=queue or None,
                host=host or None,
                slots=int((el.findtext("slots") or "0").strip() or 0),
                submitted=_parse_time(el.findtext("JB_submission_time")),
                started=_parse_time(el.findtext("JAT_start_time")),
            )
        )
    return jobs


# What qstat -j says where the scheduler runs with ``schedd_job_info false``, and our words.
_TURNED_OFF = "Collecting of scheduler job information is turned off"
NO_REASONS = ("SGE gives no reasons here (the site's scheduler has schedd_job_info false; "
              "`qalter -w v JOB` checks a job)")


def parse_qstat_j(text: str) -> dict[str, str]:
    """Map job id -> why it waits (scheduling info) or why it erred (error reason)."""
    reasons: dict[str, str] = {}
    for block in re.split(r"^=+\s*$", text, flags=re.M):
        m = re.search(r"^job_number:\s+(\d+)", block, re.M)
        if not m:
            continue
        lines = block.splitlines()
        parts: list[str] = []
        capturing = False
        for line in lines:
            if line.startswith(("scheduling info:", "error reason")):
                capturing = True
                head, _, rest = line.partition(":")
                if head.startswith("error reason"):  # "error reason    1:      <date> [..]: why"
                    rest = re.sub(r"^\s*\d\d/\d\d/\d{4} [\d:]+ \[[\d:]+\]:\s*", "", rest)
                parts.append(rest.strip())
            elif capturing and line[:1].isspace() and line.strip():
                parts.append(line.strip())
            else:
                capturing = False
        reason = "; ".join(NO_REASONS if _TURNED_OFF in p else p for p in parts if p)
        if reason:
            reasons[m.group(1)] = reason
    return reasons


def user_name() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry (containers)
        return str(os.getuid())


def qstat(user: str | None = None) -> list[SgeJob]:
    """All jobs of ``user`` (default: this user)."""
    return parse_qstat_xml(run(["qstat", "-xml", "-u", user or user_name()]))


def pending_reasons(job_ids: Iterable[str]) -> dict[str, str]:
    ids = [j.split(".")[0] for j in job_ids]
    if not ids:
        return {}
    # qstat -j exits 1 when one of the ids vanished meanwhile; what it printed still counts.
    return parse_qstat_j(run(["qstat", "-j", ",".join(ids)], check=False))


def with_reasons(jobs: list[SgeJob], reasons: dict[str, str]) -> list[SgeJob]:
    from dataclasses import replace

    return [
        replace(j, reason=reasons[j.job_id.split(".")[0]])
        if j.job_id.split(".")[0] in reasons
        else j
        for j in jobs
    ]


def qdel(job_ids: Iterable[str], *, force: bool = False, timeout: float = COMMAND_TIMEOUT) -> list[str]:
    """Delete jobs; a job that no longer exists is not an error. Returns SGE's messages.

    ``force`` (``qdel -f``) removes a job from SGE's books even when the execd of its node does
    not answer (a dead node). Only SGE managers and operators get that at once; for other users
    qdel waits for the execd, about a minute, unless the cluster's ``qmaster_params`` has
    ENABLE_FORCED_QDEL: see :func:`may_force_delete`."""
    ids = [str(j) for j in job_ids]
    if not ids:
        return []
    out = run(["qdel", *(["-f"] if force else []), *ids], check=False, timeout=timeout)
    # qdel prints one line per job; "does not exist" is fine (the job already ended). A user's
    # forced qdel prints a row of dots while it waits: not a message.
    return [line for line in out.splitlines() if line.strip(" .")]


def may_force_delete(user: str | None = None) -> bool:
    """True when ``qdel -f`` by this user removes a job at once: SGE managers and operators.

    (With ENABLE_FORCED_QDEL in qmaster_params a plain user may force too, but SGE first waits
    for the node's execd, about a minute: the console forces only when it is immediate. And it
    always sends a plain qdel first: on SGE 8.1.9 a forced qdel of a dead node's job with no
    deletion under way crashed the qmaster, "got NULL element for JB_type".)"""
    user = user or user_name()
    for flag in ("-sm", "-so"):
        try:
            if user in run(["qconf", flag], check=False).split():
                return True
        except SgeError:  # no qconf on this host
            return False
    return False


def qhold(job_ids: Iterable[str]) -> None:
    run(["qhold", *[str(j) for j in job_ids]])


def qrls(job_ids: Iterable[str]) -> None:
    run(["qrls", *[str(j) for j in job_ids]])


def qmod_clear(job_ids: Iterable[str]) -> list[str]:
    """``qmod -cj``: clear the error state of jobs (Eqw), so that SGE tries them again.
    Returns SGE's messages."""
    ids = [str(j) for j in job_ids]
    # qmod exits 1 even when it did clear the error: its words say what happened
    out = run(["qmod", "-cj", *ids], check=False)
    words = [line.strip() for line in out.splitlines() if line.strip()]
    if not any("cleared" in w for w in words):
        raise SgeError(["qmod", "-cj", *ids], " ".join(words) or "no answer")
    return words


@dataclass(frozen=True, slots=True)
class Leftover:
    job: SgeJob
    host: str
    pid: int
    dead: bool  # the submitting console is gone for sure (same host, no such process)


def _console_alive(pid: int, submitted: float | None) -> bool:
    """Is the console that submitted a job at ``submitted`` still process ``pid``?
    A process that started after the job was submitted only reuses the pid."""
    try:
        started = psutil.Process(pid).create_time()
    except psutil.NoSuchProcess:
        return False
    except psutil.Error:
        return True  # exists but cannot be inspected: assume alive
    return submitted is None or started <= submitted + 1.0


def find_leftovers(jobs: list[SgeJob] | None = None, *, own_pid: int | None = None) -> list[Leftover]:
    """Jobs named by a console (``ndtui.<host>.<pid>``) whose console is not this one.

    ``dead`` is True only when the console ran on this host and its pid is gone; jobs of a
    console on another login node are listed but cannot be judged from here.
    """
    jobs = qstat() if jobs is None else jobs
    me = os.getpid() if own_pid is None else own_pid
    here = short_hostname()
    found = []
    for job in jobs:
        parsed = parse_console_job_name(job.name)
        if parsed is None:
            continue
        host, pid = parsed
        if host == here and pid == me:
            continue
        dead = host == here and not _console_alive(pid, job.submitted or job.started)
        found.append(Leftover(job, host, pid, dead=dead))
    return found
