"""Opening the views that say why (from the main screen's keys and the command palette)."""

from __future__ import annotations

from typing import Any

from naist_dask_tui.core.snapshot import JobRow


def open_view(screen: Any, view: str) -> None:
    from naist_dask_tui.screens.failures import FailuresScreen
    from naist_dask_tui.screens.slow_tasks import SlowTasksScreen
    from naist_dask_tui.screens.worker_events import WorkerEventsScreen

    controller = screen.app.controller
    if view == "failures":
        screen.app.push_screen(FailuresScreen(controller, run_started=lambda: run_started(screen)))
        return
    kind = {"slow_tasks": SlowTasksScreen, "worker_events": WorkerEventsScreen}[view]
    screen.app.push_screen(kind(controller))


def run_started(screen: Any) -> float | None:
    """When the current (or last) compute run began: in this screen's pane, or in the
    keeper's runner (None: no run yet)."""
    times = [getattr(screen, "run_started_at", None), getattr(screen.app.controller, "run_started", None)]
    times = [t for t in times if t]
    return max(times) if times else None


def open_job(screen: Any, job: JobRow) -> None:
    """A job's detail, from any screen; its x and c only where this console may change jobs
    (not when it only watches a scheduler started elsewhere)."""
    from naist_dask_tui.screens.job_detail import JobDetailScreen

    may_change = bool(screen.app.capabilities.retire)
    screen.app.push_screen(JobDetailScreen(screen.app.controller, job, may_change=may_change))
