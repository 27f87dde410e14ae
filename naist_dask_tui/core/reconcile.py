"""One reconcile step: what the console asked for, SGE's queue and the connected workers, joined.

:func:`reconcile` reads an :class:`Observation` (the job specs dask-jobqueue keeps, a qstat
reading, the workers the scheduler knows) and updates the :class:`~jobledger.Ledger`: a job
that vanished from the queue although the console did not delete it is *gone* (and replaced
when a fixed job count was asked for); a job SGE runs whose worker left has *no worker* (and
stops counting after the lost-worker timeout); a job that ended before any of its workers
connected is not submitted again, its output file says why; a job whose workers have not
connected a minute after it started is flagged with the likely cause. Every job that leaves
the queue gets a post-mortem (its output's last lines now, its accounting later).

It touches nothing but the ledger: what must happen to the cluster (specs to forget, a pass
of the scaling loop, notices, a lower target) comes back as :class:`Effects`, which the
controller carries out. So it is tested with recorded inputs, without a cluster.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from naist_dask_tui.core import nodecheck, postmortem
from naist_dask_tui.core.jobledger import JobRecord, Ledger
from naist_dask_tui.core.snapshot import JobState, SgeJob

# seconds new jobs stay off a node where a job lost its worker: SGE keeps sending jobs to a
# silent node until its max_unheard (5 min by default) runs out, and there they hang in "t"
AVOID_FOR = 600.0
# Jobs that leave the queue before any of their workers connected (a worker that cannot
# start: a wrong Python path, a bad worker argument) are not replaced after this many in a
# row: replacing them forever would flood the queue. A new scale request tries again.
FAILED_STARTS_LIMIT = 3
STARTUP_GRACE = 60.0  # seconds a running job's workers may take to connect before it is flagged
STARTUP_RECHECK = 15.0  # seconds between two readings of a flagged job's output


@dataclass(frozen=True)
class Observation:
    """What one refresh saw."""

    now: float
    specs: Mapping[str, tuple[str, ...]]  # spec name -> its worker names (dask-jobqueue's order)
    workers: Mapping[str, tuple[str, ...]] | None  # worker name -> addresses (None: no answer)
    qstat: Mapping[str, SgeJob] | None = None  # a fresh qstat by job id (None: none this time)
    qstat_time: float | None = None  # when that qstat began


@dataclass(frozen=True)
class Policy:
    """The rules in force, and how to read a job's output (tests pass recorded files)."""

    has_queue: bool  # SGE (a queue to read) or local workers
    grace: float = 15.0  # distributed's lost-worker timeout
    adaptive: bool = False
    closed: bool = False
    lifetime: tuple[float, float] | None = None  # the workers' (--lifetime, stagger)
    walltime: float | None = None  # what the jobs ask for (seconds)
    memory: float | None = None  # what the jobs ask for (bytes)
    log_dir: str = ""
    scheduler: str | None = None  # the address the workers connect to
    log_path: Callable[[str, str | None], str | None] = lambda name, job_id: None
    read_tail: Callable[[str | None], tuple[str, ...] | None] = postmortem.read_tail_lines


@dataclass
class Effects:
    """What the controller must do after a reconcile."""

    drop: list[str] = field(default_factory=list)  # specs to forget: their jobs left the queue
    ended: list[str] = field(default_factory=list)  # jobs that just ended (accounting to read)
    notices: list[str] = field(default_factory=list)
    failed: int = 0  # jobs that ended before their worker started: the target drops by this
    stop_adaptive: bool = False
    kick: bool = False  # run the scaling loop (replacements, a recount)


def _clock(t: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(t))


def reconcile(ledger: Ledger, obs: Observation, policy: Policy) -> Effects:
    fx = Effects()
    now = obs.now
    if obs.qstat is not None:
        ledger.last_sge = dict(obs.qstat)
    sge = ledger.last_sge
    workers = obs.workers or {}
    vanished: list[JobRecord] = []
    for name, worker_names in obs.specs.items():
        rec = ledger.ensure(name)
        rec.expected_workers = len(worker_names)
        if rec.log_path is None:
            rec.log_path = policy.log_path(name, rec.job_id)
        addrs = tuple(a for w in worker_names for a in workers.get(w, ()))
        rec.workers = addrs
        rec.lost_reason = ""
        if addrs:
            rec.connected = True
            rec.startup = ""
            if rec.lost_since is not None:
                rec.lost_since = None
                if rec.uncounted:
                    rec.uncounted = False
                    fx.notices.append(f"job {rec.job_id} ({name}): its worker is back")
                    fx.kick = True
        if not policy.has_queue or rec.job_id is None:
            continue
        sj = sge.get(rec.job_id)
        if sj is not None:
            rec.sge = sj
            if sj.started:
                rec.started_at = sj.started
            _check_lost(ledger, rec, sj, obs.workers is not None, now, policy, fx)
            _check_startup(rec, sj, now, policy, fx)
        elif obs.qstat is not None and not addrs and (obs.qstat_time or now) > (rec.id_seen_at or now) + 1.0:
            # (a qstat begun before qsub returned cannot list the job: a slow qsub)
            rec.vanished_at = rec.vanished_at or now
            vanished.append(rec)
    _gone(ledger, [r for r in vanished if r.retiring_since is None and not r.deleted], now, policy, fx)
    _leaving(ledger, obs, now, policy, fx)
    if fx.kick and (policy.adaptive or policy.closed):
        fx.kick = False
    ledger.prune()
    return fx


def _check_lost(ledger: Ledger, rec: JobRecord, sj: SgeJob, answered: bool, now: float,
                policy: Policy, fx: Effects) -> None:
    """SGE runs the job but its worker is gone (its node died?): shown as such at once, and
    not counted as capacity after the grace (a nanny restarts a worker in seconds)."""
    if "t" not in sj.raw_state:
        rec.transfer_since = None
    if sj.state is not JobState.RUNNING or rec.workers or not answered or rec.retiring_since is not None:
        return  # (a lost scheduler is not a lost worker)
    host = sj.host or "?"
    if rec.connected:
        rec.lost_since = rec.lost_since or now
        rec.lost_reason = (f"running in SGE on {host}, no worker since {_clock(rec.lost_since)}: its "
                           "node may be down; r deletes the job")
    elif "t" in sj.raw_state:  # SGE could not hand it to the node's execd
        rec.transfer_since = rec.transfer_since or now
        if now - rec.transfer_since >= policy.grace:
            rec.lost_since = rec.lost_since or rec.transfer_since
            rec.lost_reason = (f"SGE has been sending it to {host} since {_clock(rec.transfer_since)}, "
                               "no answer: its node may be down; r deletes the job")
    if rec.lost_reason and now - rec.lost_since >= policy.grace and not rec.uncounted:
        rec.uncounted = True
        if sj.host:
            ledger.avoid[sj.host] = now + AVOID_FOR
        fx.notices.append(
            f"job {rec.job_id} ({rec.name}) runs in SGE on {host} without a worker for "
            f"{now - rec.lost_since:.0f} s: not counted any more"
            + ("; a replacement is submitted" if not policy.adaptive else "")
        )
        fx.kick = True


def _check_startup(rec: JobRecord, sj: SgeJob, now: float, policy: Policy, fx: Effects) -> None:
    """A job SGE has run for a minute whose workers never connected: say the likely cause."""
    if (sj.state is not JobState.RUNNING or rec.connected or rec.lost_reason or not rec.started_at
            or now - rec.started_at < STARTUP_GRACE):
        return
    if now - rec.startup_checked < STARTUP_RECHECK:
        return
    rec.startup_checked = now
    tail = policy.read_tail(rec.log_path)
    text = nodecheck.startup_diagnosis(None if tail is None else "\n".join(tail[-60:]),
                                      (now - rec.started_at) // 60 * 60, policy.scheduler)
    if not rec.startup:
        fx.notices.append(f"job {rec.job_id} ({rec.name}) {text}")
    rec.startup = text


def _begin_postmortem(rec: JobRecord, now: float, policy: Policy) -> tuple[str, ...] | None:
    tail = policy.read_tail(rec.log_path)
    rec.left_at = now
    rec.lost_since, rec.lost_reason, rec.uncounted, rec.transfer_since = None, "", False, None
    rec.workers = ()
    reading = policy.has_queue and rec.job_id is not None
    rec.postmortem = postmortem.PostMortem(
        ended_at=now, log_tail=tail or (), log_found=tail is not None,
        accounting_note=postmortem.READING if reading else "",
    )
    refresh_verdict(rec, policy)
    return tail


def _lifetime_reached(rec: JobRecord, policy: Policy) -> bool:
    life = policy.lifetime
    end = rec.left_at or time.time()
    return bool(life and rec.started_at and end - rec.started_at >= life[0] - life[1] - 5)


def refresh_verdict(rec: JobRecord, policy: Policy) -> str:
    """(Re)write an ended job's verdict from what is known now."""
    pm = rec.postmortem
    if pm is None:
        return ""
    pm.verdict = postmortem.verdict(
        deleted=rec.deleted, connected=rec.connected, has_queue=policy.has_queue,
        log_tail=pm.log_tail if pm.log_found else None, acct=pm.accounting,
        note=pm.accounting_note, lifetime_reached=_lifetime_reached(rec, policy),
        walltime=policy.walltime, memory=policy.memory,
    )
    return pm.verdict


def _gone(ledger: Ledger, gone: list[JobRecord], now: float, policy: Policy, fx: Effects) -> None:
    """Jobs that left the queue without the console deleting them."""
    failed = 0
    for rec in gone:
        ran = rec.started_at is not None
        tail = _begin_postmortem(rec, now, policy)
        if not rec.connected and tail is not None:
            # it ran (SGE wrote its output file) and no worker of it ever connected: a
            # replacement would most likely fail the same way, so none is submitted
            failed += 1
            ledger.failed_starts += 1
            text = "\n".join(tail)
            cause = nodecheck.likely_cause(text) or nodecheck.start_failure(text)
            why = f"ended before its worker started: {cause}; not submitted again"
        else:
            if rec.connected:
                ledger.failed_starts = 0
            elif ran:  # it ran, no worker connected, and its output cannot be read from here
                ledger.failed_starts += 1
            if _lifetime_reached(rec, policy):
                why = ("ended at its worker lifetime, before the walltime: its workers handed "
                       "their data to the others first")
            else:
                why = ("left the queue without the console deleting it (qdel from outside, "
                       "walltime, or a node failure)")
        fx.notices.append(f"job {rec.job_id} ({rec.name}) {why}")
        fx.drop.append(rec.name)
        fx.ended.append(rec.name)
    if failed:
        fx.failed = failed
        if policy.adaptive:
            fx.stop_adaptive = True
            fx.notices.append("adaptive scaling stopped: jobs fail to start (see above)")
    stop_replacing = failed_starts_blocked(ledger)
    if gone and (failed or stop_replacing):
        fx.notices.append(
            f"{ledger.failed_starts} job(s) in a row ended before any of their workers connected: "
            "not submitting replacements (do the workers fail to start? see a job's output file "
            f"with l, in {policy.log_dir}); scale again to retry"
        )
    if gone and not stop_replacing:
        fx.kick = True  # a fixed job count was asked for: submit replacements


def _leaving(ledger: Ledger, obs: Observation, now: float, policy: Policy, fx: Effects) -> None:
    """Jobs the console deleted (their specs are gone): ended once out of the queue."""
    for rec in ledger:
        if rec.name in obs.specs or rec.left_at is not None:
            continue
        if not rec.deleted and rec.job_id is None and rec.vanished_at is None:
            del ledger.records[rec.name]  # never submitted (qsub refused it)
            continue
        if policy.has_queue and rec.job_id is not None:
            if obs.qstat is None or rec.job_id in obs.qstat:
                continue  # still in the queue (or not known yet)
        _begin_postmortem(rec, now, policy)
        fx.ended.append(rec.name)


def failed_starts_blocked(ledger: Ledger) -> bool:
    return ledger.failed_starts >= FAILED_STARTS_LIMIT
