"""Driving the installed ``naist-dask-tui`` in tmux, as a person would: a detached session of
a given size, ``send-keys`` to type, ``capture-pane`` to read the screen."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time

from tests.waiting import wait_until

EXE = os.path.join(os.path.dirname(sys.executable), "naist-dask-tui")


class Tmux:
    def __init__(self, tmp_path, name: str):
        self.socket = f"ndtui-{os.getpid()}-{name}"
        self.name = name
        self.tmp = tmp_path

    def tmux(self, *args: str, check: bool = True) -> str:
        # -u and a UTF-8 locale: the screen's box drawing must survive a CI without LANG
        env = {**os.environ, "LANG": os.environ.get("LANG") or "C.UTF-8"}
        out = subprocess.run(["tmux", "-u", "-L", self.socket, *args], capture_output=True, text=True,
                             timeout=30, env=env)
        if check and out.returncode != 0:
            raise RuntimeError(out.stderr)
        return out.stdout

    def start(self, *flags: str, size: tuple[int, int] = (80, 24), term: str = "xterm-256color") -> None:
        cmd = " ".join(shlex.quote(a) for a in [EXE, *flags])
        env = f"TERM={term} PYTHONUNBUFFERED=1"
        # 80x24: the smallest SSH terminal (a detached session of a new server has that size)
        self.tmux("new-session", "-d", "-s", self.name, "-x", str(size[0]), "-y", str(size[1]),
                  f"cd {shlex.quote(str(self.tmp))} && env {env} {cmd}; echo EXITED $?; sleep 30")

    def screen(self) -> str:
        # the status bar keeps its fields together with no-break spaces
        return self.tmux("capture-pane", "-p", "-t", self.name, check=False).replace("\xa0", " ")

    def keys(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", self.name, *keys)

    def type(self, *keys: str, pause: float = 0.1) -> None:
        """One key a write (a burst of ctrl keys and text reads as a paste)."""
        for key in keys:
            self.keys(key)
            time.sleep(pause)

    def literal(self, text: str) -> None:
        self.tmux("send-keys", "-t", self.name, "-l", text)

    def lines(self, text: str) -> None:
        """Type code line by line (``send-keys -l`` drops newlines; Enter is a key of its own).
        Lines without indentation only: the editor keeps the previous line's indent."""
        for line in text.splitlines():
            self.literal(line)
            self.keys("Enter")

    def kill(self) -> None:
        self.tmux("kill-server", check=False)

    def console_processes(self) -> list:
        """The console started in the pane, and its children (local workers)."""
        import psutil

        pid = self.pid()
        if pid is None:
            return []
        try:
            shell = psutil.Process(pid)
            consoles = [p for p in shell.children() if "naist" in " ".join(p.cmdline())]
            return [q for c in consoles for q in (c, *c.children(recursive=True))]
        except psutil.Error:
            return []

    def end(self, timeout: float = 30.0) -> list:
        """Close the terminal (SIGHUP: an SSH drop) and stop the clusters this test started:
        the screen detaches at SIGHUP and its cluster's keeper outlives it on purpose, so it is
        stopped with ``naist-dask-tui stop --all`` (the test's own state directory). Whatever
        of the screen, the keeper and its workers is still running after ``timeout`` is killed
        and returned (the caller fails on it); a zombie counts as gone (PID 1 may not reap)."""
        import psutil

        family = self.console_processes()
        self.kill()
        subprocess.run([EXE, "stop", "--all"], capture_output=True, text=True, timeout=120)
        deadline = time.time() + timeout
        alive = family
        while alive and time.time() < deadline:
            alive = [p for p in alive if _running(p)]
            time.sleep(0.2)
        for p in alive:
            try:
                p.kill()
            except psutil.Error:
                pass
        return alive

    def pid(self) -> int | None:
        out = self.tmux("list-panes", "-t", self.name, "-F", "#{pane_pid}", check=False).strip()
        return int(out) if out.isdigit() else None


def _running(proc) -> bool:
    import psutil

    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def wait_for(pred, timeout: float, interval: float = 0.3, what: str = "condition"):
    return wait_until(pred, timeout, interval, what)


def until(tmux: Tmux, pred, timeout: float, what: str):
    try:
        return wait_for(pred, timeout, what=what)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n--- screen ---\n{tmux.screen()}") from None
