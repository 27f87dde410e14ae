"""The SGE jobs table: the console's jobs, their state, why they wait, and their workers; the
jobs that ended stay listed with their verdict (``h`` hides them), Enter opens a job's detail."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from textual.binding import Binding
from textual.message import Message

from naist_dask_tui.core.snapshot import JobRow, JobState
from naist_dask_tui.formatting import duration_step, fmt_duration, natural_key
from naist_dask_tui.widgets.row_table import Column, RowTable


@dataclass(frozen=True, slots=True)
class JobView:
    """A job plus what the table shows that is not in the record (time in state, worker names)."""

    job: JobRow
    age: int | None  # whole seconds in the current state, from the snapshot's clock
    worker_names: str


def job_views(
    jobs: Iterable[JobRow],
    now: float,
    names: dict[str, str],
    cache: dict[str, JobView] | None = None,
) -> list[JobView]:
    """Views of ``jobs`` at ``now``; with a ``cache`` an unchanged job keeps its view object
    (so the table neither re-renders nor re-sorts it). Ages are rounded to what is shown."""
    views = []
    for job in jobs:
        if job.since is None:
            age = None
        else:
            age = max(0, int(now - job.since))
            age -= age % duration_step(age)
        view = cache.get(job.name) if cache is not None else None
        if view is not None and (view.job is job or view.job == job):
            if view.age != age:
                view = JobView(view.job, age, view.worker_names)
                cache[job.name] = view  # type: ignore[index]
        else:
            worker_names = ",".join(names.get(a, a) for a in job.workers)
            view = JobView(job, age, worker_names)
            if cache is not None:
                cache[job.name] = view
        views.append(view)
    if cache is not None and len(cache) > 2 * len(views) + 64:
        keep = {v.job.name for v in views}
        for name in [n for n in cache if n not in keep]:
            del cache[name]
    return views


_STATE_ORDER = {s: i for i, s in enumerate(JobState)}


def _workers_count(v: JobView) -> str:
    return f"{len(v.job.workers)}/{v.job.expected_workers}"


JOB_COLUMNS: list[Column[JobView]] = [
    Column("name", "Name", 10, lambda v: v.job.name, lambda v: natural_key(v.job.name), flex=True, max_width=16),
    Column("job_id", "Job id", 8, lambda v: v.job.job_id or "-", lambda v: natural_key(v.job.job_id or "")),
    Column(
        "state", "State", 10, lambda v: v.job.state.value, lambda v: _STATE_ORDER[v.job.state],
        style=lambda v: f"jobs--{v.job.state.value}",
    ),
    Column("raw", "SGE", 4, lambda v: v.job.raw_state or "-", lambda v: v.job.raw_state, priority=6),
    Column("queue", "Queue", 12, lambda v: v.job.queue or "-", lambda v: v.job.queue or "", priority=3),
    Column("host", "Host", 10, lambda v: v.job.host or "-", lambda v: v.job.host or "", priority=2),
    Column("slots", "Slots", 5, lambda v: str(v.job.slots or "-"), lambda v: v.job.slots, align="right", priority=4),
    Column("age", "In state", 8, lambda v: fmt_duration(v.age), lambda v: v.age, align="right", priority=1),
    Column("workers", "Wkrs", 5, _workers_count, lambda v: len(v.job.workers), align="right", priority=1),
    Column("worker_names", "Workers", 12, lambda v: v.worker_names or "-", lambda v: v.worker_names,
           priority=5, flex=True, max_width=24),
    # why it waits, fails or ended: kept at 80 columns (before the queue and the slots)
    Column("reason", "Why pending / error", 19, lambda v: v.job.reason or "", lambda v: v.job.reason,
           priority=1, flex=True, max_width=120),
]


def with_ended(jobs: Iterable[JobRow], ended: Iterable[JobRow], show: bool = True) -> list[JobRow]:
    """The live jobs, then the ended ones not listed among them (unless hidden)."""
    rows = list(jobs)
    if show:
        listed = {r.name for r in rows}
        rows += [r for r in ended if r.name not in listed]
    return rows


class JobsTable(RowTable[JobView]):
    COMPONENT_CLASSES = RowTable.COMPONENT_CLASSES | {f"jobs--{s.value}" for s in JobState}
    BINDINGS = [
        Binding("enter", "details", "Job details", show=False,
                tooltip="Job details: why it waits, fails or ended, its output", id="jobs.details"),
        Binding("h", "toggle_ended", "Hide/show ended jobs", show=False,
                tooltip="Hide (or show again) the jobs that ended", id="jobs.hide_ended"),
    ]

    class DetailRequested(Message):
        """Enter on a job: its detail view (the screen opens it)."""

        def __init__(self, job: JobRow) -> None:
            super().__init__()
            self.job = job


    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(
            JOB_COLUMNS,
            key_of=lambda v: v.job.name,
            search_text=lambda v: f"{v.job.name} {v.job.job_id or ''} {v.job.state.value} {v.job.host or ''}",
            sort_column="name",
            empty_text="no jobs: press + to submit one, s to ask for a number",
            id=id,
            classes=classes,
        )
        self.show_ended = True
        self._last: tuple | None = None  # what show_jobs was given last (h shows it again)

    @property
    def cursor_job(self) -> JobRow | None:
        view = self.cursor_row
        return None if view is None else view.job

    def show_jobs(self, jobs, ended, now: float, names: dict[str, str], cache: dict) -> str:
        """Show the live and (unless hidden) ended jobs; returns the panel's subtitle."""
        self._last = (jobs, ended, now, names, cache)
        self.set_rows(job_views(with_ended(jobs, ended, self.show_ended), now, names, cache))
        if not ended:
            return ""
        live = {j.name for j in jobs}
        n = sum(1 for r in ended if r.name not in live)
        shown = "h hides them" if self.show_ended else "hidden: h shows them"
        return f"{n} ended ({shown}) · enter: details" if n else "enter: details"

    def action_toggle_ended(self) -> None:
        self.show_ended = not self.show_ended
        if self._last is not None:
            subtitle = self.show_jobs(*self._last)
            if self.parent is not None:
                self.parent.border_subtitle = subtitle
        self.notify("Ended jobs shown." if self.show_ended else "Ended jobs hidden (h shows them).", timeout=2)

    def action_details(self) -> None:
        job = self.cursor_job
        if job is not None:
            self.post_message(self.DetailRequested(job))
