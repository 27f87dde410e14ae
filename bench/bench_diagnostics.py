"""What the diagnostics plugin (failures, task durations, worker events) costs the scheduler.

The plugin's ``transition`` hook runs on every task transition: it returns at once unless a
task leaves ``processing`` (to keep its duration, or its failure). Measured end to end: N tiny
tasks (``client.map(inc, range(N))`` then ``gather``) on a LocalCluster whose scheduler runs in
this process (2 worker processes), with and without the plugin, in alternated rounds; CPU is
this process's (scheduler + client), wall is the whole computation. Then the handler's answer
time with 200 failure groups and 1,000 worker events recorded. Run it alone:

    python -m bench.bench_diagnostics [N] [rounds]
"""

from __future__ import annotations

import logging
import statistics
import sys
import time


def inc(x):
    return x + 1


def fail(x):
    raise ValueError(f"kind {x % 200}")


def one_round(n: int, with_plugin: bool) -> tuple[float, float]:
    from distributed import Client, LocalCluster

    from naist_dask_tui.core import diagnostics

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                      silence_logs=logging.ERROR) as cluster, Client(cluster) as client:
        if with_plugin:
            assert diagnostics.install(client)
        client.gather(client.map(inc, range(100)))  # warm up
        cpu, wall = time.process_time(), time.perf_counter()
        client.gather(client.map(inc, range(n)))
        return time.process_time() - cpu, time.perf_counter() - wall


def handler_latency() -> float:
    from distributed import Client, LocalCluster, wait

    from naist_dask_tui.core import diagnostics

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                      silence_logs=logging.ERROR) as cluster, Client(cluster) as client:
        diagnostics.install(client)
        d = diagnostics.Diagnostics(client)
        wait(client.map(fail, range(2000)))

        def events(dask_scheduler):
            plugin = dask_scheduler.plugins["naist-dask-tui-diagnostics-1"]
            for i in range(1000):
                plugin.events.append((time.time(), "left", f"tcp://10.0.0.{i % 250}:1", f"w{i}", "node", "lost"))

        client.run_on_scheduler(events)
        times = []
        for _ in range(20):
            t0 = time.perf_counter()
            assert len(d.failures()) == 100  # the 100 most frequent of 200 groups
            d.worker_events()
            times.append(time.perf_counter() - t0)
        return statistics.median(times)


def main(argv: list[str]) -> int:
    n = int(argv[0]) if argv else 20000
    rounds = int(argv[1]) if len(argv) > 1 else 3
    results: dict[bool, list[tuple[float, float]]] = {False: [], True: []}
    for _ in range(rounds):
        for with_plugin in (False, True):  # side by side, alternated
            results[with_plugin].append(one_round(n, with_plugin))
    print(f"{n} tasks, {rounds} alternated rounds (median)")
    med = {}
    for with_plugin, runs in results.items():
        cpu = statistics.median(r[0] for r in runs)
        wall = statistics.median(r[1] for r in runs)
        med[with_plugin] = (cpu, wall)
        label = "with the plugin" if with_plugin else "without"
        print(f"  {label:16} CPU {cpu:6.2f} s   wall {wall:6.2f} s   ({1e6 * cpu / n:.0f} us CPU a task)")
    print(f"  ratio with/without: CPU {med[True][0] / med[False][0]:.3f}, wall {med[True][1] / med[False][1]:.3f}")
    print(f"  failures + events answer (200 groups, 1,000 events): {1000 * handler_latency():.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
