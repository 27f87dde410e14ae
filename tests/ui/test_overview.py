"""The Overview's graphs and the Workers panel at scale, fed with fixed snapshot data."""

from __future__ import annotations

from dataclasses import replace

from naist_dask_tui.app import make_app
from naist_dask_tui.history import MemoryHistory
from naist_dask_tui.screens.main import WORKERS_VIEW_MIN
from naist_dask_tui.widgets.timeplot import TimePlot, bin_columns, braille_rows, stacked_rows
from tests.ui.fake_data import T0, GiB, make_snapshot, make_worker, overview_series


def fixed_app():
    return make_app(object(), poll=False, user="alice", login_host="login.example")


def test_history_tiers_cover_each_window_with_few_samples():
    h = MemoryHistory()
    snaps = overview_series(seconds=300)
    for s in snaps:
        h.add(s)
    five = h.window(300)
    assert len(five.times) == 300 and five.times[-1] == T0  # every sample, the newest last
    assert five.last("workers") == 8 and five.values["jobs_pending"][0] == 1
    # tasks/s from the cumulative count: 40 a second, then 90
    assert five.values["rate"][10] == 40 and five.last("rate") == 90
    # a later hour of 1 s samples: the 1 h window reads 10 s means, not 3,600 samples
    base = snaps[-1]
    for k in range(1, 3601):
        t = T0 + k
        h.add(replace(base, time=t, cluster=replace(base.cluster, time=t, tasks=replace(
            base.cluster.tasks, finished=base.cluster.tasks.finished + 5 * k))))
    hour = h.window(3600)
    assert 350 <= len(hour.times) <= 370
    assert abs(hour.values["rate"][-2] - 5.0) < 1e-9
    since = h.window(None)
    assert since.start <= T0 - 299 and len(since.times) < 400


def test_history_does_not_grow():
    h = MemoryHistory()
    sizes = [len(c) for tier in h.tiers for c in tier.ring.columns]
    for s in overview_series(seconds=700):
        h.add(s)
    assert [len(c) for tier in h.tiers for c in tier.ring.columns] == sizes  # preallocated


def test_stacked_and_braille_cells():
    bins = bin_columns([0.0, 1.0, 2.0, 3.0], [[1, 1, 1, 1], [1, 1, 1, 1]], 0.0, 4.0, 4)
    cells = stacked_rows(bins, 4.0, 2)  # 2 of 4 filled: the lower row full, managed then unmanaged
    assert [c[0] for c in cells[1]] == ["▄"] * 4 and cells[1][0][1:] == (0, 1)
    assert [c[0] for c in cells[0]] == [" "] * 4
    rows = braille_rows([[0.0, 1.0]], [1.0], 1)  # a rising line: bottom-left, top-right dots
    assert rows[0][0][0] == chr(0x2800 + 0x40 + 0x08 + 0x10 + 0x20)
    gap = bin_columns([0.0, 10.0], [[1.0, 1.0]], 0.0, 20.0, 20)  # wide bins between samples
    assert gap[0][5] == 1.0 and gap[0][15] is None  # nothing after the last sample


async def test_overview_is_the_first_panel_and_w_changes_the_window():
    app = fixed_app()
    async with app.run_test(size=(80, 24)) as pilot:
        for s in overview_series():
            app.apply_snapshot(s)
        await pilot.pause()
        main = app.main
        assert main.active_panel == "overview"
        plots = list(main.query(TimePlot))
        assert len(plots) == 4
        text = main.query_one("#plot-tasks", TimePlot).text
        assert "Tasks done 90/s" in text and "-5m" in text and "now" in text
        assert "Workers 8 jobs run 8 pend 0" in main.query_one("#plot-workers", TimePlot).text
        redraws = [p.redraws for p in plots]
        app.apply_snapshot(overview_series()[-1])  # the same snapshot again: nothing redrawn
        await pilot.pause()
        assert [p.redraws for p in plots] == redraws
        await pilot.press("w")
        await pilot.pause()
        assert "window: 1 h" in str(main.query_one("#overview-header").render())
        assert "-1h" in main.query_one("#plot-cpu", TimePlot).text
        await pilot.press("2")
        assert main.active_panel == "workers"


async def test_grouped_workers_view_is_offered_at_scale_and_shows_the_outliers():
    app = fixed_app()
    async with app.run_test(size=(120, 40)) as pilot:
        app.apply_snapshot(make_snapshot(10))
        await pilot.press("2")
        main = app.main
        assert main.check_action("workers_view", ()) is False  # 10 workers: one row each
        assert "g:" not in main.workers_panel.border_subtitle
        n = WORKERS_VIEW_MIN + 50
        workers = [make_worker(i, job=i // 4, cpu=5.0, executing=0, ready=0) for i in range(n)]
        workers[7] = replace(workers[7], memory=int(7.9 * GiB))  # the highest memory
        workers[20] = replace(workers[20], spilled=3 * GiB)
        workers[33] = replace(workers[33], executing=3, cpu=100.0)  # the straggler
        app.apply_snapshot(make_snapshot(workers=tuple(workers), t=T0 + 1))
        await pilot.pause()
        assert main.check_action("workers_view", ()) is True
        assert "g: group by job / host" in main.workers_panel.border_subtitle
        assert any(b.binding.action == "workers_view" for b in main.active_bindings.values())
        await pilot.press("g")
        await pilot.pause()
        groups = main.query_one("#groups-table")
        assert groups.display and not main.workers_table.display
        assert groups.total_count == -(-n // 4)  # one row per SGE job
        row = groups.get_row("1008")  # job 8 holds worker 33
        assert row.workers == 4 and row.tasks.high == 3 and row.tasks.total == 3
        outliers = str(main.query_one("#workers-outliers").render())
        assert "highest memory: ndtui-1" in outliers.replace("\n", " ")  # make_worker names by job
        assert "1 spilling" in outliers and "1 straggler(s) executing while" in outliers
        groups.focus()
        await pilot.press("home")
        assert main.selected_job_target() == ("1000", "job 1000 (4 workers)")  # r retires the group's job
        await pilot.press("g")  # by host
        await pilot.pause()
        assert groups.total_count == 40 and "grouped by host" in main.workers_panel.border_subtitle
        assert main.selected_job_target() is None  # a host is not a job: r retires nothing
        await pilot.press("g")  # every worker again
        await pilot.pause()
        assert main.workers_table.display and main.workers_table.total_count == n
