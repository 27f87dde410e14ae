"""Responsiveness: key press to its visible effect with 1,000 workers refreshed every second.

The real app runs headless (200x60, every overview panel on screen) with its real poll loop at
the default 1 s interval, fed by a fake monitor that returns a new 1,000-worker snapshot each
poll (17% of the rows changed, as 6 s heartbeats would). Keys go to the workers table the way
a terminal sends them (a Key event through the driver): cursor moves (down/up/page down/page
up) and sorts (o = next column, O = reverse). Keys are spaced 30-200 ms apart at random, so
some land while a refresh is being applied, as they would for a user.

Latency of one key = from sending the key event to the first frame the compositor renders
(``App._display``) in which the table's cursor/sort/scroll already shows the key's effect.
"""

from __future__ import annotations

import asyncio
import random
import sys
import time

from bench.common import AppSettings, Report, SnapshotFeed, fmt, log, median, part_main, percentile

PART = "keys"
GOAL_P95_MS = 100.0
PATTERN = ["down", "down", "down", "up", "pagedown", "o", "down", "pageup", "O", "up"]
SORT_KEYS = {"o", "O"}


async def measure(n_workers: int, presses: int, seed: int = 3) -> dict:
    from textual import events

    from naist_dask_tui.app import make_app
    from naist_dask_tui.widgets.workers_table import WorkersTable

    rng = random.Random(seed)
    feed = SnapshotFeed(n_workers, seed=seed)
    app = make_app(AppSettings(1.0), monitor=feed, user="u", login_host="h")
    lat: dict[str, list[float]] = {}
    timeouts = 0
    async with app.run_test(size=(200, 60)) as pilot:
        while app.polls < 2:
            await pilot.pause(0.05)
        await pilot.press("2")  # the Workers panel and its neighbours (the Overview is first)
        await pilot.pause(0.5)
        table = app.query_one(WorkersTable)
        table.focus()
        await pilot.pause(0.1)

        def state():
            return (table.cursor, table.sort_column, table.sort_reverse, table.scroll_offset.y, table.cursor_key)

        probe = {"before": None, "t": None}
        original = app._display

        def display(screen, renderable):
            result = original(screen, renderable)
            if probe["t"] is None and probe["before"] is not None and state() != probe["before"]:
                probe["t"] = time.perf_counter()
            return result

        app._display = display  # type: ignore[method-assign]
        polls0 = app.polls
        t_start = time.perf_counter()
        for i in range(presses):
            key = PATTERN[i % len(PATTERN)]
            if key == "pageup" and table.cursor == 0:
                key = "pagedown"
            await asyncio.sleep(rng.uniform(0.03, 0.2))
            probe["before"], probe["t"] = state(), None
            char = key if len(key) == 1 else None
            ev = events.Key(key, char)
            ev.set_sender(app)
            t0 = time.perf_counter()
            app._driver.send_message(ev)
            while probe["t"] is None and time.perf_counter() - t0 < 2.0:
                await asyncio.sleep(0.0005)
            if probe["t"] is None:
                timeouts += 1
                continue
            kind = "sort" if key in SORT_KEYS else "cursor"
            lat.setdefault(kind, []).append((probe["t"] - t0) * 1000)
        refreshes = app.polls - polls0
        wall = time.perf_counter() - t_start
        app._display = original  # type: ignore[method-assign]
    return {"lat": lat, "timeouts": timeouts, "refreshes": refreshes, "wall": wall}


def run(args, report: Report) -> None:
    n = 1000
    presses = 40 if args.quick else 100
    res = asyncio.run(measure(n, presses))
    all_ms = [x for v in res["lat"].values() for x in v]
    report.add(f"key -> frame, all keys ({len(all_ms)})", median(all_ms), "ms p50",
               f"p95 {fmt(percentile(all_ms, 95))} ms, max {fmt(max(all_ms) if all_ms else float('nan'))} ms")
    for kind, label in (("cursor", "cursor moves (down/up/page)"), ("sort", "sorts (o / O)")):
        xs = res["lat"].get(kind, [])
        report.add(f"  {label} ({len(xs)})", median(xs), "ms p50", f"p95 {fmt(percentile(xs, 95))} ms")
    report.add("refreshes applied meanwhile", res["refreshes"], "",
               f"{n} workers, 1 s interval, over {res['wall']:.0f} s")
    if res["timeouts"]:
        report.note(f"{res['timeouts']} key(s) showed no visible change within 2 s")
    p95 = percentile(all_ms, 95)
    report.goal(f"key to visible effect p95 < {GOAL_P95_MS:g} ms at {n} workers, 1 s refreshes",
                p95 < GOAL_P95_MS if all_ms else None,
                f"p95 {fmt(p95)} ms, p50 {fmt(median(all_ms))} ms over {len(all_ms)} presses")
    log(PART, "done")


if __name__ == "__main__":
    sys.exit(part_main(PART, run, __doc__))
