"""Start a keeper in the background and wait until its cluster runs (or say why it did not).

The keeper is its own session leader (``start_new_session``): a dropped SSH connection sends
SIGHUP to the terminal's session, not to it. Its stdin is /dev/null and its stdout and stderr
go to its log file, so nothing it, the scheduler or a worker prints can reach a terminal.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from naist_dask_tui.core import registry
from naist_dask_tui.core.errors import ControllerError
from naist_dask_tui.core.paths import logs_dir, rotate_log, write_private
from naist_dask_tui.core.settings_json import settings_to_json

START_TIMEOUT = 300.0  # seconds; an SGE cluster's start is a scheduler and a first qsub


class KeeperStartError(ControllerError):
    """The keeper could not start the cluster; the message is its reason in words."""


def keeper_log_path(name: str) -> Path:
    return logs_dir() / f"keeper-{name}.log"


def _open_log(path: Path):
    rotate_log(path)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    f = os.fdopen(fd, "ab", buffering=0)
    f.write(f"\n==== keeper starting {time.strftime('%Y-%m-%d %H:%M:%S')} ====\n".encode())
    return f


def base_name(settings) -> str:
    """A new cluster's name: its profile's, but "local" for the built-in profile on the local
    backend (the naist profile describes the lab's SGE cluster)."""
    profile = settings.profile or "cluster"
    if settings.resolved_backend() == "local" and profile == "naist":
        profile = "local"
    base = re.sub(r"[^A-Za-z0-9_.-]", "-", profile).strip("-.") or "cluster"
    return base[:30]


def log_tail(path: Path | str | None, lines: int = 15) -> str:
    if not path:
        return ""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 16384))
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


class Launch:
    """A keeper being started: ``wait()`` returns its record once its cluster runs, or raises
    :class:`KeeperStartError` with the keeper's own reason."""

    def __init__(self, directory: Path, proc: subprocess.Popen, log_path: Path, backend: str):
        self.directory = directory
        self.name = directory.name
        self.proc = proc
        self.log_path = log_path
        self.backend = backend
        self.started = time.time()

    def poll(self) -> registry.ClusterRecord | None:
        """The record once the cluster runs; None while it starts; raises if the start failed."""
        record = registry.read_record(self.directory)
        if record is not None and record.state == "running":
            return record
        if record is not None and record.state == "failed":
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pass
            registry.release(self.directory)
            raise KeeperStartError(record.error or "the keeper failed without a reason")
        if self.proc.poll() is not None:
            registry.release(self.directory)
            raise KeeperStartError(
                f"the keeper exited with status {self.proc.returncode} before the cluster ran; "
                f"its log ({self.log_path}) ends with:\n{log_tail(self.log_path)}"
            )
        return None

    def wait(
        self, timeout: float = START_TIMEOUT, on_wait: Callable[[float], None] | None = None
    ) -> registry.ClusterRecord:
        try:
            while True:
                record = self.poll()
                if record is not None:
                    return record
                waited = time.time() - self.started
                if waited > timeout:
                    self.terminate()
                    raise KeeperStartError(
                        f"the cluster did not start within {timeout:.0f} s; see {self.log_path}"
                    )
                if on_wait is not None:
                    on_wait(waited)
                time.sleep(0.1)
        except KeyboardInterrupt:
            self.terminate()
            raise

    def terminate(self) -> None:
        """Stop the keeper (it deletes whatever it submitted) and forget the cluster."""
        _terminate(self.proc)
        registry.release(self.directory)


def launch_keeper(settings, *, name: str | None = None) -> Launch:
    """Spawn a keeper for ``settings``; returns at once (see :class:`Launch`)."""
    directory = registry.claim(name, base_name(settings))
    log_path = keeper_log_path(directory.name)
    try:
        write_private(directory / registry.SETTINGS, settings_to_json(settings))
        log = _open_log(log_path)
        try:
            proc = subprocess.Popen(
                [sys.executable, "-m", "naist_dask_tui.core.keeper", "--dir", str(directory),
                 "--log", str(log_path)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
                close_fds=True,
            )  # fmt: skip
        finally:
            log.close()
    except BaseException:
        registry.release(directory)
        raise
    # Reap the keeper if it exits while this process lives (a zombie would look alive to
    # ps); once this process is gone the keeper belongs to init.
    threading.Thread(target=proc.wait, name="ndtui-keeper-reaper", daemon=True).start()
    return Launch(directory, proc, log_path, settings.resolved_backend())


def start_keeper(
    settings,
    *,
    name: str | None = None,
    timeout: float = START_TIMEOUT,
    on_wait: Callable[[float], None] | None = None,
) -> registry.ClusterRecord:
    """Spawn a keeper for ``settings`` and wait until its cluster runs.

    Raises :class:`KeeperStartError` with the keeper's own reason when the start fails;
    ``KeyboardInterrupt`` while waiting stops the keeper (its jobs deleted) and re-raises.
    ``on_wait(seconds)`` is called about ten times a second while waiting.
    """
    return launch_keeper(settings, name=name).wait(timeout, on_wait)


def _terminate(proc: subprocess.Popen, timeout: float = 60.0) -> None:
    """Stop a keeper we started (it deletes its jobs on SIGTERM)."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)
