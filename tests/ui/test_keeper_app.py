"""The real app as a keeper's screen (Pilot), on a real keeper and LocalCluster in this process:
it offers what the cluster can do, quits by stopping or detaching, and says why a start failed."""

from __future__ import annotations

import pytest

from naist_dask_tui.app import make_app
from naist_dask_tui.appsetup import start_resource_tracker
from naist_dask_tui.core import registry
from naist_dask_tui.core.cluster import ClusterController
from naist_dask_tui.core.keeper import Keeper
from naist_dask_tui.core.launch import launch_keeper
from naist_dask_tui.core.remote import RemoteController
from naist_dask_tui.screens.quit_dialog import QuitDialog

from .conftest import local_settings, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


@pytest.fixture
def keeper():
    # The keeper runs in this process here (a daemon of its own in real use), so its
    # LocalCluster spawns workers while a Textual app holds stderr: see start_resource_tracker.
    start_resource_tracker()
    k = Keeper(local_settings(idle_timeout="off"), registry.claim(None, "local"))
    k.start()
    try:
        yield k
    finally:
        k.request_stop("test over")
        k.close()


async def test_a_keepers_screen_scales_and_detaches(keeper):
    controller = RemoteController(registry.find(keeper.name))  # connects on the first poll
    app = make_app(keeper.settings, controller, user="u", login_host="h")
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.main.workers_table.total_count == 1, what="the worker")
        assert "local" in app.main.status._markup and "tls://" in app.main.status._markup
        await pilot.press("plus")
        await wait_for(pilot, lambda: keeper.controller.requested_jobs == 2, what="the keeper to scale")
        await wait_for(pilot, lambda: app.main.workers_table.total_count == 2, what="2 workers")
        await pilot.press("q")
        assert isinstance(app.screen, QuitDialog)
        assert "Stop local? That deletes 2 local workers" in app.screen.question
        await pilot.press("d")
    assert app.outcome == "detach"
    controller.detach()
    controller.close()
    assert not keeper.stopping and keeper.controller.requested_jobs == 2


async def test_the_quit_dialogs_stop_ends_the_screen_for_a_stop(keeper):
    controller = RemoteController(registry.find(keeper.name))
    app = make_app(keeper.settings, controller)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.snapshot is not None and app.snapshot.connected, what="connected")
        await pilot.press("ctrl+c")  # asks first ...
        assert isinstance(app.screen, QuitDialog)
        await pilot.press("ctrl+c")  # ... a second Ctrl+C means stop
    assert app.outcome == "stop"
    controller.close()


async def test_a_scheduler_started_elsewhere_is_only_watched(keeper):
    record = registry.find(keeper.name)
    # attach mode: a plain client of a scheduler the console does not own
    settings = local_settings(attach=record.address)
    watcher = ClusterController(settings)
    watcher.client = __import__("distributed").Client(record.address, security=record.security(),
                                                      set_as_default=False)
    app = make_app(settings, watcher)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.main.workers_table.total_count == 1, what="the worker")
        for hidden in ("scale_up", "scale_down", "scale_to", "toggle_adaptive", "retire", "detach"):
            assert app.main.check_action(hidden, ()) is None, hidden  # hidden from the footer
        await pilot.press("plus", "s", "a", "r")
        await pilot.pause()
        assert keeper.controller.requested_jobs == 1 and app.screen is app.main
        assert "not managed here" in app.main.jobs_table.empty_text
        titles = [c.title for c in app.get_system_commands(app.main)]
        assert not any("Scale" in t or "Adaptive" in t for t in titles), titles
        assert sum("Quit" in t for t in titles) == 1 and sum("help" in t.lower() for t in titles) == 1
        await pilot.press("q")
    assert app.outcome == "exit"
    watcher.client.close()


async def test_a_start_that_fails_ends_the_screen_with_the_reason(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no qsub: the keeper's own check refuses
    launch = launch_keeper(local_settings(backend="sge", interface=None, scheduler_interface=None,
                                          queue="grid_short.q"))
    app = make_app(local_settings(), RemoteController(launch=launch))
    async with app.run_test(size=(100, 30)) as pilot:
        assert "connecting" in app.main.status._markup
        await wait_for(pilot, lambda: app.outcome is not None, timeout=60, what="the screen to end")
    assert app.outcome == "failed" and "qsub" in app.exit_reason
    assert registry.clusters() == []


def test_attach_refuses_a_bad_keys_table_in_one_line(keeper, capsys):
    """`naist-dask-tui attach NAME` reads the config file's [keys] too: a wrong id is refused
    before the screen comes up, and the cluster is left as it was."""
    import os
    from pathlib import Path

    from naist_dask_tui import cli

    config = Path(os.environ["XDG_CONFIG_HOME"]) / "naist-dask-tui" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text('[keys]\n"main.qiut" = "x"\n')
    assert cli.main(["attach", keeper.name]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("naist-dask-tui: error: keys.main.qiut:"), err
    assert not keeper.stopping and registry.find(keeper.name).state == "running"
