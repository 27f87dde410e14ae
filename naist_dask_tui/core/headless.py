"""``naist-dask-tui --headless``: the cluster without the screen.

Starts the cluster from the settings, prints one status line per refresh to stdout, and on
SIGTERM, SIGHUP or Ctrl+C closes it and deletes every job. Useful in scripts, under ``nohup``
and in tests of the life cycle.
"""

from __future__ import annotations

import sys
import time

from dask.utils import format_bytes

from naist_dask_tui.core.cluster import ClusterController
from naist_dask_tui.core.monitor import Monitor
from naist_dask_tui.core.shutdown import close_on_exit
from naist_dask_tui.core.snapshot import ConsoleSnapshot


def status_line(snap: ConsoleSnapshot) -> str:
    c = snap.cluster
    states: dict[str, int] = {}
    for j in snap.jobs:
        states[j.state.value] = states.get(j.state.value, 0) + 1
    jobs = " ".join(f"{k}={v}" for k, v in sorted(states.items())) or "none"
    if c is None:
        return f"{time.strftime('%H:%M:%S')} LOST {snap.error}"
    return (
        f"{time.strftime('%H:%M:%S')} {snap.backend} {snap.scheduler_address} "
        f"requested={snap.requested_jobs} jobs[{jobs}] workers={c.n_workers} "
        f"threads={c.nthreads} memory={format_bytes(c.memory)}/{format_bytes(c.memory_limit)} "
        f"spilled={format_bytes(c.spilled)} tasks={c.tasks.total}"
    )


def run_headless(settings, *, out=sys.stdout, max_seconds: float | None = None) -> int:
    controller = ClusterController(settings)
    with close_on_exit(controller.close) as stopped:
        controller.start()
        for note in controller.notices:
            print(f"note: {note}", file=out, flush=True)
        monitor = Monitor(controller)
        print(f"started {controller.backend} cluster at {controller.scheduler_address}", file=out, flush=True)
        t0 = time.time()
        seen = len(controller.notices)
        while not stopped.is_set():
            snap = monitor.poll()
            print(status_line(snap), file=out, flush=True)
            notes = list(controller.notices)
            for note in notes[seen:] if len(notes) >= seen else notes:
                print(f"note: {note}", file=out, flush=True)
            seen = len(notes)
            if max_seconds is not None and time.time() - t0 > max_seconds:
                break
            stopped.wait(settings.refresh_interval)
    print("closed: every job of this console deleted", file=out, flush=True)
    return 0
