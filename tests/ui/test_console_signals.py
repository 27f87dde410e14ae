"""The real console in a real terminal (tmux), on the local backend: the cluster lives in a keeper
process, so a dropped terminal (SIGHUP, a killed tmux session) or SIGTERM to the screen detaches
and leaves it running; `naist-dask-tui attach` comes back to it, `stop` ends it with every worker
process; SIGTERM or SIGHUP to the keeper stops it too, and the screen says its keeper is gone."""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
import uuid

import psutil
import pytest

from naist_dask_tui.core import registry

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(240),
    pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux"),
]


def _wait(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    value = None
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what} (last: {value!r})")


class Terminal:
    """One tmux server of its own; the command runs with this test's XDG directories."""

    def __init__(self, tmp_path):
        self.socket = f"ndtui-test-{uuid.uuid4().hex[:8]}"
        self.tmp = tmp_path
        self.marker = tmp_path / f"exit-{uuid.uuid4().hex[:6]}"

    def tmux(self, *args: str, check: bool = True) -> str:
        env = {**os.environ, "LANG": os.environ.get("LANG") or "C.UTF-8"}
        out = subprocess.run(["tmux", "-u", "-L", self.socket, *args], capture_output=True,
                             text=True, timeout=30, env=env)
        if check and out.returncode:
            raise RuntimeError(out.stderr)
        return out.stdout

    def start(self, *args: str, size=(100, 30)) -> None:
        keep = ("XDG_", "PATH", "HOME")
        env = " ".join(f"{k}={shlex.quote(v)}" for k, v in os.environ.items() if k.startswith(keep))
        cmd = " ".join(shlex.quote(a) for a in [sys.executable, "-m", "naist_dask_tui", *args])
        self.tmux("new-session", "-d", "-s", "t", "-x", str(size[0]), "-y", str(size[1]),
                  f"cd {shlex.quote(str(self.tmp))} && env TERM=xterm-256color {env} {cmd}; "
                  f"echo $? > {self.marker}; sleep 60")

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", "t", "-S", "-50", check=False).replace("\xa0", " ")

    def keys(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", "t", *keys)

    def screen_pid(self) -> int:
        shell = int(self.tmux("list-panes", "-t", "t", "-F", "#{pane_pid}").split()[0])

        def find():
            for child in psutil.Process(shell).children():
                if "naist_dask_tui" in " ".join(child.cmdline()):
                    return child.pid
            return None

        return _wait(find, 30, "the screen process")

    def kill(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True)


@pytest.fixture
def terminal(tmp_path):
    term = Terminal(tmp_path)
    yield term
    term.kill()
    for record in registry.clusters():
        registry.stop(record)


def wait_gone(procs, timeout: float) -> list[psutil.Process]:
    """The processes still running after ``timeout``; a zombie counts as gone (an orphan's
    zombie stays where PID 1 does not reap, as in some containers)."""
    deadline = time.monotonic() + timeout
    while True:
        alive = [p for p in procs if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.2)


def _keeper_family() -> tuple[registry.ClusterRecord, list[psutil.Process]]:
    [record] = _wait(registry.clusters, 60, "the keeper's record")
    proc = psutil.Process(record.pid)
    return record, [proc, *proc.children(recursive=True)]


def _start(terminal) -> tuple[int, registry.ClusterRecord, list[psutil.Process]]:
    terminal.start("--backend", "local", "--jobs", "1", "--cores", "1", "--memory", "1GB")
    pid = terminal.screen_pid()
    _wait(lambda: "1 Overview" in terminal.screen(), 60, "the screen")
    terminal.keys("2")  # the Workers panel (the Overview comes first)
    _wait(lambda: "local-0" in terminal.screen() and "running" in terminal.screen(), 60, "the worker row")
    record, family = _keeper_family()
    assert len(family) > 1, "the keeper and its worker process"
    assert os.getsid(record.pid) != os.getsid(pid), "the keeper must not be in the terminal's session"
    return pid, record, family


@pytest.mark.parametrize("sig", [signal.SIGHUP, signal.SIGTERM])
def test_a_signal_to_the_screen_detaches_and_stop_ends_everything(terminal, sig):
    pid, record, family = _start(terminal)
    os.kill(pid, sig)
    _wait(terminal.marker.exists, 60, "the screen to exit")
    assert terminal.marker.read_text().strip() == str(128 + sig)
    text = terminal.screen()
    assert "detached; cluster local keeps running" in text, text
    assert all(p.is_running() for p in family), "detaching must leave the cluster running"
    out = subprocess.run([sys.executable, "-m", "naist_dask_tui", "ls"], capture_output=True, text=True)
    assert out.stdout.splitlines()[1].split()[:2] == ["local", "local"], out.stdout
    out = subprocess.run([sys.executable, "-m", "naist_dask_tui", "stop"], capture_output=True,
                         text=True, timeout=90)
    assert out.returncode == 0 and "cluster local stopped" in out.stdout, out
    alive = wait_gone(family, 30)
    assert not alive, f"left running: {alive}"
    assert registry.clusters() == []


def test_a_killed_terminal_detaches_and_attach_comes_back(terminal, tmp_path):
    pid, record, family = _start(terminal)
    screen = psutil.Process(pid)
    terminal.kill()  # the SSH connection drops: SIGHUP to the terminal's session
    psutil.wait_procs([screen], timeout=30)
    assert not screen.is_running()
    assert all(p.is_running() for p in family)
    # naist-dask-tui again: it attaches to the running cluster instead of starting another
    again = Terminal(tmp_path)
    try:
        again.start()
        _wait(lambda: "1 Overview" in again.screen(), 60, "the screen")
        again.keys("2")
        _wait(lambda: "local-0" in again.screen(), 60, "the same worker, reattached")
        assert "attached to your running cluster local" in again.screen()
        assert len(registry.clusters()) == 1
        again.keys("q")
        _wait(lambda: "Stop local?" in again.screen(), 10, "the quit question")
        again.keys("s")
        _wait(again.marker.exists, 90, "the screen to exit")
        assert "cluster local stopped" in again.screen()
    finally:
        again.kill()
    alive = wait_gone(family, 30)
    assert not alive, f"left running: {alive}"


def test_a_keeper_stopped_by_a_signal_takes_its_workers_and_the_screen_says_so(terminal):
    pid, record, family = _start(terminal)
    os.kill(record.pid, signal.SIGTERM)
    alive = wait_gone(family, 60)
    assert not alive, f"left running: {alive}"
    _wait(lambda: "is gone" in terminal.screen() or "stopping" in terminal.screen(), 30,
          "the screen to say the cluster is gone")
    terminal.keys("q")
    _wait(terminal.marker.exists, 30, "the screen to exit")
