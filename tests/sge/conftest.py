"""Real Son of Grid Engine tests.

They run where ``qsub``/``qstat``/``qdel`` are on PATH and skip, saying why, where they are
not. CI sets ``NAIST_DASK_TUI_REQUIRE_SGE=1`` after bringing up its one-host SGE
(``ci/setup-sge.sh``): there a missing SGE is a failure, not a skip.
Every test must leave ``qstat`` empty of the console's jobs; the autouse fixture checks it.
"""

from __future__ import annotations

import os
import subprocess
import threading

import pytest

from naist_dask_tui.core import sge
from naist_dask_tui.core.jobnames import console_job_name
from tests.waiting import wait_until

REQUIRED = os.environ.get("NAIST_DASK_TUI_REQUIRE_SGE") == "1"
LAB_REQUIRED = os.environ.get("NAIST_DASK_TUI_REQUIRE_LAB") == "1"


def _ours() -> list:
    """Jobs of the consoles this test process runs in-process (other consoles on this machine,
    a developer's for instance, are none of its business)."""
    return [j for j in sge.qstat() if j.name == console_job_name()]


def _orphans() -> list:
    """Jobs of consoles on this host that are gone: what a test's subprocess left behind."""
    return [item.job for item in sge.find_leftovers() if item.dead]


def keeper_jobs() -> list:
    """The SGE jobs of the clusters this test's keepers run (the test's XDG state directory is
    its own, so other consoles on this machine, other engineers' tests among them, are not
    counted)."""
    from naist_dask_tui.core import registry

    names = {r.job_name for r in registry.clusters(clean=False) if r.job_name}
    return [j for j in sge.qstat() if j.name in names] if names else []


def wait_for(pred, timeout: float, interval: float = 0.5, what: str = "condition"):
    return wait_until(pred, timeout, interval, what)


def spawn(cmd: list[str], cwd) -> tuple[subprocess.Popen, list[str]]:
    """Start a console process in a session of its own (our signals only); its output lines
    are collected as they come."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=cwd,
                            start_new_session=True)  # fmt: skip
    lines: list[str] = []

    def read():
        for line in proc.stdout:
            lines.append(line.rstrip())

    threading.Thread(target=read, daemon=True).start()
    return proc, lines


def pytest_collection_modifyitems(config, items):
    lab_items = [item for item in items if item.get_closest_marker("lab")]
    if lab_items and not LAB_REQUIRED:
        from . import lab

        why = lab.why_not_up()
        if why:
            for item in lab_items:
                item.add_marker(pytest.mark.skip(
                    reason=f"{why}; CI brings the lab network up (ci/lab-network.sh) and requires these tests"))
    if sge.available() or REQUIRED:
        return  # required and missing: the autouse fixture below fails each test
    for item in items:
        if "tests/sge/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(
                pytest.mark.skip(
                    reason="no SGE on this machine (qsub/qstat/qdel not on PATH); "
                    "CI brings one up with ci/setup-sge.sh and requires these tests"
                )
            )


@pytest.fixture(autouse=True)
def _lab_up(request):
    """CI (NAIST_DASK_TUI_REQUIRE_LAB=1): a lab test without the lab network fails."""
    if LAB_REQUIRED and request.node.get_closest_marker("lab"):
        from . import lab

        why = lab.why_not_up()
        if why:
            pytest.fail(f"NAIST_DASK_TUI_REQUIRE_LAB=1 but {why}")


@pytest.fixture(autouse=True)
def _sge_clean():
    if not sge.available():
        if REQUIRED:
            pytest.fail("NAIST_DASK_TUI_REQUIRE_SGE=1 but qsub/qstat/qdel are not on PATH")
        pytest.skip("no SGE on this machine")
    before = {j.job_id for j in _ours() + _orphans()}
    if before:
        sge.qdel(sorted(before))
        wait_for(lambda: not (_ours() or _orphans()), 30, what="leftover jobs of an earlier run to go")
    yield
    # Keepers this test started (its XDG state directory is its own): a test that detaches must
    # stop its cluster itself; one left running is stopped here and fails the test.
    from naist_dask_tui.core import registry

    left_running = registry.clusters()
    for record in left_running:
        registry.stop(record)
    if left_running:
        pytest.fail(f"the test left clusters running: {[r.name for r in left_running]}")
    try:
        wait_for(lambda: not (_ours() or _orphans()), 30, what="qstat to be empty of the tests' jobs")
    except AssertionError:
        left = _ours() + _orphans()
        sge.qdel([j.job_id for j in left])
        pytest.fail(f"the test left SGE jobs behind: {[(j.job_id, j.name, j.raw_state) for j in left]}")


@pytest.fixture
def sge_settings(tmp_path):
    from naist_dask_tui.core.settings import load_settings

    def make(**over):
        values = dict(
            backend="sge",
            jobs=0,
            cores=1,
            processes=1,
            memory="1GB",
            queue=os.environ.get("SGE_QUEUE", "grid_short.q"),
            interface="lo",
            scheduler_interface="lo",
            job_extra_directives=["-pe smp 1"],
            local_directory=str(tmp_path),
            log_directory=str(tmp_path / "logs"),
        )
        values.update(over)
        return load_settings(values, env={})

    return make
