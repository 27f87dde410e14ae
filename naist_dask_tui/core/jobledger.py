"""The console's book of its jobs: one record per job, kept after the job left the queue.

A :class:`JobRecord` is created when the console asks for a job and lives on after the job
ended, with its post-mortem (:mod:`postmortem`), until :data:`ENDED_KEEP` newer jobs ended.
:func:`job_rows` and :func:`ended_rows` are pure: they build what the Jobs panel shows from
the ledger, SGE's last reading and the job specs dask-jobqueue keeps. What changes the
ledger (a job seen gone, a worker lost, a start failure) is :mod:`reconcile`'s business.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace

from naist_dask_tui.core.postmortem import PostMortem
from naist_dask_tui.core.snapshot import JobRow, JobState, SgeJob

GONE_KEEP = 120.0  # seconds a vanished job stays among the live rows as "gone"
ENDED_KEEP = 200  # ended jobs (and their post-mortems) kept; the oldest go first
ENDED_SHOWN = 30  # ended jobs sent to the screens (the newest)


@dataclass(slots=True, eq=False)
class JobRecord:
    """One job of the console, from the request to its post-mortem."""

    name: str  # dask spec name ("job-3"); worker names are this, or this plus -0, -1, ...
    submitted_at: float | None = None  # when the console asked for it
    expected_workers: int = 1
    job_id: str | None = None  # SGE job id (None: local, or qsub has not answered)
    id_seen_at: float | None = None  # when the id became known: a qstat begun before cannot list it
    log_path: str | None = None
    sge: SgeJob | None = None  # SGE's last word on it
    started_at: float | None = None  # when SGE started it
    workers: tuple[str, ...] = ()  # addresses of its workers at the last reconcile
    connected: bool = False  # a worker of it connected at least once
    retiring_since: float | None = None  # its data is being moved away before the qdel
    deleted: str | None = None  # why the console deleted it ("scale-down", ...)
    show_deleting: bool = False  # deleted at once (its node died): listed until it leaves qstat
    lost_since: float | None = None  # SGE runs it, its worker is gone
    lost_reason: str = ""  # set while it is shown as having no worker
    uncounted: bool = False  # lost past the grace: not capacity any more
    transfer_since: float | None = None  # first seen in SGE's "t" (being sent to its node)
    startup: str = ""  # why its workers do not connect (flagged after a minute)
    startup_checked: float = 0.0
    vanished_at: float | None = None  # left qstat without the console deleting it
    left_at: float | None = None  # left the queue (or stopped, local): it has ended
    postmortem: PostMortem | None = None

    @property
    def ended(self) -> bool:
        return self.left_at is not None

    @property
    def host(self) -> str | None:
        return self.sge.host if self.sge is not None else None


class Ledger:
    """Every job of one cluster by spec name, in submission order, plus what the console
    learnt about its nodes. Not thread-safe by itself: the controller holds its lock."""

    def __init__(self, ended_keep: int = ENDED_KEEP) -> None:
        self.records: dict[str, JobRecord] = {}
        self.avoid: dict[str, float] = {}  # host -> until when new jobs stay off it
        self.failed_starts = 0  # jobs in a row that ended before any worker connected
        self.last_sge: dict[str, SgeJob] = {}  # the last fresh qstat, by job id
        self._ended_keep = ended_keep

    def __iter__(self) -> Iterator[JobRecord]:
        return iter(list(self.records.values()))

    def get(self, name: str) -> JobRecord | None:
        return self.records.get(name)

    def ensure(self, name: str, **fields) -> JobRecord:
        rec = self.records.get(name)
        if rec is None:
            rec = self.records[name] = JobRecord(name=name, **fields)
        return rec

    def note_job_ids(self, ids: Mapping[str, str], now: float) -> None:
        """Job ids qsub answered with (spec name -> id)."""
        for name, job_id in ids.items():
            rec = self.ensure(name)
            if rec.job_id != job_id:
                rec.job_id = job_id
                rec.id_seen_at = rec.id_seen_at or now

    def job_ids(self) -> set[str]:
        return {r.job_id for r in self.records.values() if r.job_id}

    def by_job_id(self, job_id: str) -> JobRecord | None:
        for rec in self.records.values():
            if rec.job_id == job_id:
                return rec
        return None

    def find(self, key: str) -> JobRecord | None:
        """A record by spec name, SGE job id or worker name."""
        key = str(key)
        rec = self.records.get(key) or self.by_job_id(key)
        if rec is None and "-" in key:
            rec = self.records.get(key.rsplit("-", 1)[0])
        return rec

    def job_of(self, worker_name: str, processes: int = 1) -> str | None:
        rec = self.records.get(worker_name)
        if rec is None and processes > 1:
            rec = self.records.get(worker_name.rsplit("-", 1)[0])
        return rec.job_id if rec is not None else None

    def ended(self) -> list[JobRecord]:
        """Jobs that ended, the most recent first."""
        done = [r for r in self.records.values() if r.left_at is not None]
        done.sort(key=lambda r: r.left_at, reverse=True)
        return done

    def prune(self) -> None:
        """Keep the newest ``ENDED_KEEP`` ended jobs."""
        done = self.ended()
        for rec in done[self._ended_keep:]:
            del self.records[rec.name]

    def live_hosts(self) -> set[str]:
        """Hosts where a worker of ours runs now (the node is alive)."""
        return {r.host for r in self.records.values() if r.workers and r.host and r.left_at is None}

    def avoided(self, now: float) -> set[str]:
        alive = self.live_hosts()
        return {h for h, until in self.avoid.items() if until > now and h not in alive}


def _live_row(rec: JobRecord, sge: Mapping[str, SgeJob], has_queue: bool) -> JobRow:
    row = JobRow(
        name=rec.name, job_id=rec.job_id, state=JobState.SUBMITTING, since=rec.submitted_at,
        workers=rec.workers, expected_workers=rec.expected_workers, log_path=rec.log_path,
    )
    if not has_queue:
        row = replace(row, state=JobState.RUNNING if rec.workers else JobState.SUBMITTING)
    elif rec.job_id is not None:
        sj = sge.get(rec.job_id)
        if sj is not None:
            row = replace(
                row, state=sj.state, raw_state=sj.raw_state, queue=sj.queue, host=sj.host,
                slots=sj.slots, since=sj.started or sj.submitted or rec.submitted_at,
                reason=sj.reason or rec.startup,
            )
            if rec.lost_reason:
                row = replace(row, state=JobState.NO_WORKER, since=rec.lost_since, reason=rec.lost_reason)
        elif rec.vanished_at is not None:
            row = replace(row, state=JobState.GONE, since=rec.vanished_at, reason=_gone_reason(rec))
    if rec.retiring_since is not None:
        row = replace(row, state=JobState.RETIRING, since=rec.retiring_since)
    return row


def _gone_reason(rec: JobRecord) -> str:
    pm = rec.postmortem
    return pm.verdict if pm is not None else ""


def _ended_row(rec: JobRecord, state: JobState) -> JobRow:
    sj = rec.sge
    return JobRow(
        name=rec.name, job_id=rec.job_id, state=state,
        raw_state=sj.raw_state if sj is not None else "",
        queue=sj.queue if sj is not None else None, host=rec.host,
        slots=sj.slots if sj is not None else 0, since=rec.left_at, reason=_gone_reason(rec),
        expected_workers=rec.expected_workers, log_path=rec.log_path,
    )


def job_rows(
    ledger: Ledger,
    specs: Sequence[str],
    sge: Mapping[str, SgeJob],
    *,
    has_queue: bool,
    now: float,
) -> tuple[JobRow, ...]:
    """The Jobs panel's live rows: every job dask-jobqueue keeps (``specs``, in its order),
    a job deleted at once that SGE still lists (a dead node's), and the jobs that vanished in
    the last ``GONE_KEEP`` seconds without the console deleting them."""
    rows = [_live_row(ledger.ensure(name), sge, has_queue) for name in specs]
    listed = set(specs)
    for rec in ledger:
        if rec.name in listed:
            continue
        if rec.show_deleting and rec.left_at is None and rec.job_id:
            sj = sge.get(rec.job_id)
            if sj is not None:
                last = _ended_row(rec, JobState.DELETING)
                rows.append(replace(last, state=sj.state, raw_state=sj.raw_state,
                                    since=sj.started or sj.submitted))
        elif rec.vanished_at is not None and rec.left_at is not None and not rec.deleted \
                and now - rec.left_at <= GONE_KEEP:
            rows.append(_ended_row(rec, JobState.GONE))
    return tuple(rows)


def ended_rows(ledger: Ledger, limit: int = ENDED_SHOWN) -> tuple[JobRow, ...]:
    """The newest ended jobs with their verdicts: GONE when the console did not delete
    them, ENDED when it did."""
    return tuple(
        _ended_row(rec, JobState.ENDED if rec.deleted else JobState.GONE)
        for rec in ledger.ended()[:limit]
    )


def job_detail(rec: JobRecord, has_queue: bool) -> dict:
    """One job as plain values, for its detail view (the live job's output is read by the
    caller, outside the ledger's lock)."""
    sj, pm = rec.sge, rec.postmortem
    in_error = sj is not None and "E" in sj.raw_state and not rec.ended
    return {
        "name": rec.name,
        "job_id": rec.job_id,
        "host": rec.host,
        "queue": sj.queue if sj is not None else None,
        "raw_state": sj.raw_state if sj is not None else "",
        "state": sj.state.value if sj is not None else None,
        "sge_reason": sj.reason if sj is not None else "",
        "submitted_at": rec.submitted_at,
        "started_at": rec.started_at,
        "left_at": rec.left_at,
        "deleted": rec.deleted,
        "connected": rec.connected,
        "workers": list(rec.workers),
        "expected_workers": rec.expected_workers,
        "retiring": rec.retiring_since is not None,
        "lost": rec.lost_reason,
        "startup": rec.startup,
        "log_path": rec.log_path,
        "log_tail": None,
        "postmortem": pm.to_wire() if pm is not None else None,
        # (a job whose workers hold data is retired with r instead: its data moves first)
        "can_delete": (not rec.ended and rec.deleted is None and rec.job_id is not None
                       and (in_error or bool(rec.lost_reason) or not rec.workers)),
        "can_clear": has_queue and in_error,
    }
