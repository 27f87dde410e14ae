"""The keeper and its runner: what they cost on the login node, and what a run through them costs.

* Start-up: ``launch_keeper`` (the keeper daemon, local backend, 2 one-thread workers) to
  "running" (when a screen can connect), and to its compute runner answering.
* Memory on the login node: the keeper's RSS without workers' memory (its own process), the
  runner's RSS when idle and after the lab computation ran in it.
* The lab computation, ``(da.arcsin(x) + da.arccos(y)).sum(axis=(1, 2))`` at the seed's chunking
  with a smaller shape, run from the compute pane through the keeper's runner against the same
  code as a plain script's ``compute()`` on a client of the same cluster, alternated pairs; the
  median of the per-pair ratios is printed (1.0: the runner costs nothing).

The cluster is local, so both sides pay the same TLS, and the plain script turns on the same
root fusion the runner uses by default (``connect()`` does too); the difference is the runner's
path (the progress plugin, the session's bookkeeping, status polls from the pane at 4 Hz).
What root fusion itself buys is measured in ``bench_tls``.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time

from bench.common import Report, fmt, log, median, part_main, rss_bytes

PART = "keeper"
GOAL_RATIO = 1.05


def _lab(side: int) -> str:
    return (
        f"x = da.random.random(({side}, {side}, 10), chunks=(1000, 1000, 5))\n"
        f"y = da.random.random(({side}, {side}, 10), chunks=(1000, 1000, 5))\n"
        "(da.arcsin(x) + da.arccos(y)).sum(axis=(1, 2))\n"
    )


def run(args, report: Report) -> None:
    xdg = tempfile.mkdtemp(prefix="bench-keeper-")
    for var in ("XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME", "XDG_DATA_HOME"):
        os.makedirs(f"{xdg}/{var.lower()}", exist_ok=True)
        os.environ[var] = f"{xdg}/{var.lower()}"
    from naist_dask_tui.core import registry
    from naist_dask_tui.core.launch import launch_keeper
    from naist_dask_tui.core.remote import RemoteController, connect
    from naist_dask_tui.core.remote_compute import RemoteComputeSession
    from naist_dask_tui.core.settings import load_settings

    settings = load_settings(
        dict(backend="local", jobs=2, cores=1, memory="2GB", idle_timeout="off"), env={}, dask_config={}
    )
    t0 = time.perf_counter()
    launch = launch_keeper(settings, name="bench")
    record = launch.wait()
    t_running = time.perf_counter() - t0
    controller = RemoteController.attached(record)
    session = RemoteComputeSession(controller)
    try:
        deadline = time.time() + 120
        while session.status()["alive"] is False and time.time() < deadline:
            time.sleep(0.1)
        t_runner = time.perf_counter() - t0
        client = connect("bench", set_as_default=False)
        client.wait_for_workers(2, timeout=120)
        report.add("keeper start to 'running' (local, launch -> a screen can connect)", t_running, "s")
        report.add("  and to its compute runner answering", t_runner, "s",
                   "the runner starts in the background: screens do not wait for it")
        report.add("keeper RSS (its own process, workers excluded)", rss_bytes(record.pid) / 2**20, "MiB")
        runner = _runner_pid(controller)
        if runner:
            report.add("runner RSS, idle", rss_bytes(runner) / 2**20, "MiB")

        side = args.side or (2000 if args.quick else 6000)
        pairs = args.pairs or (2 if args.quick else 4)
        code = _lab(side)
        warm = session.run(code)
        if not warm.ok:
            report.note(f"the warm-up run failed: {warm.error[-300:]}")
            return
        import dask.array as da

        from naist_dask_tui.core import rootfuse

        def plain() -> float:
            x = da.random.random((side, side, 10), chunks=(1000, 1000, 5))
            y = da.random.random((side, side, 10), chunks=(1000, 1000, 5))
            a = time.perf_counter()
            with rootfuse.enabled():  # as the runner does by default: like for like
                client.compute((da.arcsin(x) + da.arccos(y)).sum(axis=(1, 2))).result()
            return time.perf_counter() - a

        def pane() -> float:
            a = time.perf_counter()
            r = session.run(code)
            if not r.ok:
                raise RuntimeError(r.error)
            return time.perf_counter() - a

        ratios, plains, panes = [], [], []
        for i in range(pairs):
            order = (pane, plain) if i % 2 else (plain, pane)
            times = {f.__name__: f() for f in order}
            plains.append(times["plain"])
            panes.append(times["pane"])
            ratios.append(times["pane"] / times["plain"])
            log(PART, f"pair {i + 1}: plain {times['plain']:.2f} s, through the keeper {times['pane']:.2f} s")
        if runner:
            report.add("runner RSS after the lab computation", rss_bytes(runner) / 2**20, "MiB",
                       "the result is bounded (256 MiB guard); the arrays stay on the workers")
        shape = f"({side}, {side}, 10) in (1000, 1000, 5) chunks"
        report.add("lab computation, plain compute() on a client", median(plains), "s", f"{shape}; median of {pairs}")
        report.add("the same from the compute pane through the keeper's runner", median(panes), "s",
                   f"median of {pairs}")
        ratio = median(ratios)
        report.add("  ratio pane / plain (median of the pairs)", ratio, "",
                   "pairs: " + ", ".join(fmt(r) for r in ratios))
        report.goal(f"a run through the keeper costs <= {GOAL_RATIO:g}x a plain script",
                    ratio <= GOAL_RATIO, f"{fmt(ratio)} (median of {pairs} alternated pairs)")
        client.close()
    finally:
        controller.close()
        registry.stop(registry.find("bench"))


def _runner_pid(controller) -> int | None:
    """The runner's pid, as the keeper publishes it (after its next loop)."""
    deadline = time.time() + 10
    while time.time() < deadline:
        state = controller._control("state")
        pid = (state.get("compute") or {}).get("pid")
        if pid:
            return int(pid)
        time.sleep(0.3)
    return None


def _extra(parser) -> None:
    parser.add_argument("--side", type=int, help="the lab computation's side (default 6000; quick 2000)")
    parser.add_argument("--pairs", type=int, help="alternated pairs (default 4; quick 2)")


if __name__ == "__main__":
    sys.exit(part_main(PART, run, __doc__, _extra))
