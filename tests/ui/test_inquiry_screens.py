"""The views that say why, driven by keys against a real LocalCluster: ended jobs in the Jobs
panel (h hides them, Enter shows the detail), the Failures view (f), slow tasks (t) with a
call stack, worker events (e)."""

from __future__ import annotations

import time

import pytest

from naist_dask_tui.app import make_app
from naist_dask_tui.core.snapshot import JobState
from naist_dask_tui.screens.failures import FailuresScreen
from naist_dask_tui.screens.job_detail import JobDetailScreen
from naist_dask_tui.screens.slow_tasks import SlowTasksScreen
from naist_dask_tui.screens.worker_events import WorkerEventsScreen
from naist_dask_tui.widgets.jobs_table import JobsTable
from naist_dask_tui.widgets.row_table import RowTable

from .conftest import wait_for

pytestmark = pytest.mark.slow


def _fails(i):
    raise KeyError(f"missing column {i % 3}")


def _nap(seconds):
    time.sleep(seconds)
    return seconds


async def test_ended_jobs_stay_listed_with_their_verdict_and_open_their_detail(local_controller):
    local_controller.scale(2)
    app = make_app(local_controller.settings, local_controller, user="u", login_host="h")
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.snapshot and len([j for j in app.snapshot.jobs if j.workers]) == 2,
                       what="2 workers")
        await pilot.press("5")  # the Jobs panel
        await pilot.press("minus")
        table = app.main.query_one(JobsTable)
        await wait_for(pilot, lambda: any(v.job.state is JobState.ENDED for v in table._rows.values()),
                       what="the ended worker's row")
        (ended,) = [v.job for v in table._rows.values() if v.job.state is JobState.ENDED]
        assert ended.reason == "stopped by the console (scale-down)"
        assert "1 ended (h hides them)" in app.main.query_one("#jobs-panel").border_subtitle
        assert "stopped by the console" in " ".join(table.row_text(ended.name))  # shown at 80 columns
        await pilot.press("h")
        assert ended.name not in table._rows and "hidden" in app.main.query_one("#jobs-panel").border_subtitle
        await pilot.press("h")
        assert ended.name in table._rows
        table.move_cursor_to_key(ended.name)
        await pilot.press("enter")
        screen = app.screen
        assert isinstance(screen, JobDetailScreen)
        await wait_for(pilot, lambda: screen.fetches >= 1, what="the job's detail")
        summary = str(screen.query_one("#job-summary").render())
        assert "verdict: stopped by the console (scale-down)" in summary, summary
        await pilot.press("x")  # an ended job: nothing to delete
        await pilot.pause()
        assert app.screen is screen, app.screen  # no delete question for it
        await pilot.press("escape")
        assert not isinstance(app.screen, JobDetailScreen)


def as_if_on_sge(controller, monkeypatch) -> None:
    """Local workers have no SGE job: give each one, as the SGE backend's ledger does, so that
    a failure names the job it failed on."""
    monkeypatch.setattr(controller, "job_of", lambda worker_name: "4242")
    monkeypatch.setattr(controller, "_diagnostics", None)  # built again with that job_of


async def test_failures_slow_tasks_and_worker_events_views(local_controller, monkeypatch):
    as_if_on_sge(local_controller, monkeypatch)
    client = local_controller.client
    futures = client.map(_fails, range(30))
    app = make_app(local_controller.settings, local_controller, user="u", login_host="h")
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: all(f.status == "error" for f in futures), what="30 failed tasks")
        await pilot.press("f")
        screen = app.screen
        assert isinstance(screen, FailuresScreen)
        await wait_for(pilot, lambda: screen.fetches >= 1 and len(screen.fetched) == 3, what="3 groups")
        assert sorted(g.count for g in screen.fetched) == [10, 10, 10]
        assert {g.type for g in screen.fetched} == {"KeyError"}
        detail = str(screen.query_one("#failure-detail").render())
        assert "KeyError" in detail and "_fails" in detail, detail
        await pilot.press("enter")  # the post-mortem of the job it failed on
        job = app.screen
        assert isinstance(job, JobDetailScreen) and job.may_change and job.job.job_id == "4242"
        await pilot.press("escape")
        await pilot.press("escape")

        quick = client.map(_nap, [0.05] * 3, pure=False)
        await wait_for(pilot, lambda: all(f.status == "finished" for f in quick), what="3 quick tasks")
        slow = client.submit(_nap, 60, pure=False)
        await app.push_screen(SlowTasksScreen(local_controller, floor=1.0))
        screen = app.screen
        assert isinstance(screen, SlowTasksScreen)
        table = screen.query_one(RowTable)
        await wait_for(pilot, lambda: table.row_count == 1, timeout=30, what="the slow task")
        await pilot.press("enter")
        await wait_for(pilot, lambda: any("sleep" in line for line in screen.stack), timeout=15,
                       what="its call stack")
        slow.cancel()
        await pilot.press("escape")

        await pilot.press("e")
        screen = app.screen
        assert isinstance(screen, WorkerEventsScreen)
        await wait_for(pilot, lambda: screen.fetches >= 1, what="the events")
        assert [e.kind for e in screen.fetched] == ["joined"]
        await pilot.press("escape")
        assert not isinstance(app.screen, WorkerEventsScreen)


async def test_a_watching_screen_cannot_change_jobs_from_the_failures_view(local_controller, monkeypatch):
    from naist_dask_tui.core.control import WATCH_ONLY

    as_if_on_sge(local_controller, monkeypatch)
    futures = local_controller.client.map(_fails, range(3))
    app = make_app(local_controller.settings, local_controller, user="u", login_host="h",
                   capabilities=WATCH_ONLY)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: all(f.status == "error" for f in futures), what="3 failed tasks")
        await pilot.press("f")
        screen = app.screen
        await wait_for(pilot, lambda: screen.fetches >= 1 and screen.fetched, what="the failures")
        await pilot.press("enter")
        job = app.screen
        assert isinstance(job, JobDetailScreen) and not job.may_change and job.job.job_id == "4242"
