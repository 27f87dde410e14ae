"""``naist-dask-tui --headless``: the keeper in the foreground, without the screen.

The cluster runs in this process and prints one status line per refresh to stdout. It is a
keeper like any other (listed by ``ls``; screens, ``env`` and ``connect()`` can use it) except
that it lives and dies with this process: SIGTERM, SIGHUP or Ctrl+C close the cluster and delete
every job, pending ones included. Useful in batch scripts, under ``nohup``, and in tests of the
life cycle.
"""

from __future__ import annotations

import signal
import sys
import time

from dask.utils import format_bytes

from naist_dask_tui.core import registry
from naist_dask_tui.core.keeper import Keeper
from naist_dask_tui.core.snapshot import ConsoleSnapshot

STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)


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


def _say(text: str, out) -> None:
    try:
        print(text, file=out, flush=True)
    except (OSError, ValueError):  # stdout gone (a closed pipe, a dropped terminal)
        pass


def run_headless(settings, *, name: str | None = None, out=None) -> int:
    from naist_dask_tui.core.launch import base_name

    out = out or sys.stdout
    directory = registry.claim(name, base_name(settings))
    keeper = Keeper(settings, directory)

    def on_signal(signum, frame):
        keeper.request_stop(f"received {signal.Signals(signum).name}")

    previous = {sig: signal.signal(sig, on_signal) for sig in STOP_SIGNALS}
    code = 0
    try:
        try:
            keeper.start()
        except Exception as exc:
            _say(f"naist-dask-tui: could not start the cluster: {exc}", sys.stderr)
            registry.release(directory)
            return 1
        c = keeper.controller
        for note in c.notices:
            _say(f"note: {note}", out)
        _say(f"started {c.backend} cluster at {c.scheduler_address} (named {keeper.name}: "
             "`naist-dask-tui attach` shows it, `naist-dask-tui env` uses it)", out)
        seen = c.notices.last_seq
        while not keeper.wait(settings.refresh_interval):
            snap = keeper.last_snapshot
            if snap is not None:
                _say(status_line(snap), out)
            for seq, _, text in c.notices.entries(seen):
                _say(f"note: {text}", out)
                seen = seq
        _say(f"stopping: {keeper.stop_reason}", out)
    finally:
        # A second signal while closing must not cut the cleanup short.
        for sig in STOP_SIGNALS:
            signal.signal(sig, signal.SIG_IGN)
        keeper.close()
        for sig, old in previous.items():
            signal.signal(sig, old)
    _say("closed: every job of this console deleted", out)
    return code
