"""Shared test setup: every test gets its own XDG directories (no history, logs or config of
the person running the tests leak in, and none are written to their home)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _isolated_xdg(tmp_path_factory, monkeypatch):
    base = tmp_path_factory.mktemp("xdg")
    for var in ("XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME", "XDG_DATA_HOME"):
        d = base / var.lower()
        d.mkdir()
        monkeypatch.setenv(var, str(d))
    for var in [v for v in __import__("os").environ
                if v.startswith("NAIST_DASK_TUI_") and not v.startswith("NAIST_DASK_TUI_REQUIRE_")]:
        monkeypatch.delenv(var)


@pytest.fixture(autouse=True)
def _dask_array_optimize_restored():
    """``connect()`` turns root fusion on for the whole process (as it should for a user's
    script): put dask's own optimization back after each test."""
    import dask

    before = dask.config.config.get("array_optimize", None)
    yield
    if before is None:
        dask.config.config.pop("array_optimize", None)
    else:
        dask.config.config["array_optimize"] = before
