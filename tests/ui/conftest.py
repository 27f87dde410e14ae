"""UI test fixtures: a real LocalCluster behind the real controller, and helpers to wait."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest

from naist_dask_tui.core.cluster import ClusterController
from naist_dask_tui.core.settings import load_settings


def local_settings(**overrides):
    cli = {
        "backend": "local",
        "jobs": 1,
        "max_jobs": 4,  # the default is the machine's cores: 2 on the CI machine
        "cores": 1,
        "memory": "1GB",
        "refresh_interval": 0.3,
        "dashboard": False,
    }
    cli.update(overrides)
    return load_settings(cli, env={}, dask_config={})


@pytest.fixture
def local_controller():
    settings = local_settings()
    controller = ClusterController(settings)
    controller.start()
    try:
        yield controller
    finally:
        controller.close()


async def wait_for(pilot, condition: Callable[[], bool], timeout: float = 60.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or condition}")
        await pilot.pause(0.05)


async def wait_polls(pilot, app, n: int = 1, timeout: float = 30.0) -> None:
    target = app.polls + n
    await wait_for(pilot, lambda: app.polls >= target, timeout, f"{n} poll(s)")


def run_in_thread(fn, *args):
    return asyncio.get_running_loop().run_in_executor(None, fn, *args)
