"""The core must work without a terminal: no module under naist_dask_tui.core imports
textual (or rich, which only the screen needs), checked in a fresh interpreter per module."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import pytest

import naist_dask_tui.core

CORE_MODULES = sorted(
    f"naist_dask_tui.core.{m.name}" for m in pkgutil.iter_modules(naist_dask_tui.core.__path__)
)


def test_core_modules_are_found():
    for expected in ("cluster", "probe", "sge", "monitor", "settings", "shutdown"):
        assert f"naist_dask_tui.core.{expected}" in CORE_MODULES


@pytest.mark.parametrize("module", CORE_MODULES)
def test_core_module_imports_no_textual(module):
    code = (
        "import sys, importlib\n"
        f"importlib.import_module({module!r})\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'rich'))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "", f"{module} pulls in {out.stdout.strip()}"
