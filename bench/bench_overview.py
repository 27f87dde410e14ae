"""The Overview's redraw cost at 1 Hz, and what the plotting libraries would cost instead.

The real app, headless, the Overview panel shown, its history filled with 10 minutes of one
sample a second (the graphs full), then one refresh a "second" with 1,000 workers:

* **Overview redraw**: the CPU to rebuild its four graphs for one new sample (``show`` from
  the history, then every line of the four graphs rendered), thread CPU, median of repeats;
  goal < 10 ms per refresh;
* **refresh with the Overview shown**: apply one snapshot of 1,000 workers (the whole screen's
  work, hidden panels' bookkeeping included) and paint the frame, as ``bench_refresh`` does;
* at 80x24 and 200x60.

``--compare`` also draws the same four graphs (300 samples each) with textual-plotext (plotext)
and textual-plot when they are installed (they are not dependencies: ``pip install
textual-plotext textual-plot`` in a scratch venv with this checkout on ``PYTHONPATH``), and
reports their redraw cost beside ours: the measured reason the Overview draws its own.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import time

from bench.common import Report, fmt, log, part_main

PART = "overview"
GOAL_MS = 10.0
SIZES = ((80, 24), (200, 60))
N_WORKERS = 1000
FRAME = 1 / 30


class _Settings:
    refresh_interval = 1.0


def _series(n_workers: int, seconds: int):
    from tests.ui.fake_data import T0, overview_series

    return overview_series(n_workers=n_workers, seconds=seconds, t_end=T0)


async def _measure(size: tuple[int, int], repeats: int) -> dict:
    from dataclasses import replace

    from naist_dask_tui.app import make_app
    from naist_dask_tui.widgets.timeplot import TimePlot
    from tests.ui.fake_data import vary

    app = make_app(_Settings(), poll=False, user="u", login_host="h")
    history_snaps = _series(8, 600)  # the graphs' 10 minutes (worker count does not matter there)
    async with app.run_test(size=size) as pilot:
        for s in history_snaps:
            app.history.add(s)
        big = _series(N_WORKERS, 1)[0]
        app.apply_snapshot(replace(big, time=history_snaps[-1].time + 1,
                                   cluster=replace(big.cluster, time=history_snaps[-1].time + 1)))
        await pilot.pause(0.3)
        main = app.main
        assert main.active_panel == "overview"
        plots = list(main.query(TimePlot))
        plot_sizes = [tuple(p.size) for p in plots]
        rng = random.Random(1)
        snap = app.snapshot
        overview: list[float] = []
        refresh: list[float] = []
        idle: list[float] = []
        for _ in range(10):
            t0 = time.process_time()
            await pilot.pause(FRAME)
            idle.append(time.process_time() - t0)
        for _i in range(repeats):
            t = snap.time + 1
            snap = vary(snap, 0.17, rng, t)
            # the Overview alone: a new sample, then its four graphs rebuilt and rendered
            app.history.add(snap)
            t0 = time.thread_time()
            main.overview.show(app.history)
            for p in plots:
                for y in range(p.size.height):
                    p.render_line(y)
            overview.append(time.thread_time() - t0)
            # the whole refresh (a fresh sample again: the history takes each time once)
            t += 0.5
            snap = vary(snap, 0.17, rng, t)
            t0 = time.process_time()
            app.apply_snapshot(snap)
            await pilot.pause(FRAME)
            refresh.append(time.process_time() - t0)
    return {
        "overview_ms": 1000 * statistics.median(overview),
        "overview_p90_ms": 1000 * sorted(overview)[int(0.9 * (len(overview) - 1))],
        "refresh_ms": 1000 * statistics.median(refresh),
        "idle_ms": 1000 * statistics.median(idle),
        "plot_sizes": plot_sizes,
    }


async def _compare(size: tuple[int, int], repeats: int) -> dict[str, float]:
    """The same four graphs (300 samples, 3 series each) with the plotting libraries."""
    out: dict[str, float] = {}
    xs = list(range(300))
    ys = [[(i * 37 + k * 11) % 100 for i in xs] for k in range(3)]
    from textual.app import App
    from textual.containers import Grid

    def grid_css() -> str:
        return "Grid { grid-size: 2 2; } Grid > * { height: 1fr; }"

    async def run(name: str, make, draw) -> None:
        class A(App):
            CSS = grid_css()

            def compose(self):
                with Grid():
                    for _ in range(4):
                        yield make()

        app = A()
        async with app.run_test(size=size) as pilot:
            widgets = list(app.query(Grid).first().children)
            await pilot.pause(0.3)
            times = []
            for r in range(repeats):
                t0 = time.process_time()
                for w in widgets:
                    draw(w, r)
                await pilot.pause(FRAME)
                times.append(time.process_time() - t0)
            idle = []
            for _ in range(10):
                t0 = time.process_time()
                await pilot.pause(FRAME)
                idle.append(time.process_time() - t0)
        out[name] = 1000 * (statistics.median(times) - statistics.median(idle))

    try:
        from textual_plotext import PlotextPlot

        def draw_plotext(w, r):
            plt = w.plt
            plt.clear_data()
            for k in range(3):
                plt.plot(xs, [(v + r) % 100 for v in ys[k]], marker="braille")
            w.refresh()

        await run("textual-plotext", PlotextPlot, draw_plotext)
    except ImportError:
        pass
    try:
        from textual_plot import PlotWidget

        def draw_plot(w, r):
            w.clear()
            for k in range(3):
                w.plot(xs, [(v + r) % 100 for v in ys[k]])

        await run("textual-plot", PlotWidget, draw_plot)
    except ImportError:
        pass

    from naist_dask_tui.widgets.timeplot import TimePlot

    def draw_ours(w, r):
        w.show([("x", 0)], xs, [[(v + r) % 100 for v in ys[k]] for k in range(3)], 0, 299,
               [100, 100, 100], version=r)

    await run("this console's TimePlot", lambda: TimePlot("lines"), draw_ours)
    return out


def run(args, report: Report) -> None:
    repeats = 15 if args.quick else 40
    worst = 0.0
    for size in SIZES:
        res = asyncio.run(_measure(size, repeats))
        log(PART, f"{size[0]}x{size[1]}: {res}")
        label = f"{size[0]}x{size[1]}"
        report.add(f"{label}: Overview redraw (4 graphs, one new sample)", res["overview_ms"], "ms CPU",
                   f"p90 {fmt(res['overview_p90_ms'])} ms; graphs {res['plot_sizes'][0][0]}x{res['plot_sizes'][0][1]}, "
                   "10 min of 1 s samples")
        report.add(f"{label}: refresh with the Overview shown, {N_WORKERS} workers", res["refresh_ms"], "ms CPU",
                   f"apply + paint; idle frame {fmt(res['idle_ms'])} ms")
        worst = max(worst, res["overview_ms"])
    report.goal(f"Overview redraw < {GOAL_MS:g} ms per refresh at 1 Hz", worst < GOAL_MS,
                f"{fmt(worst)} ms (the larger of 80x24 and 200x60)")
    if args.compare:
        res = asyncio.run(_compare((80, 24), repeats))
        for name, ms in res.items():
            report.add(f"80x24: four graphs of 300 samples redrawn with {name}", ms, "ms CPU",
                       "above an idle frame")


def _extra(parser) -> None:
    parser.add_argument("--compare", action="store_true",
                        help="also time textual-plotext and textual-plot where installed")


if __name__ == "__main__":
    import sys

    sys.exit(part_main(PART, run, __doc__, _extra))
