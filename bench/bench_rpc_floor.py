"""The floor under any console poll: scheduler CPU for one empty RPC.

A scheduler in its own process with no workers; this process calls, 500 times each,
a handler that returns None and the console's probe (nothing to report), back to back and
spaced 10 ms apart. A real console polls once a second, so each of its calls wakes an idle
event loop: the spaced figure is the one that sits under every probe call measured by
``bench_probe``. Prints ms of scheduler CPU per call (its process CPU minus its idle rate).

    python -m bench.bench_rpc_floor
"""

from __future__ import annotations

import subprocess
import sys
import time

import psutil

CALLS = 500


def _add_noop(dask_scheduler) -> None:
    def noop():
        return None

    dask_scheduler.handlers["bench_noop"] = noop


def main() -> None:
    from distributed import Client
    from distributed.utils import open_port

    from naist_dask_tui.core.probe import SchedulerProbe

    port = open_port("127.0.0.1")
    sched = subprocess.Popen(
        [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
         "--port", str(port), "--no-dashboard"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    proc = psutil.Process(sched.pid)

    def cpu() -> float:
        t = proc.cpu_times()
        return t.user + t.system

    try:
        client = Client(f"tcp://127.0.0.1:{port}", timeout=30)
        client.run_on_scheduler(_add_noop)
        probe = SchedulerProbe(client)
        probe.snapshot()
        calls = {
            "empty RPC": lambda: client.sync(client.scheduler.bench_noop),
            "probe, no workers": probe.snapshot,
        }
        for name, call in calls.items():
            for spacing in (0.0, 0.010):
                c0, t0 = cpu(), time.perf_counter()
                for _ in range(CALLS):
                    call()
                    if spacing:
                        time.sleep(spacing)
                wall = time.perf_counter() - t0
                c1 = cpu()
                i0, w0 = cpu(), time.perf_counter()
                time.sleep(2.0)
                idle = (cpu() - i0) / (time.perf_counter() - w0)
                per_call = max(0.0, c1 - c0 - idle * wall) / CALLS
                how = "back to back" if not spacing else f"spaced {spacing * 1000:.0f} ms"
                print(f"{name:<18} {how:<14} {per_call * 1000:6.3f} ms scheduler CPU per call "
                      f"(idle {idle * 100:.1f}% of a core)", flush=True)
        client.close()
    finally:
        sched.kill()
        sched.wait()


if __name__ == "__main__":
    main()
