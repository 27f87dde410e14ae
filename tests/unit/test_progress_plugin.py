"""The progress plugin is shipped by value: a scheduler that cannot import naist_dask_tui (one
the console merely attaches to) runs it, and a compute-pane run there gets its progress."""

from __future__ import annotations

import subprocess
import sys

import pytest

distributed = pytest.importorskip("distributed")

from naist_dask_tui.core.compute import ComputeSession  # noqa: E402
from naist_dask_tui.core.progress import ProgressTracker  # noqa: E402
from naist_dask_tui.core.progress_plugin import COUNT_FIELDS, category  # noqa: E402

SCHEDULER = """\
import sys
sys.modules["naist_dask_tui"] = None  # as on a scheduler where the console is not installed
from distributed import LocalCluster
cluster = LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                       dashboard_address=None, scheduler_port=0, protocol="tcp://", host="127.0.0.1")
print(cluster.scheduler_address, flush=True)
sys.stdin.read()  # until the test closes it
cluster.close()
"""


@pytest.fixture(scope="module")
def foreign_scheduler():
    proc = subprocess.Popen(
        [sys.executable, "-c", SCHEDULER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        address = proc.stdout.readline().strip()
        assert address.startswith("tcp://"), address
        yield address
    finally:
        proc.stdin.close()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_progress_on_a_scheduler_without_naist_dask_tui(foreign_scheduler):
    def console_importable() -> bool:
        try:
            import naist_dask_tui  # noqa: F401
        except ImportError:
            return False
        return True

    with distributed.Client(foreign_scheduler) as client:
        assert client.run_on_scheduler(console_importable) is False
        tracker = ProgressTracker(client)
        assert tracker.ensure_installed(), tracker.unavailable_reason

        result = ComputeSession(client).run("(da.ones((40,), chunks=4) + 1).sum()")
        assert result.ok, result.error
        assert result.value_repr == "80.0"
        final = result.progress
        assert final is not None and final.finished
        # at least a task per chunk (10) and the final sum: every task counted, all done
        assert final.total > 10 and final.done == final.total and final.erred == 0
        assert sum(g.total for g in final.groups) == final.total and len(final.groups) >= 2
        # installed once: a second tracker finds it there and does not replace it
        assert ProgressTracker(client).ensure_installed()


def test_named_categories():
    total, done, erred, processing, queued, waiting, no_worker, released = range(len(COUNT_FIELDS))
    assert category("memory", processing) == done and category("erred", waiting) == erred
    assert category("no-worker", total) == no_worker and category("queued", total) == queued
    # released after finishing stays done (or erred); before finishing it was cancelled
    assert category("released", done) == done and category("forgotten", erred) == erred
    assert category("released", processing) == released and category("forgotten", queued) == released
    # released while new or waiting: on its way (back) to waiting, e.g. a lost worker
    assert category("released", total) == waiting and category("released", waiting) == waiting
