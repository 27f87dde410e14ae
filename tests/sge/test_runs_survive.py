"""Compute-pane runs live in the keeper's runner, on a real SGE: a dropped terminal does not
cancel them, a second screen cancels them, and they hold the cluster past its idle timeout."""

from __future__ import annotations

import re
import time

import numpy as np
import pytest

from naist_dask_tui.core import registry, sge
from naist_dask_tui.core.launch import start_keeper
from naist_dask_tui.core.remote import RemoteController, connect
from naist_dask_tui.core.remote_compute import RemoteComputeSession
from tests.tmux_helper import Tmux, until

from .conftest import wait_for
from .test_tui_tmux import flags

pytestmark = [pytest.mark.sge, pytest.mark.timeout(420)]

SEED, SIDE = 42, 2000
RUN = (
    f"rng = da.random.default_rng({SEED})\n"
    f"x = rng.random(({SIDE}, {SIDE}, 10), chunks=(500, 500, 5))\n"
    "z = (da.arcsin(x) + da.arccos(x) * x).sum(axis=(1, 2))\n"
    "import time\n"
    "time.sleep(15)  # long enough to drop the terminal mid-run\n"
    "r = z.compute()\n"
    "print('SUM', repr(float(r.sum())), 'KEPT', kept)\n"
)


def expected_sum() -> float:
    import dask
    import dask.array as da

    with dask.config.set(scheduler="threads"):
        x = da.random.default_rng(SEED).random((SIDE, SIDE, 10), chunks=(500, 500, 5)).compute()
    return float((np.arcsin(x) + np.arccos(x) * x).sum(axis=(1, 2)).sum())


def test_a_run_survives_a_dropped_terminal_and_shows_on_reattach(tmp_path):
    first, second = Tmux(tmp_path, "first"), Tmux(tmp_path, "second")
    try:
        first.start(*flags(tmp_path)[:3], "2", *flags(tmp_path)[4:], size=(100, 40))
        until(first, lambda: "workers 2" in " ".join(first.screen().split()), 120, "2 workers")
        first.keys("6")
        until(first, lambda: "^r run" in first.screen(), 10, "the compute pane")
        first.literal("kept = 7")
        first.keys("C-r")
        until(first, lambda: "Out [1]" in first.screen(), 60, "the first run")
        first.type("C-n")
        first.lines(RUN)
        first.keys("C-r")
        until(first, lambda: "In [2]" in first.screen(), 20, "the run started")
        time.sleep(3)
        assert "Out [2]" not in first.screen()
        first.kill()  # the SSH connection drops mid-run (SIGHUP to the screen)
        [record] = wait_for(registry.clusters, 30, what="the cluster, still running")
        assert (record.status or {}).get("computing") == 2 or wait_for(
            lambda: (registry.find(record.name).status or {}).get("computing") == 2, 10,
            what="the keeper to say run 2 is going")
        second.start("attach", size=(100, 40))
        until(second, lambda: "connected" in second.screen(), 60, "the second screen")
        second.keys("6")
        until(second, lambda: "Out [2]" in second.screen(), 180, "run 2's result in the reattached pane")
        text = " ".join(second.screen().split())
        m = re.search(r"SUM (\S+) KEPT 7", text)
        assert m, text
        np.testing.assert_allclose(float(m.group(1)), expected_sum(), rtol=1e-9)
        second.literal("kept * 6")
        second.keys("C-r")
        until(second, lambda: "42" in second.screen() and "Out [3]" in second.screen(), 60,
              "a name defined before the detach, still defined")
    finally:
        first.kill()
        second.kill()
        for record in registry.clusters():
            registry.stop(record)


def test_a_run_is_cancelled_from_a_second_screen_and_leaves_no_task(sge_settings):
    record = start_keeper(sge_settings(jobs=2, refresh_interval=0.5))
    a = RemoteController.attached(record)
    b = RemoteController.attached(record)
    try:
        sa, sb = RemoteComputeSession(a), RemoteComputeSession(b)
        number = int(a._control("compute_run", code=(
            "import time\n"
            "def slow(block):\n"
            "    time.sleep(1)\n"
            "    return block\n"
            "da.ones((400,), chunks=1).map_blocks(slow).sum().compute()\n"
        )))
        wait_for(lambda: ((sb.status()["running"] or {}).get("progress") or None) is not None
                 and sb.progress().done > 0, 120, what="the run under way, seen by the second screen")
        assert sb.cancel()
        result = sa.follow(number)
        assert result.cancelled, result
        with connect(record.name, set_as_default=False) as client:
            left = client.run_on_scheduler(lambda dask_scheduler: sorted(
                str(ts.key) for ts in dask_scheduler.tasks.values()
                if ts.state in ("processing", "queued", "waiting", "no-worker")))
            assert not left, left
    finally:
        a.close()
        b.close()
        registry.stop(record)


def test_a_running_computation_holds_the_cluster_past_its_idle_timeout(sge_settings):
    record = start_keeper(sge_settings(jobs=1, refresh_interval=0.5, idle_timeout="30s"))
    c = RemoteController.attached(record)
    RemoteComputeSession(c)
    c._control("compute_run", code="import time\ntime.sleep(60)\n'done'")
    c.detach()
    c.close()
    t0 = time.time()
    time.sleep(45)
    assert record.alive(), "a running computation must hold the cluster past the idle timeout"
    assert [j for j in sge.qstat() if j.name == record.job_name]
    wait_for(lambda: not record.alive(), 60 + 30 + 15 - (time.time() - t0), what="the idle stop")
    assert time.time() - t0 < 60 + 30 + 10
    wait_for(lambda: not [j for j in sge.qstat() if j.name == record.job_name], 30, what="qstat empty")
    assert "idle for" in open(record.log).read()
