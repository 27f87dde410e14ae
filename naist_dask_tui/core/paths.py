"""Where the console keeps its files (XDG base directories).

``~/.config/naist-dask-tui/`` for the config file, ``~/.local/state/naist-dask-tui/`` for what
it writes as it runs: ``clusters/<name>/`` (one directory per running cluster: its record and
the client credentials), ``logs/`` (the keeper's and the screen's logs, the workers' SGE
output), ``tls/`` (the workers' credentials), ``history.jsonl``. ``$XDG_CONFIG_HOME`` and
``$XDG_STATE_HOME`` count only when absolute, as the XDG spec says.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

APP_DIR = "naist-dask-tui"


def _xdg(var: str, fallback: str, env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    value = env.get(var) or ""
    return Path(value) if os.path.isabs(value) else Path.home() / fallback


def config_dir(env: Mapping[str, str] | None = None) -> Path:
    return _xdg("XDG_CONFIG_HOME", ".config", env) / APP_DIR


def state_dir(env: Mapping[str, str] | None = None) -> Path:
    return _xdg("XDG_STATE_HOME", ".local/state", env) / APP_DIR


def clusters_dir() -> Path:
    """One directory per running cluster of this user (see :mod:`registry`)."""
    return state_dir() / "clusters"


def logs_dir() -> Path:
    return state_dir() / "logs"


def tls_dir(pid: int) -> Path:
    """The workers' TLS credentials of the console (or keeper) with this pid."""
    return state_dir() / "tls" / str(pid)


def private_dir(path: Path) -> Path:
    """Create ``path`` (and its parents) readable by the user alone (0700)."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path, 0o700)
    return path


def write_private(path: Path, text: str) -> None:
    """Write a file only the user can read (0600), atomically (write then rename)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


LOG_ROTATE_BYTES = 5 * 2**20


def rotate_log(path: Path, max_bytes: int = LOG_ROTATE_BYTES) -> None:
    """Keep a log that is appended to from growing without end: past ``max_bytes`` it becomes
    ``NAME.log.1`` (replacing the previous one) and a new one starts."""
    private_dir(path.parent)
    try:
        if path.stat().st_size > max_bytes:
            os.replace(path, path.with_suffix(path.suffix + ".1"))
    except OSError:
        pass
