"""Benchmark: CPU to apply one refresh of 100 and 1,000 workers, and CPU per minute at 1 s.

Runs the real app headless at 200x60 (every overview panel on screen), fed with snapshot
records (varying a fraction of the workers each refresh, as heartbeats do), and prints:

* the median CPU milliseconds to apply one snapshot and paint the resulting frame;
* the CPU of the whole process over a run with the poll loop at a 1 s interval, as a
  percentage of one core and as CPU seconds per minute.

Goals (issue 3): < 20 ms per refresh at 1,000 workers, < 5% of one core at a 1 s interval.
Usage: python bench/bench_refresh.py [--seconds 20] [--fraction 0.1]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from naist_dask_tui.app import make_app  # noqa: E402
from tests.ui.fake_data import T0, FakeMonitor, make_snapshot, vary  # noqa: E402

FRAME = 1 / 30  # long enough for Textual to paint the frame the refresh asked for
GOAL_MS = 20.0
GOAL_CORE = 5.0


class Settings:
    def __init__(self, interval: float) -> None:
        self.refresh_interval = interval


async def per_refresh(n: int, fraction: float, repeats: int) -> tuple[float, float, float]:
    """(median ms a refresh with changes, median ms a refresh without changes, idle ms a frame)."""
    rng = random.Random(n)
    app = make_app(Settings(1.0), poll=False, user="u", login_host="h")
    snap = make_snapshot(n)
    async with app.run_test(size=(200, 60)) as pilot:
        app.apply_snapshot(snap)
        await pilot.press("2")  # the four side-by-side panels (the Overview is first since issue 12)
        await pilot.pause(0.2)
        idle = []
        for _ in range(10):  # the cost of waiting one frame with nothing to do
            t0 = time.process_time()
            await pilot.pause(FRAME)
            idle.append(time.process_time() - t0)
        idle_ms = statistics.median(idle) * 1000
        snaps = []
        for i in range(repeats):
            snap = vary(snap, fraction, rng, T0 + 1 + i)
            snaps.append(snap)
        changed = []
        for snap in snaps:
            t0 = time.process_time()
            app.apply_snapshot(snap)
            await pilot.pause(FRAME)
            changed.append(time.process_time() - t0)
        same = []
        for _ in range(repeats):
            t0 = time.process_time()
            app.apply_snapshot(snap)
            await pilot.pause(FRAME)
            same.append(time.process_time() - t0)
    return statistics.median(changed) * 1000, statistics.median(same) * 1000, idle_ms


async def per_minute(n: int, fraction: float, seconds: float) -> float:
    """Percent of one core used by the app with its poll loop at a 1 s interval."""
    rng = random.Random(n + 1)
    snap = make_snapshot(n)
    snaps = [snap]
    for i in range(int(seconds) + 5):
        snap = vary(snap, fraction, rng, T0 + 1 + i)
        snaps.append(snap)
    app = make_app(Settings(1.0), monitor=FakeMonitor(*snaps), user="u", login_host="h")
    async with app.run_test(size=(200, 60)) as pilot:
        await pilot.press("2")
        await pilot.pause(2.0)  # settle: first paint, first polls
        c0, w0 = time.process_time(), time.perf_counter()
        await asyncio.sleep(seconds)
        c1, w1 = time.process_time(), time.perf_counter()
    return 100 * (c1 - c0) / (w1 - w0)


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--fraction", type=float, default=0.1, help="rows changed a refresh")
    parser.add_argument("--repeats", type=int, default=25)
    args = parser.parse_args()
    ok = True
    print(f"headless 200x60, {args.fraction:.0%} of the workers change each refresh")
    for n in (100, 1000):
        changed, same, idle = await per_refresh(n, args.fraction, args.repeats)
        core = await per_minute(n, args.fraction, args.seconds)
        good = changed - idle < GOAL_MS and core < GOAL_CORE
        ok &= good
        print(
            f"{n:>5} workers: refresh {changed:6.2f} ms CPU (unchanged {same:5.2f} ms, idle frame "
            f"{idle:4.2f} ms) | 1 s interval: {core:4.2f}% of a core = {core * 0.6:4.2f} CPU s/min"
            f" | goals <{GOAL_MS:g} ms, <{GOAL_CORE:g}%: {'met' if good else 'NOT met'}"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
