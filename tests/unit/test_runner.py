"""Compute-pane runs in the keeper's runner, on a real LocalCluster: they survive the screen that
started them, any screen sees and cancels them, a crashing run costs the names but never the
cluster, and a stop cancels the run first."""

from __future__ import annotations

import time

import pytest

from naist_dask_tui.core import registry
from naist_dask_tui.core.keeper import Keeper
from naist_dask_tui.core.remote import RemoteController
from naist_dask_tui.core.remote_compute import RemoteComputeSession
from naist_dask_tui.core.settings import load_settings
from tests.waiting import wait_until

pytestmark = pytest.mark.timeout(240)

SEEDED = (
    "rng = da.random.default_rng(7)\n"
    "x = rng.random((400, 400, 4), chunks=(100, 100, 2))\n"
    "(da.arcsin(x) + da.arccos(x)).sum(axis=(1, 2))\n"
)




def started_keeper(tmp_path, **settings) -> Keeper:
    s = load_settings(dict(backend="local", jobs=2, cores=1, memory="700MB", refresh_interval=0.3,
                           local_directory=str(tmp_path), idle_timeout="off", **settings),
                      env={}, dask_config={})
    k = Keeper(s, registry.claim(None, "local"))
    k.start()
    wait_until(lambda: k.runner.alive(), 120, what="the runner")
    return k


@pytest.fixture
def keeper(tmp_path):
    k = started_keeper(tmp_path)
    try:
        yield k
    finally:
        k.request_stop("test over")
        k.close()


def screen(keeper) -> tuple[RemoteController, RemoteComputeSession]:
    c = RemoteController.attached(registry.find(keeper.name))
    return c, RemoteComputeSession(c)


def test_a_run_outlives_the_screen_that_started_it(keeper):
    c1, s1 = screen(keeper)
    assert s1.run("answer = 6 * 7\nanswer").value_repr == "42"
    number = int(c1._control("compute_run", code="import time\ntime.sleep(3)\n" + SEEDED))
    c1.detach()
    c1.close()  # the screen is gone mid-run
    time.sleep(0.5)
    c2, s2 = screen(keeper)
    status = s2.status()
    assert status["running"] and status["running"]["number"] == number  # still going
    result = s2.follow(number)
    assert result.ok, result.error
    assert result.value_repr.startswith("array([") and result.task_count > 0
    # the value, checked against NumPy on the same seeded data, in the same (kept) namespace
    check = s2.run("(_.shape, bool(np.allclose(_, (np.arcsin(x.compute()) + np.arccos(x.compute()))"
                   ".sum(axis=(1, 2)))))")
    assert check.value_repr == "((400,), True)", check
    assert s2.run("answer").value_repr == "42"  # a name defined before the detach
    assert [r.number for r in s2.status(since=0)["results"]] == [1, 2, 3, 4]
    # a pasted old script's cluster is refused by the pane's guard, in the runner too
    old = s2.run("from dask_jobqueue import SGECluster\ncluster2 = SGECluster(cores=1, memory='1GB')")
    assert not old.ok and "is not started in the console" in old.error, old.error
    c2.close()


def test_a_run_is_cancelled_from_another_screen_and_leaves_no_task(keeper):
    c1, s1 = screen(keeper)
    c2, s2 = screen(keeper)
    number = int(c1._control(
        "compute_run",
        code="import time\ndef slow(b):\n    time.sleep(0.5)\n    return b\n"
             "da.ones((200,), chunks=1).map_blocks(slow).sum().compute()",
    ))
    wait_until(lambda: (s2.status()["running"] or {}).get("progress") is not None, what="progress")
    assert s2.cancel()
    result = s1.follow(number)
    assert result.cancelled, result
    client = c1.client
    wait_until(lambda: not client.run_on_scheduler(lambda dask_scheduler: [
        ts.key for ts in dask_scheduler.tasks.values() if ts.state in ("processing", "queued", "waiting")]),
        30, what="no task left on the cluster")
    c1.close()
    c2.close()


def test_a_run_that_kills_its_process_costs_the_names_not_the_cluster(keeper):
    c, s = screen(keeper)
    assert s.run("kept = 1\nkept").ok
    result = s.run("import os\nos._exit(3)")
    assert not result.ok and "runner process died" in result.error, result
    assert not keeper.stopping and keeper.controller.client is not None
    again = s.run("kept")
    assert not again.ok and "NameError" in again.error  # a new runner: a new namespace
    assert s.run("client.submit(lambda: 5).result()").value_repr == "5"  # the cluster is fine
    assert any("runner process died" in n for n in keeper.controller.notices)
    c.close()


def test_a_running_computation_holds_an_idle_cluster(keeper):
    keeper.idle_timeout = 1.0
    c, s = screen(keeper)
    c._control("compute_run", code="import time\ntime.sleep(4)\n'done'")
    c.detach()
    c.close()
    time.sleep(3)
    assert not keeper.stopping, "a run going must hold the cluster"
    wait_until(lambda: keeper.stopping, 15, what="the idle stop after the run")
    assert "idle" in keeper.stop_reason


def test_a_stop_cancels_the_running_computation_first(keeper, caplog):
    c, s = screen(keeper)
    c._control("compute_run", code="import time\nfor _ in range(600):\n    time.sleep(0.1)")
    wait_until(lambda: keeper.runs_active(), 10, what="the run to be seen")
    pid = keeper.runner.pid
    c.close()
    t0 = time.time()
    with caplog.at_level("INFO", logger="naist_dask_tui.keeper"):
        keeper.request_stop("test")
        keeper.close()
    assert time.time() - t0 < 30
    assert any("cancelled the running computation (run 1)" in r.getMessage() for r in caplog.records)
    import psutil

    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


TWO_ARRAYS = (
    "rng = da.random.default_rng(7)\n"
    "x = rng.random((400, 400, 4), chunks=(100, 100, 2))\n"
    "y = rng.random((400, 400, 4), chunks=(100, 100, 2))\n"
    "(da.arcsin(x) + da.arccos(y)).sum(axis=(1, 2))\n"
)


@pytest.mark.parametrize("fuse", [True, False], ids=["default", "no-fuse-roots"])
def test_runs_make_each_chunk_in_the_task_that_uses_it(tmp_path, fuse):
    """By default the runner fuses x_i and y_i into the task that adds them (no chunk is made on
    one worker for another); ``fuse_roots = false`` leaves dask's graph as it is."""
    k = started_keeper(tmp_path, **({} if fuse else {"fuse_roots": False}))
    try:
        c, s = screen(k)
        result = s.run(TWO_ARRAYS)
        assert result.ok, result.error
        prefixes = set(k.controller.cluster.scheduler.task_prefixes)
        assert "sum" in prefixes
        assert ("random" in prefixes) is not fuse, prefixes
        check = s.run("bool(np.allclose(_, (np.arcsin(x.compute()) + np.arccos(y.compute()))"
                      ".sum(axis=(1, 2))))")
        assert check.value_repr == "True", check
        c.close()
    finally:
        k.request_stop("test over")
        k.close()


def test_a_status_that_waits_returns_with_the_result_of_the_run_that_ends(keeper, tmp_path):
    """The pane follows a run by asking the status with a wait: the answer comes when the run
    ends, with its result, not at the next poll."""
    go = tmp_path / "go"
    c, s = screen(keeper)
    number = int(c._control("compute_run", code=(
        "import os, time\n"
        f"while not os.path.exists({str(go)!r}):\n"
        "    time.sleep(0.01)\n"
        "time.sleep(0.3)\n"  # ends well after the status below is asked
        "'done'\n")))
    wait_until(lambda: keeper.runs_active(), 10, what="the run to be going")
    quick = s.status(since=number - 1)  # no wait: the run is still going
    assert quick["running"]["number"] == number and not quick["results"]
    go.touch()
    status = s.status(since=number - 1, wait=1.0)
    assert [r.number for r in status["results"]] == [number], status
    assert status["results"][0].value_repr == "'done'"
    c.close()
