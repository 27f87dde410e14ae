"""Pilot tests of the real app against a real LocalCluster through the real controller."""

from __future__ import annotations

import pytest

from naist_dask_tui.app import make_app
from naist_dask_tui.screens.confirm import ConfirmScreen
from naist_dask_tui.screens.scale_dialog import ScaleDialog
from naist_dask_tui.widgets.workers_table import WorkersTable

from .conftest import run_in_thread, wait_for, wait_polls

pytestmark = pytest.mark.slow


def table(app) -> WorkersTable:
    return app.main.workers_table


async def test_plus_adds_a_worker_row(local_controller):
    app = make_app(local_controller.settings, local_controller, user="u", login_host="h")
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: table(app).total_count == 1, what="the first worker")
        before = set(table(app).keys)
        await pilot.press("plus")
        # Immediate feedback: the request shows before any worker arrives.
        await pilot.pause(0.05)
        assert "jobs 2 req" in app.main.status._markup.replace("\u00a0", " ")
        await wait_for(pilot, lambda: table(app).total_count == 2, what="the new worker row")
        new = set(table(app).keys) - before
        assert len(new) == 1
        assert local_controller.requested_jobs == 2


async def test_sort_and_filter_keep_rows_and_cursor(local_controller):
    local_controller.scale(3)
    app = make_app(local_controller.settings, local_controller)
    async with app.run_test(size=(120, 40)) as pilot:
        t = table(app)
        await wait_for(pilot, lambda: t.total_count == 3, what="3 workers")
        await pilot.press("2")  # the Workers panel (the Overview comes first)
        names = [t.get_row(k).name for k in t.keys]
        assert names == sorted(names)
        # o cycles the sort column: name -> host; O reverses.
        await pilot.press("o")
        assert t.sort_column == "host"
        await pilot.press("O")
        assert t.sort_reverse
        t.sort_by("name", reverse=True)
        await pilot.pause()
        assert [t.get_row(k).name for k in t.keys] == sorted(names, reverse=True)
        # The cursor follows its row across refreshes.
        await pilot.press("down")
        selected = t.cursor_key
        await wait_polls(pilot, app, 2)
        assert t.cursor_key == selected
        # / filters by name, host, job or address.
        target = t.get_row(t.keys[0]).name
        await pilot.press("slash")
        await pilot.press(*target)
        await pilot.press("enter")
        assert t.row_count == 1 and t.get_row(t.keys[0]).name == target
        assert "1 of 3" in app.main.workers_panel.border_subtitle
        await wait_polls(pilot, app, 1)
        assert t.row_count == 1
        await pilot.press("escape")
        assert t.row_count == 3


async def test_scale_to_zero_asks_first_and_bad_counts_send_nothing(local_controller):
    app = make_app(local_controller.settings, local_controller)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: table(app).total_count == 1, what="the first worker")
        await pilot.press("s")
        assert isinstance(app.screen, ScaleDialog)
        await pilot.press("ctrl+a", "ctrl+k", "a", "b", "c", "enter")
        assert isinstance(app.screen, ScaleDialog)
        assert "not a whole number" in str(app.screen.query_one("#error").render())
        await pilot.press("ctrl+a", "ctrl+k", "minus", "2", "enter")
        assert "negative" in str(app.screen.query_one("#error").render())
        await pilot.press("ctrl+a", "ctrl+k", "0", "enter")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")
        assert not isinstance(app.screen, ConfirmScreen)
        await wait_polls(pilot, app, 2)
        assert local_controller.requested_jobs == 1
        assert table(app).total_count == 1
        # "-" from one job is a scale to zero too: confirm it this time.
        await pilot.press("minus")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        await wait_for(pilot, lambda: local_controller.requested_jobs == 0, what="scale to 0")
        try:
            await wait_for(pilot, lambda: table(app).total_count == 0, what="the row to go")
        except AssertionError as exc:
            rows = [table(app).get_row(k) for k in table(app).keys]
            raise AssertionError(
                f"{exc}; notices {list(local_controller.notices)}; rows {rows}; jobs {app.snapshot.jobs}"
            ) from None


async def test_lost_scheduler_is_shown_and_polling_goes_on(local_controller):
    app = make_app(local_controller.settings, local_controller)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: table(app).total_count == 1, what="the first worker")
        assert app.connected
        await run_in_thread(local_controller.client.sync, local_controller.cluster.scheduler.close)
        await wait_for(pilot, lambda: not app.connected, timeout=60, what="the lost state")
        assert "LOST" in app.main.status._markup
        assert app.main.status.has_class("-lost")
        polls = app.polls
        await wait_for(pilot, lambda: app.polls > polls + 1, timeout=60, what="retries")
        assert not app.connected


async def test_quit_with_jobs_asks_then_exits(local_controller):
    app = make_app(local_controller.settings, local_controller)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.snapshot is not None, what="a poll")
        await pilot.press("q")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")
        assert app.is_running
        await pilot.press("q", "y")
        await pilot.pause()
    assert app.return_code == 0


async def test_retire_selected_workers_job(local_controller):
    local_controller.scale(2)
    app = make_app(local_controller.settings, local_controller)
    async with app.run_test(size=(120, 40)) as pilot:
        t = table(app)
        await wait_for(pilot, lambda: t.total_count == 2, what="2 workers")
        await pilot.press("2", "end")
        leaving = t.cursor_key
        await pilot.press("r")
        await wait_for(pilot, lambda: local_controller.requested_jobs == 1, what="the retire")
        await wait_for(pilot, lambda: leaving not in t.keys, timeout=60, what="the retired row to go")
        assert t.total_count == 1


async def test_adaptive_toggle(local_controller):
    app = make_app(local_controller.settings, local_controller)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.snapshot is not None, what="a poll")
        await pilot.press("a")
        dialog = app.screen
        dialog.query_one("#min").value = "1"
        dialog.query_one("#max").value = "2"
        dialog.query_one("#max").focus()
        await pilot.press("enter")
        await wait_for(pilot, lambda: local_controller.adaptive == (1, 2), what="adaptive on")
        await wait_for(pilot, lambda: "adaptive 1-2" in app.main.status._markup.replace("\u00a0", " "))
        await pilot.press("a")
        await wait_for(pilot, lambda: local_controller.adaptive is None, what="adaptive off")


async def test_compute_tab_holds_the_compute_pane(local_controller):
    app = make_app(local_controller.settings, local_controller)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("5")
        panes = app.main.query("ComputePane")
        assert len(panes) == 1 and panes.first().display
        assert not app.main.workers_panel.display


async def test_requests_above_max_jobs_are_refused_in_one_line(local_controller):
    """s, + and the adaptive maximum above max_jobs (4 here): refused, naming max_jobs, and
    nothing is sent to the controller."""
    app = make_app(local_controller.settings, local_controller)
    assert local_controller.max_jobs == 4
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: table(app).total_count == 1, what="the first worker")
        await pilot.press("s")
        assert "at most 4" in str(app.screen.query_one("Label").render())
        await pilot.press("ctrl+a", "ctrl+k", *"10000", "enter")
        assert isinstance(app.screen, ScaleDialog)
        error = str(app.screen.query_one("#error").render())
        assert error.startswith("max_jobs: 10000 workers asked for (scale) is above max_jobs 4")
        await pilot.press("escape")
        await pilot.press("a")
        dialog = app.screen
        assert dialog.query_one("#max").value == "4"
        dialog.query_one("#max").value = "5"
        dialog.query_one("#max").focus()
        await pilot.press("enter")
        assert "max_jobs: 5 workers asked for (adaptive maximum)" in str(dialog.query_one("#error").render())
        await pilot.press("escape")
        await pilot.pause()
        # the refused dialogs sent nothing: still the 1 job of the start, not adaptive
        assert local_controller.requested_jobs == 1 and local_controller.adaptive is None
        local_controller.scale(4)  # at the ceiling: + must be refused next
        await wait_polls(pilot, app, 1)
        notified = len(app._notifications)
        await pilot.press("plus")
        await pilot.pause()
        messages = [n.message for n in list(app._notifications)[notified:]]
        assert any(m.startswith("max_jobs: 5 workers asked for") for m in messages), messages
        assert local_controller.requested_jobs == 4 and local_controller.adaptive is None


async def test_local_backend_speaks_of_workers_not_sge(local_controller):
    app = make_app(local_controller.settings, local_controller)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: table(app).total_count == 1, what="the first worker")
        assert app.main.query_one("#jobs-panel").border_title == "Local workers"


async def test_l_follows_a_local_workers_log_file(local_controller):
    from naist_dask_tui.screens.log_tail import LogTailScreen

    app = make_app(local_controller.settings, local_controller)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: table(app).total_count == 1, what="the first worker")
        await wait_polls(pilot, app, 1)
        await pilot.press("l")
        assert isinstance(app.screen, LogTailScreen)
        assert app.screen.path and app.screen.path.endswith(".log")
        log = app.screen.query_one("Log")
        await wait_for(pilot, lambda: any("its output and log go to this file" in line for line in log.lines),
                       timeout=20, what="the worker's log in the view")
        assert "worker local-" in str(app.screen.query_one("#log-title").render())
