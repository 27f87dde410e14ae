"""The real console in a real terminal (tmux): SIGHUP, SIGTERM and a killed tmux session (an
SSH drop) all end in controller.close(); nothing it started is left running."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import uuid

import psutil
import pytest

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux"),
]


def _tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], check=True, capture_output=True, text=True).stdout


def _wait(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def console(tmp_path):
    """Start the console with a LocalCluster in a detached tmux session; yield (session, pid)."""
    session = f"ndtui-test-{uuid.uuid4().hex[:8]}"
    marker = tmp_path / "exit-code"
    cmd = (
        f"cd {tmp_path} && TERM=xterm-256color {sys.executable} -m naist_dask_tui --backend local "
        f"--jobs 1 --cores 1 --memory 1GB; echo $? > {marker}; sleep 30"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("NAIST_DASK_TUI_")}
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "100", "-y", "30", cmd], check=True, env=env)
    try:
        shell = int(_tmux("list-panes", "-t", session, "-F", "#{pane_pid}").split()[0])

        def console_pid():
            for child in psutil.Process(shell).children():
                if "naist_dask_tui" in " ".join(child.cmdline()):
                    return child.pid
            return None

        pid = _wait(console_pid, 30, "the console process")
        _wait(lambda: "local-0" in _tmux("capture-pane", "-p", "-t", session), 60, "the worker row")
        yield session, pid, marker
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)


def _family(pid: int) -> list[psutil.Process]:
    proc = psutil.Process(pid)
    return [proc, *proc.children(recursive=True)]


@pytest.mark.parametrize("sig", [signal.SIGHUP, signal.SIGTERM])
def test_signal_closes_the_cluster(console, sig):
    session, pid, marker = console
    family = _family(pid)
    assert len(family) > 1  # the console and its worker processes
    os.kill(pid, sig)
    _wait(marker.exists, 60, "the console to exit")
    assert marker.read_text().strip() == str(128 + sig)
    screen = _tmux("capture-pane", "-p", "-t", session)
    assert f"{signal.Signals(sig).name}: closing" in screen
    gone, alive = psutil.wait_procs(family, timeout=30)
    assert not alive, f"left running: {alive}"


def test_killed_terminal_closes_the_cluster(console):
    session, pid, marker = console
    family = _family(pid)
    subprocess.run(["tmux", "kill-session", "-t", session], check=True)
    gone, alive = psutil.wait_procs(family, timeout=60)
    assert not alive, f"left running after the terminal went away: {alive}"
