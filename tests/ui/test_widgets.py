"""Pure widget tests fed with snapshot records (no cluster needed)."""

from __future__ import annotations

import random
from dataclasses import replace

from naist_dask_tui.app import ConsoleApp, make_app
from naist_dask_tui.formatting import bar, fmt_bytes, fmt_duration, natural_key, ssh_tunnel_hint
from naist_dask_tui.history import MemoryHistory
from naist_dask_tui.screens.help import HelpScreen
from naist_dask_tui.screens.log_tail import LogTailScreen
from naist_dask_tui.screens.scale_dialog import AdaptDialog, parse_job_count
from naist_dask_tui.widgets.spill_panel import heavy_spill_advice
from tests.ui.fake_data import T0, FakeMonitor, GiB, make_snapshot, make_worker, showcase_snapshot, vary


def fixed_app(**kw) -> ConsoleApp:
    return make_app(object(), poll=False, user="alice", login_host="login.example", **kw)


def test_formatting():
    assert fmt_bytes(1536) == "1.5K"
    assert fmt_bytes(8 * GiB) == "8.0G"
    assert fmt_bytes(0) == "0B"
    assert fmt_duration(75) == "1m15s" and fmt_duration(4000) == "1h06m" and fmt_duration(None) == "-"
    assert bar(0.5, 4) == "██  " and len(bar(0.33, 7)) == 7
    assert sorted(["w-10", "w-2"], key=natural_key) == ["w-2", "w-10"]
    assert ssh_tunnel_hint("http://10.0.0.1:8787/status", "alice", "login") == (
        "ssh -L 8787:localhost:8787 alice@login"
    )
    assert ssh_tunnel_hint(None, "a", "b") is None


def test_job_count_validation():
    assert parse_job_count(" 4 ") == 4
    for bad, words in (("abc", "not a whole number"), ("-1", "negative"), ("", "Type a")):
        try:
            parse_job_count(bad)
        except ValueError as exc:
            assert words in str(exc)
        else:
            raise AssertionError(bad)


def test_history_spill_rate_and_advice():
    h = MemoryHistory(maxlen=10)
    base = make_snapshot(4)
    for i in range(5):
        workers = tuple(replace(w, spilled=i * GiB) for w in base.cluster.workers)
        snap = replace(base, time=T0 + i, cluster=replace(base.cluster, time=T0 + i, workers=workers))
        h.add(snap)
    assert h.recent_spill_rate() == 4 * GiB  # 4 workers x 1 GiB/s
    assert heavy_spill_advice(0, 10 * GiB, h.recent_spill_rate(), "/tmp/x") is not None
    assert "more memory" in heavy_spill_advice(0, 10 * GiB, 100 * 2**20, "/scratch")
    assert heavy_spill_advice(0, 10 * GiB, 0, None) is None
    assert len(h.samples) == 5 and len(h.used) == 5


async def test_rows_diffed_cursor_and_scroll_kept():
    app = fixed_app()
    snap = make_snapshot(300)
    async with app.run_test(size=(120, 40)) as pilot:
        app.apply_snapshot(snap)
        await pilot.pause()
        t = app.main.workers_table
        assert t.total_count == 300
        await pilot.press("2")
        t.focus()
        await pilot.press("pagedown", "pagedown", "down")
        key, scroll = t.cursor_key, t.scroll_offset.y
        assert scroll > 0
        # Same rows again: nothing re-rendered, nothing refreshed.
        assert not t.set_rows(snap.cluster.workers)
        # One visible row changed: one line refreshed.
        workers = list(snap.cluster.workers)
        visible = t.keys[int(scroll) + 2]
        i = next(i for i, w in enumerate(workers) if w.address == visible)
        workers[i] = replace(workers[i], cpu=99.5)
        changed = replace(snap, cluster=replace(snap.cluster, workers=tuple(workers)))
        app.apply_snapshot(changed)
        assert t.lines_refreshed == 1
        await pilot.pause()
        assert t.cursor_key == key and t.scroll_offset.y == scroll
        # A new worker sorted before the cursor: the cursor stays on its row.
        extra = make_worker(999, job=-1)  # name ndtui--1 sorts first
        app.apply_snapshot(replace(changed, cluster=replace(changed.cluster, workers=tuple(workers) + (extra,))))
        await pilot.pause()
        assert t.cursor_key == key and t.total_count == 301
        # A worker that is gone disappears; the others keep their place.
        app.apply_snapshot(changed)
        await pilot.pause()
        assert t.total_count == 300 and t.cursor_key == key


async def test_state_classes_and_panels():
    app = fixed_app()
    async with app.run_test(size=(200, 60)) as pilot:
        app.apply_snapshot(showcase_snapshot())
        await pilot.pause()
        t = app.main.workers_table
        rows = {t.get_row(k).name: t.get_row(k) for k in t.keys}
        assert t._state_class(rows["ndtui-1"]) == "workers--paused"
        assert t._state_class(rows["ndtui-2"]) == "workers--retiring"
        assert t._state_class(rows["ndtui-3"]) == "workers--over-spill"  # 6.2 of 8 GiB > 0.7
        assert t._state_class(rows["ndtui-0"]) is None
        over = replace(rows["ndtui-0"], memory=int(7 * GiB))
        assert t._state_class(over) == "workers--over-spill"
        jobs = app.main.jobs_table
        assert jobs.total_count == 8
        pending = jobs.get_row("ndtui-6")
        assert "hc:mem_req" in jobs.row_text("ndtui-6")[-1] and pending.age == 42
        spill = app.main.spill_panel.query_one("#spill-table")
        assert spill.keys[0] == rows["ndtui-1"].address  # most spilled first
        status = app.main.status._markup.replace("\u00a0", " ")
        assert "ssh -L 8787:localhost:8787 alice@login.example" in status
        assert "jobs 8 req · 6 run · 1 pend" in status


async def test_fake_monitor_poll_loop_no_overlap():
    snaps = [make_snapshot(5, t=T0 + i) for i in range(5)]
    monitor = FakeMonitor(*snaps)
    app = make_app(type("S", (), {"refresh_interval": 0.05})(), monitor=monitor)
    async with app.run_test(size=(80, 24)) as pilot:
        for _ in range(100):
            if app.polls >= 4:
                break
            await pilot.pause(0.05)
        assert app.polls >= 4
        assert sum(1 for w in app.workers if w.group == "poll" and w.is_running) <= 1
        assert app.main.workers_table.total_count == 5


async def test_adapt_dialog_validates():
    app = fixed_app()
    async with app.run_test(size=(80, 24)) as pilot:
        results = []
        app.push_screen(AdaptDialog(1, 4), results.append)
        await pilot.pause()
        dialog = app.screen
        dialog.query_one("#min").value = "5"
        dialog.query_one("#max").value = "2"
        await pilot.click("#ok")
        assert app.screen is dialog and "at least the minimum" in str(dialog.query_one("#error").render())
        dialog.query_one("#max").value = "8"
        dialog.query_one("#max").focus()
        await pilot.press("enter")
        await pilot.pause()
        assert results == [(5, 8)]


async def test_log_tail_follows_the_file(tmp_path):
    log = tmp_path / "ndtui.o123"
    log.write_text("first line\n")
    app = fixed_app()
    async with app.run_test(size=(100, 30)) as pilot:
        app.push_screen(LogTailScreen("job 123", str(log), interval=0.05))
        await pilot.pause(0.3)
        widget = app.screen.query_one("Log")
        assert any("first line" in line for line in widget.lines)
        with log.open("a") as f:
            f.write("second line\n")
        for _ in range(40):
            await pilot.pause(0.05)
            if any("second line" in line for line in widget.lines):
                break
        assert any("second line" in line for line in widget.lines)
        await pilot.press("escape")
        assert not isinstance(app.screen, LogTailScreen)


async def test_job_log_key_opens_the_selected_jobs_output(tmp_path):
    app = fixed_app()
    async with app.run_test(size=(120, 40)) as pilot:
        app.apply_snapshot(make_snapshot(3))
        await pilot.press("5", "down", "l")
        await pilot.pause()
        assert isinstance(app.screen, LogTailScreen)
        assert app.screen.path == "/tmp/ndtui-1.o1001"


async def test_help_and_command_palette():
    app = fixed_app()
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        text = str(app.screen.query_one("#help-text").render())
        for words in ("Job +1", "Scale to", "Adaptive", "Retire job", "Filter", "Job log"):
            assert words in text
        await pilot.press("escape")
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert any("one job more" in t for t in titles)
        assert any("Adaptive" in t for t in titles)
        assert all(b.description for b in app.main.BINDINGS)


async def test_bindings_without_controller_say_so():
    app = fixed_app()
    async with app.run_test(size=(80, 24)) as pilot:
        app.apply_snapshot(make_snapshot(2))
        await pilot.press("plus")
        await pilot.pause()
        assert any("No cluster controller" in n.message for n in app._notifications)


async def test_refresh_of_1000_workers_is_cheap():
    rng = random.Random(0)
    app = fixed_app()
    snap = make_snapshot(1000)
    async with app.run_test(size=(200, 60)) as pilot:
        app.apply_snapshot(snap)
        await pilot.pause()
        t = app.main.workers_table
        snap = vary(snap, 0.1, rng, T0 + 1)
        t.rows_rendered = 0
        app.apply_snapshot(snap)
        await pilot.pause()
        # Only the visible rows can be rendered again, never all 1,000.
        assert t.rows_rendered <= t.size.height


async def test_sort_arrow_on_narrow_columns_and_filter_says_which_field():
    """Sorting by Thr or Exec draws the arrow; the filter ``1`` matches worker/job 1 first,
    not every worker through its host 127.0.0.1, and the subtitle says which field matched."""
    app = fixed_app()
    workers = tuple(
        make_worker(i, host="127.0.0.1", address=f"tcp://127.0.0.1:4{i:04d}", job_id=None,
                    name=f"local-{i}")
        for i in range(4)
    )
    async with app.run_test(size=(120, 40)) as pilot:
        app.apply_snapshot(make_snapshot(workers=workers, backend="local"))
        await pilot.press("2")
        t = app.main.workers_table
        for key, label in (("threads", "Th▲"), ("executing", "Exe▲")):
            t.sort_by(key, reverse=False)
            await pilot.pause()
            header = "".join(seg.text for seg in t._build_header())
            assert label in header, header
        t.sort_by("name")
        await pilot.press("slash", "1")
        await pilot.pause()
        assert [t.get_row(k).name for k in t.keys] == ["local-1"]
        assert "1 of 4 match /1 (name, job)" in app.main.workers_panel.border_subtitle
        await pilot.press("backspace", *"127.0")
        await pilot.pause()
        assert t.row_count == 4 and "(host, address)" in app.main.workers_panel.border_subtitle


async def test_progress_overall_row_says_how_the_run_ended():
    from textual.app import App

    from naist_dask_tui.core.progress import GroupProgress, ProgressSnapshot
    from naist_dask_tui.widgets.progress_view import ProgressView

    groups = (
        GroupProgress("finalize-hlgfinalizecompute", 1, 0, 0, 0, 0, 1, 0, 0),
        GroupProgress("ones_like", 10, 4, 0, 0, 0, 0, 0, 6),
    )
    snap = ProgressSnapshot(groups=groups, done=4, total=11, erred=0, processing=0, queued=0,
                            waiting=1, elapsed=2.0, rate=2.0, finished=True)

    class One(App):
        def compose(self):
            yield ProgressView(id="p")

    app = One()
    async with app.run_test(size=(80, 10)) as pilot:
        view = app.query_one(ProgressView)
        view.snapshot = snap
        view.outcome = "cancelled"
        await pilot.pause()
        text = _render_text(view)
        assert "overall (cancelled)" in text and "overall (done)" not in text
        assert "finalize (gather)" in text and "hlgfinalize" not in text
        view.outcome = ""
        view.snapshot = replace(snap, erred=1)
        await pilot.pause()
        assert "overall (failed)" in _render_text(view)


def _render_text(widget) -> str:
    from rich.console import Console

    console = Console(width=widget.size.width or 80, record=True, file=open("/dev/null", "w"))
    console.print(widget.render())
    return console.export_text()
