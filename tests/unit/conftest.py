"""Fixtures shared by the unit tests."""

from __future__ import annotations

import os

import dask.config
import pytest


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A fresh HOME and XDG dirs, no NAIST_DASK_TUI_/DASK_JOBQUEUE_ variables, an empty dask config."""
    for var in list(os.environ):
        if var.startswith(("NAIST_DASK_TUI_", "DASK_JOBQUEUE")):
            monkeypatch.delenv(var)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    dask_dir = tmp_path / "dask"
    dask_dir.mkdir()
    # dask-jobqueue's shipped defaults stay in dask's config (as on a real login node once it is
    # imported); the user's files are replaced by our temporary directory.
    import dask_jobqueue  # noqa: F401

    dask.config.refresh(paths=[str(dask_dir)])
    yield tmp_path
    dask.config.refresh()
