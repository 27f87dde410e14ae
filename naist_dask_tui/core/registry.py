"""The clusters of this user on this host, as their keepers left them on disk.

One directory per cluster, ``$XDG_STATE_HOME/naist-dask-tui/clusters/<name>/`` (0700):

* ``keeper.json``: who keeps it (pid and process start time, host), its backend, address,
  state (``starting`` / ``running`` / ``stopping`` / ``failed`` with the error), log file;
* ``status.json``: a summary the keeper rewrites when it changes (jobs running/pending,
  workers, screens attached, idle since), for ``naist-dask-tui ls``;
* ``ca.pem``, ``client.pem``, ``client.key``: the client credentials (0600), for the screen,
  ``naist-dask-tui env`` and ``connect()``.

A record is *live* when its keeper runs on this host: the pid exists, is not a zombie, and
started when the record says (a reused pid started later). Anything else is stale: ``ls``
never shows it as live, and :func:`clusters` removes it (the credentials go with it; the
keeper's log stays in ``logs/``). A directory is claimed with ``mkdir``, which is atomic, so
two consoles started at once never take the same name.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from naist_dask_tui.core.credentials import ClientFiles
from naist_dask_tui.core.jobnames import short_hostname
from naist_dask_tui.core.paths import clusters_dir, private_dir, state_dir, write_private

RECORD = "keeper.json"
STATUS = "status.json"
SETTINGS = "settings.json"
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$")
CLAIM_GRACE = 60.0  # seconds a claimed directory may stay without a record (keeper starting)


class RegistryError(RuntimeError):
    """A cluster name that is taken, unknown or malformed; the message says what to do."""


def check_name(name: str) -> str:
    if not NAME_RE.match(name or ""):
        raise RegistryError(
            f"name: {name!r} is not a cluster name; use letters, digits, '.', '_' or '-' "
            "(at most 40, starting with a letter or digit)"
        )
    return name


@dataclass(frozen=True)
class ClusterRecord:
    name: str
    directory: Path
    pid: int = 0
    create_time: float = 0.0
    host: str = ""
    user: str = ""
    backend: str = ""
    state: str = "starting"  # starting | running | stopping | failed
    address: str | None = None
    error: str | None = None
    started: float = 0.0
    log: str | None = None
    job_name: str | None = None
    tls: bool = True
    idle_timeout: float | None = None
    profile: str = ""
    version: str = ""
    status: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def here(self) -> bool:
        return self.host == short_hostname()

    def alive(self) -> bool:
        """Its keeper process runs (on this host): same pid, same start time, not a zombie."""
        if not self.here or not self.pid:
            return False
        return process_alive(self.pid, self.create_time)

    @property
    def client_files(self) -> ClientFiles | None:
        files = ClientFiles.in_dir(self.directory)
        return files if self.tls else None

    def security(self):
        """The ``Security`` a client of this cluster needs (None: the cluster speaks plain TCP)."""
        files = self.client_files
        if files is None:
            return None
        if not files.exist():
            raise RegistryError(
                f"cluster {self.name}: its client credentials are missing from {self.directory}"
            )
        return files.security()

    def to_json(self) -> str:
        data = {k: v for k, v in self.__dict__.items() if k not in ("directory", "status")}
        return json.dumps(data, indent=1)


def process_alive(pid: int, create_time: float) -> bool:
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        return abs(proc.create_time() - create_time) < 1.0
    except psutil.NoSuchProcess:
        return False
    except psutil.Error:
        return True  # exists but cannot be inspected: do not call it dead


def own_identity() -> tuple[int, float]:
    pid = os.getpid()
    return pid, psutil.Process(pid).create_time()


# --------------------------------------------------------------------------------------------
# Reading


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        return data if isinstance(data, dict) else None
    except (OSError, ValueError):
        return None


def read_record(directory: Path) -> ClusterRecord | None:
    data = _read_json(directory / RECORD)
    if data is None:
        return None
    known = {k: v for k, v in data.items() if k in ClusterRecord.__dataclass_fields__}
    known.pop("directory", None)
    known.pop("status", None)
    try:
        record = ClusterRecord(directory=directory, **known)
    except TypeError:
        return None
    status = _read_json(directory / STATUS) or {}
    object.__setattr__(record, "status", status)
    return record


def _remove(directory: Path) -> None:
    shutil.rmtree(directory, ignore_errors=True)


def clusters(*, clean: bool = True) -> list[ClusterRecord]:
    """This user's clusters on this host that are live or starting, oldest first.

    ``clean``: remove stale directories (a keeper killed with SIGKILL, a failed start whose
    console went away). Records of other hosts (a home shared between login nodes) are left
    alone and not listed."""
    root = clusters_dir()
    found = []
    try:
        entries = sorted(root.iterdir())
    except OSError:
        return []
    for directory in entries:
        if not directory.is_dir():
            continue
        record = read_record(directory)
        if record is None:
            # Claimed, keeper not yet written its record; stale after a while.
            try:
                age = time.time() - directory.stat().st_mtime
            except OSError:
                continue
            if age > CLAIM_GRACE and clean:
                _remove(directory)
            continue
        if not record.here:
            continue
        if record.alive():
            found.append(record)
        elif clean:
            _remove(directory)
            # the workers' credentials of a keeper that could not delete them (SIGKILL)
            _remove(state_dir() / "tls" / str(record.pid))
    return sorted(found, key=lambda r: r.started)


def find(name: str) -> ClusterRecord:
    for record in clusters():
        if record.name == name:
            return record
    known = ", ".join(r.name for r in clusters()) or "none"
    raise RegistryError(f"no running cluster named {name!r} on this host (running: {known})")


# --------------------------------------------------------------------------------------------
# Writing (the keeper and the console that starts it)


def claim(name: str | None, base: str) -> Path:
    """Take a directory for a new cluster: ``name`` exactly (an error if a live cluster has it),
    or the first free of ``base``, ``base-2``, ``base-3``, ..."""
    root = private_dir(clusters_dir())
    clusters()  # clear stale directories first
    candidates = [check_name(name)] if name else [base] + [f"{base}-{i}" for i in range(2, 100)]
    for candidate in candidates:
        directory = root / candidate
        try:
            directory.mkdir(mode=0o700)
        except FileExistsError:
            continue
        os.chmod(directory, 0o700)
        return directory
    if name:
        raise RegistryError(
            f"a cluster named {name!r} is already running; attach to it with "
            f"`naist-dask-tui attach {name}` or choose another --name"
        )
    raise RegistryError(f"too many clusters named {base}-N are running")


def write_record(record: ClusterRecord) -> None:
    write_private(record.directory / RECORD, record.to_json())


def write_status(directory: Path, status: dict[str, Any]) -> None:
    write_private(directory / STATUS, json.dumps(status))


def release(directory: Path) -> None:
    """The keeper is done: its record and credentials go."""
    _remove(directory)


# --------------------------------------------------------------------------------------------
# Stopping


def stop(record: ClusterRecord, *, timeout: float = 60.0) -> str:
    """Stop a cluster: SIGTERM to its keeper (which deletes every job, pending ones too),
    then wait for it to exit. A keeper that does not exit in time is killed and its jobs
    deleted by name. Returns what happened, in words."""
    if not record.alive():
        release(record.directory)
        return f"cluster {record.name} was not running"
    try:
        os.kill(record.pid, signal.SIGTERM)
    except ProcessLookupError:
        release(record.directory)
        return f"cluster {record.name} was not running"
    end = time.time() + timeout
    while time.time() < end:
        if not process_alive(record.pid, record.create_time):
            release(record.directory)
            return f"cluster {record.name} stopped"
        time.sleep(0.1)
    try:
        os.kill(record.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    deleted = ""
    if record.backend == "sge" and record.job_name:
        from naist_dask_tui.core import sge

        try:
            ids = [j.job_id for j in sge.qstat() if j.name == record.job_name]
            sge.qdel(ids)
            deleted = f"; deleted its {len(ids)} job(s) by name"
        except sge.SgeError as exc:
            deleted = f"; deleting its jobs failed: {exc} (run `naist-dask-tui --cleanup`)"
    release(record.directory)
    return f"cluster {record.name} did not stop within {timeout:.0f} s and was killed{deleted}"
