"""What the app needs from its surroundings: its style sheets (from a checkout or an installed
wheel), who and where the user is (for the ``ssh -L`` hint), the compute pane, and a
multiprocessing quirk of running a LocalCluster inside a Textual app."""

from __future__ import annotations

import getpass
import socket
from pathlib import Path
from typing import Any

from textual.widget import Widget

import naist_dask_tui

CSS_FILES = ("app.tcss", "panels.tcss", "dialogs.tcss")
OPTIONAL_CSS_FILES = ("compute.tcss",)  # written by the compute pane's owner


def styles_dir() -> Path:
    """``naist_dask_tui/styles`` in an installed wheel, else the checkout's top-level ``styles/``."""
    installed = Path(naist_dask_tui.__file__).parent / "styles"
    if installed.is_dir():
        return installed
    return Path(naist_dask_tui.__file__).resolve().parent.parent / "styles"


def css_paths() -> list[Path]:
    base = styles_dir()
    paths = [base / name for name in CSS_FILES]
    paths += [base / name for name in OPTIONAL_CSS_FILES if (base / name).is_file()]
    return paths


def login_host() -> str:
    """The name a laptop would ``ssh`` to: the FQDN, unless /etc/hosts maps it to localhost."""
    try:
        fqdn = socket.getfqdn()
        if fqdn and not fqdn.startswith("localhost"):
            return fqdn
        return socket.gethostname() or "login-node"
    except OSError:
        return "login-node"


def user() -> str:
    try:
        return getpass.getuser()
    except Exception:
        return "user"


def compute_pane(controller: Any) -> Widget | None:
    """The compute pane on the controller's compute session (a keeper's runner, or a session
    in this process for a cluster that lives here)."""
    if controller is None:
        return None
    from naist_dask_tui.widgets.command_pane import ComputePane

    try:
        return ComputePane(controller.compute_session())
    except Exception:  # a broken pane must not take the console down with it
        return None


def start_resource_tracker() -> None:
    """Start multiprocessing's resource tracker now, while ``sys.stderr`` is a real file.

    A LocalCluster in this process spawns nanny processes; the first spawn starts the tracker
    and passes it ``sys.stderr.fileno()``. Inside a running Textual app stderr is a capture
    object whose fileno is -1, so that first spawn fails ("bad value(s) in fds_to_keep") and
    the new worker never starts. With the tracker already running nothing asks for stderr's fd.
    """
    try:
        from multiprocessing import resource_tracker

        resource_tracker.ensure_running()
    except Exception:
        pass
