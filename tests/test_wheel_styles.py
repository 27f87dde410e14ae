"""The wheel ships the top-level styles/ inside the package, and the installed app finds them.

Builds the wheel from this checkout (hatchling, offline: --no-build-isolation), installs it
with --no-deps into a fresh virtual environment that sees the test interpreter's packages
(textual, distributed, ...) but not this checkout, and resolves the CSS paths there.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow

SNIPPET = """
import asyncio, json, naist_dask_tui, naist_dask_tui.app as app

async def mount():  # the styles parse and the main screen mounts with them
    console = app.make_app(object(), poll=False)
    async with console.run_test(size=(80, 24)):
        pass

asyncio.run(mount())
paths = [str(p) for p in app.css_paths()]
print(json.dumps({
    "package": naist_dask_tui.__file__,
    "styles_dir": str(app.styles_dir()),
    "paths": paths,
    "exist": [__import__("os").path.isfile(p) for p in paths],
    "class_css": [str(p) for p in app.ConsoleApp.CSS_PATH],
}))
"""


def _build_wheel(out: Path) -> Path:
    try:
        import hatchling  # noqa: F401
    except ImportError:
        pytest.skip("hatchling is not installed")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
         "-w", str(out), str(ROOT)],
        check=True,
        capture_output=True,
        text=True,
    )
    (wheel,) = out.glob("naist_dask_tui-*.whl")
    return wheel


def test_installed_wheel_finds_its_styles(tmp_path):
    wheel = _build_wheel(tmp_path / "dist")
    names = zipfile.ZipFile(wheel).namelist()
    shipped = {n for n in names if n.startswith("naist_dask_tui/styles/")}
    for css in sorted((ROOT / "styles").glob("*.tcss")):
        assert f"naist_dask_tui/styles/{css.name}" in shipped, f"{css.name} is not in the wheel"

    env_dir = tmp_path / "venv"
    venv.EnvBuilder(system_site_packages=True, with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    # A venv's system site is the *base* interpreter's; the test interpreter may itself be a
    # venv (/work/venv), so hand its site-packages over with a .pth file.
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()
    parent_sites = [p for p in sys.path if p.endswith("site-packages") and Path(p).is_dir()]
    Path(site, "_parent_site.pth").write_text("\n".join(parent_sites) + "\n")
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index",
         str(wheel)],
        check=True, capture_output=True, text=True,
    )
    clean_env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
    result = subprocess.run(
        [str(python), "-c", SNIPPET],
        check=True, capture_output=True, text=True, cwd=tmp_path, env=clean_env,
    )
    info = json.loads(result.stdout.strip().splitlines()[-1])
    assert info["package"].startswith(site), f"imported from {info['package']}, not the wheel"
    assert Path(info["styles_dir"]) == Path(site) / "naist_dask_tui" / "styles"
    assert info["paths"] and all(info["exist"]), info
    assert info["class_css"] == info["paths"]
