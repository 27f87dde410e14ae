"""SVG snapshots of the main screen, fed with fixed snapshot data (no clock, no cluster)."""

from __future__ import annotations

import pytest

from naist_dask_tui.app import make_app
from tests.ui.fake_data import overview_series, showcase_snapshot


def fixed_app():
    return make_app(object(), poll=False, user="alice", login_host="login.example")


async def _show(pilot, panel: str = "2") -> None:
    app = pilot.app
    # Two samples a minute apart: the sparklines and the spill rate have something to show.
    app.apply_snapshot(showcase_snapshot(t=1_780_000_000.0 - 60))
    app.apply_snapshot(showcase_snapshot())
    await pilot.press(panel)  # 2: the Workers panel (on a large terminal, with its neighbours)
    await pilot.pause()


@pytest.mark.parametrize("size", [(80, 24), (200, 60)])
def test_main_screen(snap_compare, size):
    assert snap_compare(fixed_app(), terminal_size=size, run_before=_show)


@pytest.mark.parametrize("size", [(80, 24), (200, 60)])
def test_overview(snap_compare, size):
    """The first panel: four graphs over the last 5 minutes of fixed data, one sample a second
    (memory filling and spilling, CPU, tasks finishing, a job pending then running)."""

    async def run_before(pilot):
        for snap in overview_series():
            pilot.app.apply_snapshot(snap)
        await pilot.pause()

    assert snap_compare(fixed_app(), terminal_size=size, run_before=run_before)


def test_jobs_panel_80x24(snap_compare):
    async def run_before(pilot):
        await _show(pilot)
        await pilot.press("5")

    assert snap_compare(fixed_app(), terminal_size=(80, 24), run_before=run_before)


def test_lost_80x24(snap_compare):
    from tests.ui.fake_data import make_snapshot

    async def run_before(pilot):
        await _show(pilot)
        pilot.app.apply_snapshot(
            make_snapshot(connected=False, error="scheduler tcp://10.0.0.1:8786 not answering: OSError")
        )
        await pilot.pause()

    assert snap_compare(fixed_app(), terminal_size=(80, 24), run_before=run_before)
