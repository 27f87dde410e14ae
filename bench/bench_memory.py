"""Memory: the console's RSS while 1,000 workers' snapshots are refreshed for 10+ minutes.

The real app runs headless (200x60, every overview panel on screen) with its real poll loop
(thread worker -> SnapshotFetched -> widgets), fed by a fake monitor that returns a new
1,000-worker snapshot each poll (17% of the workers changed, clock +1 s, as 6 s heartbeats
would). The poll interval is set to 0 after start, so 600 "seconds" of refreshes (10 minutes at
the default 1 s) run as fast as the app can take them, then as many again; the histories are
sized for 10 minutes at 1 s (600 samples), so after the first 600 refreshes every bounded
structure is full and the RSS must stay flat. RSS is sampled (after gc) every 50 refreshes.
"""

from __future__ import annotations

import asyncio
import gc
import sys
import time

from bench.common import AppSettings, Report, SnapshotFeed, fmt, log, part_main, rss_bytes

PART = "memory"
N_WORKERS = 1000
MiB = 2**20


async def measure(n_workers: int, total: int, step: int) -> tuple[list[tuple[int, float, float]], dict]:
    from naist_dask_tui.app import make_app

    feed = SnapshotFeed(n_workers, seed=1)
    app = make_app(AppSettings(1.0), monitor=feed, user="u", login_host="h")
    samples: list[tuple[int, float, float]] = []  # (refreshes, rss MiB, wall s)
    info: dict = {}
    async with app.run_test(size=(200, 60)) as pilot:
        await pilot.press("2")  # the four side-by-side panels, as before the Overview came first
        await pilot.pause(0.5)
        app.refresh_interval = 0.001  # poll again almost at once (history stays sized for 1 s)
        t0 = time.perf_counter()
        target = 0
        while target < total:
            target = min(total, target + step)
            while app.polls < target:
                await pilot.pause(0.02)
            gc.collect()
            samples.append((app.polls, rss_bytes() / MiB, time.perf_counter() - t0))
            log(PART, f"{app.polls} refreshes: RSS {samples[-1][1]:.1f} MiB")
        app.refresh_interval = 1.0
        info["history_samples"] = len(app.history.samples)
        info["history_maxlen"] = app.history.samples.maxlen
        info["seen_notices"] = len(app._seen_notices)
        info["applied"] = app.polls
        info["seconds"] = time.perf_counter() - t0
    return samples, info


def run(args, report: Report) -> None:
    quick = args.quick
    n = N_WORKERS
    total = 240 if quick else 1200
    step = 40 if quick else 50
    rss0 = rss_bytes() / MiB
    samples, info = asyncio.run(measure(n, total, step))

    def at(k: int) -> float:
        return min(samples, key=lambda s: abs(s[0] - k))[1]

    full = total // 2  # bounded histories full (600 at 1 s in the full run)
    first = samples[0]
    report.add("RSS of this process before importing the app", rss0, "MiB")
    report.add(f"RSS after {first[0]} refreshes", first[1], "MiB", f"{n} workers")
    maxlen = info["history_maxlen"]
    report.add(f"RSS after {full} refreshes", at(full), "MiB", f"history {min(full, maxlen)} of {maxlen} samples")
    report.add(f"RSS after {samples[-1][0]} refreshes", samples[-1][1], "MiB",
               f"history {info['history_samples']} of {info['history_maxlen']} samples")
    growth_fill = at(full) - first[1]
    growth_after = samples[-1][1] - at(full)
    # slope over the second half, by least squares, MiB per 100 refreshes
    second = [s for s in samples if s[0] >= full]
    if len(second) >= 2:
        xs, ys = [s[0] for s in second], [s[1] for s in second]
        mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
        covariance = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
        slope = covariance / max(1e-9, sum((x - mx) ** 2 for x in xs)) * 100
    else:
        slope = float("nan")
    report.add(f"growth while histories fill ({first[0]}->{full})", growth_fill, "MiB")
    label = "growth after they are full" if full >= 600 else "growth in the second half (quick: not full)"
    report.add(f"{label} ({full}->{samples[-1][0]})", growth_after, "MiB",
               f"trend {fmt(slope)} MiB per 100 refreshes")
    report.add("refresh rate reached", info["applied"] / info["seconds"], "/s",
               f"{info['applied']} refreshes in {info['seconds']:.0f} s (poll loop, interval 1 ms)")
    report.add("RSS samples", " ".join(f"{s[1]:.0f}" for s in samples), "MiB", f"every {step} refreshes")
    # Goal: no growth once the bounded histories are full. Allow allocator noise of 2 MiB.
    ok = growth_after <= 2.0
    report.goal(
        "no RSS growth beyond the bounded histories (after 10 min of 1 s refreshes)",
        ok if full >= 600 else None,
        f"+{fmt(growth_after)} MiB from refresh {full} to {samples[-1][0]} at {n} workers"
        + ("" if full >= 600 else " (quick: histories not full yet)"),
    )


if __name__ == "__main__":
    sys.exit(part_main(PART, run, __doc__))
