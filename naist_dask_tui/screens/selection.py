"""The main screen's intents on the selected row: retire its job, follow its job's output or
the keeper's log, open the views that say why (failures, slow tasks, worker events)."""

from __future__ import annotations

from naist_dask_tui.core.snapshot import JobRow
from naist_dask_tui.messages import RetireRequested
from naist_dask_tui.widgets.jobs_table import JobsTable
from naist_dask_tui.widgets.workers_table import WorkersTable


class SelectionActions:
    """Mixed into the main screen, which provides ``snapshot``, ``focused``, ``active_panel``,
    ``wide``, ``workers_view``, ``backend``, ``log_files``, ``query_one``, ``notify``,
    ``post_message`` and ``app``."""

    def selected_job_target(self) -> tuple[str, str] | None:
        """(target for ``retire_job``, label) of the selected job or of the selected worker's job."""
        focused = self.focused
        if isinstance(focused, JobsTable) or (self.active_panel == "jobs" and not self.wide):
            job = self.query_one(JobsTable).cursor_job
            if job is None:
                return None
            return (job.job_id or job.name, f"job {job.job_id or job.name}")
        if self.workers_view.grouped:  # a group's row: its SGE job (grouped by host: none)
            return self.workers_view.selected_job()
        worker = self.query_one(WorkersTable).cursor_row
        if worker is None:
            return None
        job = self._job_of(worker)
        if job is not None:
            return (job.job_id or job.name, f"job {job.job_id or job.name} (worker {worker.name})")
        if worker.job_id:
            return (worker.job_id, f"job {worker.job_id} (worker {worker.name})")
        return (worker.name, f"worker {worker.name}")

    def _job_of(self, worker) -> JobRow | None:
        """The job whose workers include ``worker``, in the latest snapshot."""
        snapshot = self.snapshot
        return next((j for j in snapshot.jobs if worker.address in j.workers), None) if snapshot else None

    def action_retire(self) -> None:
        target = self.selected_job_target()
        if target is None:
            self.notify("Select a worker or a job first.", severity="warning")
            return
        self.notify(f"Retiring {target[1]}: moving its data, then deleting it…", timeout=4)
        self.post_message(RetireRequested(*target))

    def action_job_log(self) -> None:
        job = None
        if isinstance(self.focused, JobsTable) or self.active_panel == "jobs":
            job = self.query_one(JobsTable).cursor_job
        else:
            worker = self.query_one(WorkersTable).cursor_row
            if worker is not None:
                job = self._job_of(worker)
        if job is None:
            self.notify("Select a job (5 shows the jobs) to see its output.", severity="warning")
            return
        self.show_job_log(job)

    def action_console_log(self, index: int = 0) -> None:
        """Follow the keeper's log (or, with no keeper, this screen's own)."""
        from naist_dask_tui.screens.log_tail import LogTailScreen

        if not self.log_files:
            self.notify("No log file here.", severity="warning")
            return
        title, path = self.log_files[min(index, len(self.log_files) - 1)]
        self.app.push_screen(LogTailScreen(title, path))

    def action_inquire(self, view: str) -> None:
        """Open one of the views that say why (failures, slow tasks, worker events)."""
        from naist_dask_tui.screens.inquiries import open_view

        open_view(self, view)

    def show_job_log(self, job: JobRow) -> None:
        from naist_dask_tui.screens.log_tail import LogTailScreen

        noun = "worker" if self.backend == "local" else "job"
        self.app.push_screen(
            LogTailScreen(f"{noun} {job.job_id or job.name}", job.log_path, backend=self.backend)
        )
