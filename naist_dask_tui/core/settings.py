"""One typed, validated settings object, layered from five places.

Lowest to highest: the built-in profile (``naist``: the lab's values) < dask's own config
(``jobqueue.sge``, the ``~/.config/dask/jobqueue.yaml`` users already have) < our TOML file
(``$XDG_CONFIG_HOME/naist-dask-tui/config.toml``) < ``NAIST_DASK_TUI_<FIELD>`` environment
variables < command-line flags. Every value is checked once, here, and an error names the field,
what was given, the accepted form and where the value came from.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import os
import re
import shlex
import shutil
import sys
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from naist_dask_tui.core.jobnames import console_job_name

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - 3.10
    import tomli as tomllib

BACKENDS = ("auto", "sge", "local")
LAYERS = ("profile", "dask-config", "config-file", "env", "cli")
ENV_PREFIX = "NAIST_DASK_TUI_"
APP_DIR = "naist-dask-tui"


class SettingsError(ValueError):
    """A bad setting: ``str()`` names the field, the value, the accepted form and the source."""

    def __init__(self, field: str, message: str, source: str | None = None) -> None:
        self.field = field
        self.message = message
        self.source = source
        super().__init__(field, message, source)

    def __str__(self) -> str:
        text = f"{self.field}: {self.message}"
        return f"{text} (from {self.source})" if self.source else text


# --------------------------------------------------------------------------------------------
# The settings object


@dataclass(frozen=True)
class Settings:
    """Everything the console needs to start, scale and watch a cluster. Defaults = ``naist``."""

    profile: str = "naist"
    backend: str = "auto"  # auto | sge | local
    attach: str | None = None  # tcp://host:8786: attach to a running scheduler instead
    jobs: int = 10
    # The ceiling on any request for jobs; None: from the backend (SGE: 2 x what the queue
    # runs at once; local: the machine's cores). See core/limits.py.
    max_jobs: int | None = None
    cores: int = 24  # per job
    processes: int = 1  # dask worker processes per job
    memory: str = "250GB"  # per job
    queue: str | None = "grid_short.q"
    project: str | None = None
    walltime: str | None = None  # None: dask-jobqueue's default
    # Workers retire gracefully (handing their data to the others) before SGE's walltime kills
    # them: "auto" derives --lifetime from the walltime, "off" disables it, or a duration.
    lifetime: str = "auto"
    interface: str | None = "ib0"  # the workers' NIC
    scheduler_interface: str | None = "bond1"  # the login node's NIC for the scheduler
    local_directory: str | None = "/var/tmp"
    job_extra_directives: tuple[str, ...] = ("-pe smp 24",)
    resource_spec: str | None = None
    log_directory: str | None = None  # None: $XDG_STATE_HOME/naist-dask-tui/logs
    worker_extra_args: tuple[str, ...] = ()
    dashboard: bool = False
    dashboard_address: str = "127.0.0.1:8787"
    refresh_interval: float = 1.0
    adapt_min: int | None = None
    adapt_max: int | None = None
    skip_interface_check: bool = False
    # TLS with mutual authentication between scheduler, workers and console (SGE backend):
    # anyone who reaches a plain scheduler port can run code as you.
    tls: bool = True
    # A cluster that nobody uses (no screen attached, no compute-pane run, no task) for this
    # long stops by itself and deletes its jobs; "off" keeps it until it is stopped.
    idle_timeout: str = "20m"
    # Which layer set each field ("profile", "dask-config", "config-file", "env", "cli") ...
    sources: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)
    # ... and exactly where ("built-in profile naist", "--memory", "NAIST_DASK_TUI_JOBS", ...).
    origins: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)
    # What resolved_for_local() changed, to show the user.
    notes: tuple[str, ...] = field(default=(), compare=False, repr=False)
    # The config file's [keys] table (binding id -> keys), checked by naist_dask_tui.keymap
    # (the binding ids live in the screen's modules), and the file it came from.
    keys: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)
    config_path: str | None = field(default=None, compare=False, repr=False)

    # -- derived values ----------------------------------------------------------------------

    @property
    def memory_bytes(self) -> int:
        return _parse_size(self.memory)

    @property
    def log_dir(self) -> str:
        if self.log_directory:
            return os.path.expanduser(self.log_directory)
        return os.path.join(_xdg_home("XDG_STATE_HOME", ".local/state"), APP_DIR, "logs")

    @property
    def tls_dir(self) -> str:
        """Where the workers' temporary TLS credentials are written: under the home directory
        (the compute nodes see it), one directory per console, readable by the user alone."""
        return os.path.join(
            _xdg_home("XDG_STATE_HOME", ".local/state"), APP_DIR, "tls", str(os.getpid())
        )

    @property
    def effective_walltime(self) -> str | None:
        """The jobs' walltime: ours, or dask-jobqueue's default (None if unknown)."""
        return self.walltime or jobqueue_shipped_defaults().get("walltime")

    @property
    def walltime_seconds(self) -> float | None:
        text = self.effective_walltime
        return _walltime_seconds(text) if text else None

    def worker_lifetime(self) -> tuple[float, float] | None:
        """(lifetime, stagger) in seconds for the workers' ``--lifetime``, or None.

        A walltime kill is SIGKILL: the job's workers vanish with their data and the scheduler
        recomputes it. A worker whose lifetime runs out first retires gracefully instead (its
        keys move to the other workers) and its job ends; the console then submits a
        replacement when a fixed job count was asked for. "auto" ends lifetimes, stagger
        included, a margin (10% of the walltime, at least two minutes when the walltime allows)
        before the walltime; the stagger (5%, at most 5 minutes) keeps jobs from leaving
        together. None when switched off, when the user passes --lifetime in worker_extra_args
        themselves, or when no walltime is known.
        """
        if self.lifetime == "off" or any(a.startswith("--lifetime") for a in self.worker_extra_args):
            return None
        wall = self.walltime_seconds
        if self.lifetime == "auto":
            if wall is None:
                return None
            margin = max(0.1 * wall, min(120.0, 0.25 * wall))
            stagger = _stagger(wall)
            return (wall - margin - stagger, stagger)
        life = _duration_seconds(self.lifetime)
        return (life, _stagger(life))

    @property
    def idle_timeout_seconds(self) -> float | None:
        return None if self.idle_timeout == "off" else _duration_seconds(self.idle_timeout)

    @property
    def adaptive(self) -> bool:
        return self.adapt_min is not None or self.adapt_max is not None

    def source_of(self, name: str) -> str:
        return self.sources.get(name, "profile")

    def origin_of(self, name: str) -> str:
        return self.origins.get(name, f"built-in profile {self.profile}")

    def explicit(self, name: str) -> bool:
        """True if the user chose this value (anything but a built-in profile's default)."""
        return not self.origin_of(name).startswith("built-in")

    def resolved_backend(self, which: Callable[[str], str | None] = shutil.which) -> str:
        """"attach" if an address is set, else "sge" or "local" (auto: sge when qsub exists)."""
        if self.attach:
            return "attach"
        if self.backend in ("sge", "local"):
            return self.backend
        return "sge" if which("qsub") else "local"

    def pe_directives(self) -> list[tuple[str, int]]:
        """The ``-pe NAME N`` parallel environments requested by the job directives."""
        found = []
        for directive in self.job_extra_directives:
            m = re.match(r"^\s*-pe\s+(\S+)\s+(\d+)(?:-\d*)?\s*$", directive)
            if m:
                found.append((m[1], int(m[2])))
        return found

    # -- what the backends receive -----------------------------------------------------------

    def sge_cluster_kwargs(self) -> dict[str, Any]:
        """The keyword arguments for ``dask_jobqueue.SGECluster``."""
        scheduler_options: dict[str, Any] = {
            "dashboard_address": self.dashboard_address if self.dashboard else None
        }
        # Without an interface dask-jobqueue puts the scheduler on the workers' interface;
        # passing interface=None would defeat that.
        if self.scheduler_interface:
            scheduler_options = {"interface": self.scheduler_interface, **scheduler_options}
        kwargs: dict[str, Any] = {
            "cores": self.cores,
            "memory": self.memory,
            "processes": self.processes,
            "queue": self.queue,
            "project": self.project,
            "interface": self.interface,
            "scheduler_options": scheduler_options,
            "local_directory": self.local_directory,
            "job_extra_directives": list(self.job_extra_directives),
            "resource_spec": self.resource_spec,
            "log_directory": self.log_dir,
            "worker_extra_args": list(self.worker_extra_args),
            "job_name": console_job_name(),
        }
        lifetime = self.worker_lifetime()
        if lifetime is not None:
            life, stagger = lifetime
            kwargs["worker_extra_args"] += [
                "--lifetime", f"{int(life)}s", "--lifetime-stagger", f"{int(stagger)}s"
            ]
        if self.walltime is not None:
            kwargs["walltime"] = self.walltime
        if self.interface:
            # The workers' NIC exists on the compute nodes (the login node may lack it): each
            # job checks it on its node first and says so in its output file (core/nodecheck).
            import dask

            from naist_dask_tui.core.nodecheck import interface_prologue

            prologue = list(dask.config.get("jobqueue.sge.job-script-prologue", None) or [])
            kwargs["job_script_prologue"] = [interface_prologue(self.interface), *prologue]
        if self.tls:
            # dask-jobqueue makes temporary certificates and writes the workers' copies (mode
            # 0600) into shared_temp_directory, which the job scripts point to.
            kwargs["security"] = True
            kwargs["shared_temp_directory"] = self.tls_dir
        return kwargs

    def resolved_for_local(
        self, cpu_count: int, total_memory: int, max_workers: int | None = None
    ) -> Settings:
        """Values for a LocalCluster on this machine.

        The built-in profile describes 24-core, 250 GB cluster nodes; on a laptop those make no
        sense, so what came only from a built-in profile is sized to the machine: 2 workers,
        half the CPUs each, 80% of the RAM shared by as many workers as may run (``max_workers``,
        the local ``max_jobs``; default: the starting workers), so that the workers' memory
        limits never add up to more than the machine has. Whatever the user set is kept.
        """
        changes: dict[str, Any] = {}
        notes: list[str] = []
        jobs = self.jobs
        if not self.explicit("jobs"):
            start = min(2, max_workers) if max_workers else 2
            if jobs != start:
                jobs = changes["jobs"] = start
                notes.append(f"jobs {self.jobs} -> {start} local workers (the profile's value is for SGE)")
        if not self.explicit("cores"):
            per = max(1, cpu_count // 2)
            cores = max(self.processes, per - per % self.processes)
            if cores != self.cores:
                changes["cores"] = cores
                notes.append(f"cores {self.cores} -> {cores} threads per worker ({cpu_count} CPUs here)")
        if not self.explicit("memory"):
            from dask.utils import format_bytes

            shared = max(jobs, max_workers or 0, 1)
            memory = format_bytes(int(total_memory * 0.8 / shared)).replace(" ", "")
            if memory != self.memory:
                changes["memory"] = memory
                by = f"up to {shared} workers, max_jobs" if max_workers else str(shared)
                notes.append(
                    f"memory {self.memory} -> {memory} per worker (80% of "
                    f"{format_bytes(total_memory).replace(' ', '')} shared by {by})"
                )
        if not changes:
            return self
        sources = dict(self.sources)
        origins = dict(self.origins)
        for name in changes:
            sources[name] = "profile"
            origins[name] = "built-in profile, sized for this machine"
        return dataclasses.replace(
            self,
            **changes,
            sources=types.MappingProxyType(sources),
            origins=types.MappingProxyType(origins),
            notes=self.notes + tuple(notes),
        )

    def describe(self, backend: str | None = None) -> list[str]:
        """One line per setting: name, value, where it came from. For ``backend`` "local" the
        settings only SGE uses are left out (and named once)."""
        lines = []
        skip = SGE_ONLY if backend == "local" else ()
        for f in _FIELDS:
            if f.name in skip:
                continue
            value = getattr(self, f.name)
            if isinstance(value, tuple):
                value = " ".join(repr(v) for v in value) or "()"
            elif value is None:
                value = "auto (from the backend)" if f.name == "max_jobs" else "-"
            lines.append(f"{f.name:<21} {str(value):<28} {self.origin_of(f.name)}")
        lines.append(f"{'log_dir':<21} {self.log_dir}")
        lines.extend(f"note: {n}" for n in self.notes)
        if skip:
            lines.append(f"note: not used by a local cluster: {', '.join(skip)}")
        return lines


_FIELDS = [
    f for f in dataclasses.fields(Settings)
    if f.name not in ("sources", "origins", "notes", "keys", "config_path")
]
# Settings only an SGE cluster uses (a local cluster ignores them).
SGE_ONLY = (
    "queue", "project", "walltime", "lifetime", "interface", "scheduler_interface",
    "job_extra_directives", "resource_spec", "worker_extra_args", "tls", "skip_interface_check",
)
FIELD_NAMES = tuple(f.name for f in _FIELDS)

BUILTIN_PROFILES: dict[str, dict[str, Any]] = {
    "naist": {},  # the dataclass defaults are the lab's values
    "local": {
        "backend": "local",
        "queue": None,
        "interface": None,
        "scheduler_interface": None,
        "job_extra_directives": (),
    },
}

# --------------------------------------------------------------------------------------------
# Turning raw values (strings from env and flags, TOML values, YAML values) into typed ones.
# Each converter raises SettingsError(field, message) without a source; the caller adds it.


def _parse_size(text: str) -> int:
    from dask.utils import parse_bytes

    return parse_bytes(text)


def _none_if_empty(value: Any) -> Any:
    return None if isinstance(value, str) and value.strip().lower() in ("", "none", "null") else value


def _to_str(name: str, value: Any, optional: bool) -> str | None:
    if optional and _none_if_empty(value) is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise SettingsError(name, f"{value!r} is not a non-empty string")
    return value.strip()


def _to_int(name: str, value: Any, minimum: int, optional: bool = False) -> int | None:
    if optional and _none_if_empty(value) is None:
        return None
    if isinstance(value, bool):
        number = None
    elif isinstance(value, int):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+\s*", value):
        number = int(value)
    else:
        number = None
    if number is None:
        raise SettingsError(name, f"{value!r} is not a whole number; use an integer >= {minimum}")
    if number < minimum:
        raise SettingsError(name, f"{number} is too small; use an integer >= {minimum}")
    return number


def _to_float_positive(name: str, value: Any) -> float:
    try:
        number = float(value) if not isinstance(value, bool) else None
    except (TypeError, ValueError):
        number = None
    if number is None or number != number:
        raise SettingsError(name, f"{value!r} is not a number; use seconds > 0, e.g. 1 or 0.5")
    if number <= 0:
        raise SettingsError(name, f"{value!r} is not > 0; use seconds > 0, e.g. 1 or 0.5")
    return number


_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off", "")


def _to_bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
        return value.strip().lower() in _TRUE
    raise SettingsError(name, f"{value!r} is not a yes/no value; use true or false (1/0, yes/no)")


def _to_memory(name: str, value: Any) -> str:
    text = str(value).strip() if isinstance(value, (str, int)) and not isinstance(value, bool) else None
    accepted = "use a number with a unit, e.g. 250GB or 120GiB"
    if not text:
        raise SettingsError(name, f"{value!r} is not a size; {accepted}")
    try:
        size = _parse_size(text)
    except (ValueError, TypeError):
        raise SettingsError(name, f"{text!r} is not a size; {accepted}") from None
    if size <= 0:
        raise SettingsError(name, f"{text!r} is not a positive size; {accepted}")
    return text


_WALLTIME = re.compile(r"^(\d+):([0-5]?\d):([0-5]?\d)$")


def _to_walltime(name: str, value: Any) -> str | None:
    if _none_if_empty(value) is None:
        return None
    accepted = "use HH:MM:SS (e.g. 01:30:00) or a number of seconds (e.g. 5400)"
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return str(value)
    text = str(value).strip() if isinstance(value, str) else ""
    if (_WALLTIME.match(text) and text.replace(":", "").strip("0")) or (text.isdigit() and int(text) > 0):
        return text
    raise SettingsError(name, f"{value!r} is not a walltime; {accepted}")


def _walltime_seconds(text: str) -> float:
    """Seconds of a walltime already accepted by ``_to_walltime`` (HH:MM:SS or seconds)."""
    text = str(text).strip()
    m = _WALLTIME.match(text)
    if m is None:
        return float(text)
    return float(int(m[1]) * 3600 + int(m[2]) * 60 + int(m[3]))


def _stagger(seconds: float) -> float:
    """The workers' ``--lifetime-stagger`` for a span: 5% of it, at most 5 minutes."""
    return min(300.0, 0.05 * seconds)


def _duration_seconds(text: str) -> float:
    from dask.utils import parse_timedelta

    return float(parse_timedelta(text, default="s"))


def _to_lifetime(name: str, value: Any) -> str:
    accepted = "use auto (end before the walltime), off, or a duration such as 50m, 1h or 3000"
    if isinstance(value, bool) or value is None:
        raise SettingsError(name, f"{value!r} is not a lifetime; {accepted}")
    text = str(value).strip().lower().replace(" ", "")
    if text in ("auto", "off"):
        return text
    if text in ("none", "no", "false", "0"):
        return "off"
    try:
        seconds = _duration_seconds(text)
    except (ValueError, TypeError, KeyError):
        raise SettingsError(name, f"{value!r} is not a lifetime; {accepted}") from None
    if not seconds > 0:
        raise SettingsError(name, f"{value!r} is not a lifetime; {accepted}")
    return text


def _to_idle_timeout(name: str, value: Any) -> str:
    accepted = "use a duration such as 20m, 2h or 600 (seconds), or off"
    if isinstance(value, bool) or value is None:
        raise SettingsError(name, f"{value!r} is not an idle timeout; {accepted}")
    text = str(value).strip().lower().replace(" ", "")
    if text in ("off", "none", "no", "false", "never"):
        return "off"
    try:
        seconds = _duration_seconds(text)
    except (ValueError, TypeError, KeyError):
        raise SettingsError(name, f"{value!r} is not an idle timeout; {accepted}") from None
    if not seconds > 0:
        raise SettingsError(name, f"{value!r} is not an idle timeout; {accepted}")
    return text


def _to_backend(name: str, value: Any) -> str:
    text = value.strip().lower() if isinstance(value, str) else value
    if text not in BACKENDS:
        raise SettingsError(name, f"{value!r} is not a backend; use one of {', '.join(BACKENDS)}")
    return text


def _to_address(name: str, value: Any) -> str | None:
    if _none_if_empty(value) is None:
        return None
    accepted = "use host:port, optionally with tcp:// or tls://, e.g. tcp://login1:8786"
    text = value.strip() if isinstance(value, str) else ""
    if not text:
        raise SettingsError(name, f"{value!r} is not a scheduler address; {accepted}")
    if "://" not in text:
        text = "tcp://" + text
    from distributed.comm import parse_address
    from distributed.comm.addressing import parse_host_port

    try:
        scheme, loc = parse_address(text)
        if scheme not in ("tcp", "tls"):
            raise ValueError(scheme)
        host, port = parse_host_port(loc)
        if not host or not 0 < int(port) < 65536:
            raise ValueError(loc)
    except (ValueError, TypeError):
        raise SettingsError(name, f"{value!r} is not a scheduler address; {accepted}") from None
    return text


def _to_dashboard_address(name: str, value: Any) -> str:
    text = value.strip() if isinstance(value, str) else str(value) if isinstance(value, int) else ""
    m = re.fullmatch(r"(?:(\[[0-9a-fA-F:]+\]|[^:\s]*):)?(\d+)", text)
    if not m or not 0 <= int(m[2]) < 65536:
        raise SettingsError(
            name, f"{value!r} is not a dashboard address; use [HOST]:PORT, e.g. 127.0.0.1:8787 or :8787"
        )
    return text


def _to_list(name: str, value: Any, splitter: Callable[[str], list[str]]) -> tuple[str, ...]:
    if isinstance(value, str):
        items = splitter(value)
    elif isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        items = list(value)
    else:
        raise SettingsError(name, f"{value!r} is not a list of strings")
    return tuple(s.strip() for s in items if s.strip())


def _split_semicolons(text: str) -> list[str]:
    return text.split(";")


def _split_shell(text: str) -> list[str]:
    try:
        return shlex.split(text)
    except ValueError as e:
        raise SettingsError("worker_extra_args", f"{text!r} cannot be split like a shell line ({e})") from None


def _to_profile(name: str, value: Any) -> str:
    return _to_str(name, value, optional=False)  # type: ignore[return-value]


_CONVERT: dict[str, Callable[[str, Any], Any]] = {
    "profile": _to_profile,
    "backend": _to_backend,
    "attach": _to_address,
    "jobs": lambda n, v: _to_int(n, v, 0),
    "max_jobs": lambda n, v: _to_int(n, v, 1, optional=True),
    "cores": lambda n, v: _to_int(n, v, 1),
    "processes": lambda n, v: _to_int(n, v, 1),
    "memory": _to_memory,
    "queue": lambda n, v: _to_str(n, v, True),
    "project": lambda n, v: _to_str(n, v, True),
    "walltime": _to_walltime,
    "lifetime": _to_lifetime,
    "interface": lambda n, v: _to_str(n, v, True),
    "scheduler_interface": lambda n, v: _to_str(n, v, True),
    "local_directory": lambda n, v: _to_str(n, v, True),
    "job_extra_directives": lambda n, v: _to_list(n, v, _split_semicolons),
    "resource_spec": lambda n, v: _to_str(n, v, True),
    "log_directory": lambda n, v: _to_str(n, v, True),
    "worker_extra_args": lambda n, v: _to_list(n, v, _split_shell),
    "dashboard": _to_bool,
    "dashboard_address": _to_dashboard_address,
    "refresh_interval": _to_float_positive,
    "adapt_min": lambda n, v: _to_int(n, v, 0, optional=True),
    "adapt_max": lambda n, v: _to_int(n, v, 0, optional=True),
    "skip_interface_check": _to_bool,
    "tls": _to_bool,
    "idle_timeout": _to_idle_timeout,
}
assert set(_CONVERT) == set(FIELD_NAMES), set(_CONVERT) ^ set(FIELD_NAMES)


def convert(name: str, value: Any, source: str | None = None) -> Any:
    """The typed value of one field, or SettingsError naming the field and the source."""
    try:
        return _CONVERT[name](name, value)
    except SettingsError as e:
        if e.source is None:
            e.source = source
        raise


# --------------------------------------------------------------------------------------------
# The layers. Each yields {field: (raw value, origin)}.

Layer = dict[str, tuple[Any, str]]

# The flag that sets a field when it is not simply --field-name.
CLI_FLAGS = {
    "job_extra_directives": "--job-extra-directive",
    "adapt_min": "--adapt",
    "adapt_max": "--adapt",
    "dashboard_address": "--dashboard",
}

# dask-jobqueue's jobqueue.sge keys that mean one of our fields.
DASK_KEYS = {
    "cores": "cores",
    "memory": "memory",
    "processes": "processes",
    "queue": "queue",
    "project": "project",
    "walltime": "walltime",
    "interface": "interface",
    "local-directory": "local_directory",
    "job-extra-directives": "job_extra_directives",
    "resource-spec": "resource_spec",
    "log-directory": "log_directory",
    "worker-extra-args": "worker_extra_args",
    "scheduler-options.interface": "scheduler_interface",
}
# What dask-jobqueue 0.9 ships for those keys, used if its jobqueue.yaml cannot be read.
_FALLBACK_DASK_DEFAULTS = {
    "cores": None,
    "memory": None,
    "processes": None,
    "queue": None,
    "project": None,
    "walltime": "00:30:00",
    "interface": None,
    "local-directory": None,
    "job-extra-directives": [],
    "resource-spec": None,
    "log-directory": None,
    "worker-extra-args": [],
    "scheduler-options.interface": None,
    "job-extra": None,
}


def _xdg_home(var: str, fallback: str, env: Mapping[str, str] | None = None) -> str:
    env = os.environ if env is None else env
    value = env.get(var)
    return value if value and os.path.isabs(value) else os.path.join(os.path.expanduser("~"), fallback)


def default_config_path(env: Mapping[str, str] | None = None) -> Path:
    return Path(_xdg_home("XDG_CONFIG_HOME", ".config", env)) / APP_DIR / "config.toml"


def _flatten_dask(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """jobqueue.sge as {"key": value, "scheduler-options.interface": value}, keys hyphenated."""
    flat: dict[str, Any] = {}
    for key, value in cfg.items():
        key = str(key).replace("_", "-")
        if key == "scheduler-options" and isinstance(value, Mapping):
            for sub, subvalue in value.items():
                flat[f"scheduler-options.{str(sub).replace('_', '-')}"] = subvalue
        else:
            flat[key] = value
    return flat


def jobqueue_shipped_defaults() -> dict[str, Any]:
    """The ``jobqueue.sge`` defaults dask-jobqueue ships (read from its jobqueue.yaml)."""
    return dict(_read_jobqueue_shipped_defaults())


@functools.lru_cache(maxsize=1)
def _read_jobqueue_shipped_defaults() -> dict[str, Any]:
    # Read once: the walltime fallback is asked for by validation and by the controller.
    try:
        spec = importlib.util.find_spec("dask_jobqueue")
        directory = spec.submodule_search_locations[0] if spec and spec.submodule_search_locations else None
        if directory is None:
            return dict(_FALLBACK_DASK_DEFAULTS)
        import yaml

        with open(os.path.join(directory, "jobqueue.yaml")) as f:
            shipped = yaml.safe_load(f)["jobqueue"]["sge"]
        return _flatten_dask(shipped)
    except (OSError, KeyError, TypeError, ImportError):
        return dict(_FALLBACK_DASK_DEFAULTS)


def _same(a: Any, b: Any) -> bool:
    norm = lambda v: list(v) if isinstance(v, tuple) else v  # noqa: E731
    return norm(a) == norm(b)


def dask_config_layer(dask_config: Mapping[str, Any] | None = None) -> Layer:
    """The user's ``jobqueue.sge`` values that differ from what dask-jobqueue ships."""
    if dask_config is None:
        import dask.config

        dask_config = dask.config.get("jobqueue.sge", default=None) or {}
    flat = _flatten_dask(dask_config)
    defaults = jobqueue_shipped_defaults()
    layer: Layer = {}
    for key, name in DASK_KEYS.items():
        if key in flat and not _same(flat[key], defaults.get(key)):
            if flat[key] is None:
                continue  # dask-jobqueue's "not set"
            layer[name] = (flat[key], f"dask config jobqueue.sge.{key}")
    # The pre-0.8 name, honoured when the new one is not set (dask-jobqueue does the same).
    old = flat.get("job-extra")
    if old and "job_extra_directives" not in layer:
        layer["job_extra_directives"] = (old, "dask config jobqueue.sge.job-extra")
    return layer


@dataclass
class _ConfigFile:
    path: Path | None
    top: Layer
    profile: tuple[str, str] | None  # (name, origin)
    profiles: dict[str, tuple[Layer, str | None, str]]  # name -> (values, inherits, origin)
    keys: dict[str, Any] = field(default_factory=dict)  # the [keys] table, raw


def _check_keys(table: Mapping[str, Any], allowed: set[str], where: str, path: Path) -> Layer:
    layer: Layer = {}
    for key, value in table.items():
        name = key.replace("-", "_")
        if name not in allowed:
            known = ", ".join(sorted(k for k in allowed if k != "profiles"))
            raise SettingsError(
                key, f"unknown setting {key!r}{where} in {path}; known settings: {known}", source=str(path)
            )
        layer[name] = (value, f"{path}{where}")
    return layer


def read_config_file(path: Path | None, explicit: bool) -> _ConfigFile:
    """Parse our TOML file; a missing default file is fine, a missing --config file is not."""
    empty = _ConfigFile(None, {}, None, {})
    if path is None:
        return empty
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        if explicit:
            raise SettingsError("config", f"{str(path)!r} does not exist; give the path of a TOML file") from None
        return empty
    except tomllib.TOMLDecodeError as e:
        raise SettingsError("config", f"{path} is not valid TOML: {e}") from None
    except OSError as e:
        raise SettingsError("config", f"{path} cannot be read: {e.strerror or e}") from None

    keys = data.pop("keys", None)
    if keys is not None and not isinstance(keys, dict):
        raise SettingsError("keys", f"must be a table ([keys], binding id = \"key\") in {path}", str(path))
    allowed = set(FIELD_NAMES) | {"profiles"}
    top = _check_keys(data, allowed, "", path)
    profile = None
    if "profile" in top:
        value, origin = top.pop("profile")
        profile = (convert("profile", value, origin), origin)
    profiles: dict[str, tuple[Layer, str | None, str]] = {}
    raw_profiles = top.pop("profiles", (None, ""))[0]
    if raw_profiles is not None:
        if not isinstance(raw_profiles, dict):
            raise SettingsError("profiles", f"must be a table of [profiles.NAME] tables in {path}", str(path))
        for name, table in raw_profiles.items():
            where = f" [profiles.{name}]"
            if not isinstance(table, dict):
                raise SettingsError("profiles", f"{name!r} must be a table{where} in {path}", str(path))
            values = _check_keys(table, (set(FIELD_NAMES) - {"profile"}) | {"inherits"}, where, path)
            inherits = values.pop("inherits", (None, ""))[0]
            if inherits is not None and not isinstance(inherits, str):
                raise SettingsError("inherits", f"{inherits!r} is not a profile name{where} in {path}", str(path))
            profiles[name] = (values, inherits, f"{path}{where}")
    return _ConfigFile(path, top, profile, profiles, dict(keys or {}))


def profile_layer(name: str, source: str, config: _ConfigFile) -> Layer:
    """The values of a profile: built-in, user-defined, or a built-in extended by the user."""
    known = sorted(set(BUILTIN_PROFILES) | set(config.profiles))

    def resolve(current: str, chain: tuple[str, ...]) -> Layer:
        if current in chain:
            loop = " -> ".join(chain + (current,))
            raise SettingsError("inherits", f"profiles inherit in a circle: {loop}", str(config.path))
        layer: Layer = {}
        user = config.profiles.get(current)
        inherits = user[1] if user else None
        if inherits is not None:
            if inherits not in BUILTIN_PROFILES and inherits not in config.profiles:
                raise SettingsError(
                    "inherits", f"{inherits!r} is not a profile; known profiles: {', '.join(known)}", user[2]
                )
            layer.update(resolve(inherits, chain + (current,)))
        elif current in BUILTIN_PROFILES:
            layer.update(
                (k, (v, f"built-in profile {current}")) for k, v in BUILTIN_PROFILES[current].items()
            )
        if user:
            layer.update(user[0])
        return layer

    if name not in BUILTIN_PROFILES and name not in config.profiles:
        raise SettingsError("profile", f"{name!r} is not a profile; known profiles: {', '.join(known)}", source)
    return resolve(name, ())


def env_layer(env: Mapping[str, str]) -> Layer:
    layer: Layer = {}
    for name in FIELD_NAMES:
        var = ENV_PREFIX + name.upper()
        if var in env:
            layer[name] = (env[var], var)
    return layer


def cli_layer(overrides: Mapping[str, Any]) -> Layer:
    layer: Layer = {}
    for name, value in overrides.items():
        if name not in FIELD_NAMES:
            raise SettingsError(name, f"is not a setting; known settings: {', '.join(FIELD_NAMES)}", "command line")
        if value is None:
            continue
        layer[name] = (value, CLI_FLAGS.get(name, "--" + name.replace("_", "-")))
    return layer


# --------------------------------------------------------------------------------------------
# Putting it together


def load_settings(
    cli_overrides: Mapping[str, Any] | None = None,
    config_path: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    profile: str | None = None,
    dask_config: Mapping[str, Any] | None = None,
) -> Settings:
    """Layer profile < dask config < config file < env < CLI, validate, return Settings.

    ``cli_overrides`` maps field names to values (strings are parsed; None means "not given").
    ``env`` is where the ``NAIST_DASK_TUI_*`` variables are read (default ``os.environ``); the
    XDG directories, like HOME, always come from the process environment. ``dask_config`` is
    the ``jobqueue.sge`` mapping; by default it is read from ``dask.config``.
    """
    env = os.environ if env is None else env
    cli = dict(cli_overrides or {})
    if profile is None:
        profile = cli.pop("profile", None)
    else:
        cli.pop("profile", None)

    explicit_path = config_path is not None or bool(env.get(ENV_PREFIX + "CONFIG"))
    if config_path is not None:
        path: Path | None = Path(config_path).expanduser()
    elif env.get(ENV_PREFIX + "CONFIG"):
        path = Path(env[ENV_PREFIX + "CONFIG"]).expanduser()
    else:
        path = default_config_path()
    config = read_config_file(path, explicit_path)

    if profile is not None:
        profile_source = ("cli", "--profile")
    elif env.get(ENV_PREFIX + "PROFILE"):
        profile, profile_source = env[ENV_PREFIX + "PROFILE"], ("env", ENV_PREFIX + "PROFILE")
    elif config.profile is not None:
        profile, profile_source = config.profile[0], ("config-file", config.profile[1])
    else:
        profile, profile_source = "naist", ("profile", "built-in profile naist")
    profile = convert("profile", profile, profile_source[1])

    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    origins: dict[str, str] = {}
    for f in _FIELDS:
        sources[f.name] = "profile"
        origins[f.name] = f"built-in profile {profile if profile in BUILTIN_PROFILES else 'naist'}"
    layers: list[tuple[str, Layer]] = [
        ("profile", profile_layer(profile, profile_source[1], config)),
        ("dask-config", dask_config_layer(dask_config)),
        ("config-file", config.top),
        ("env", {k: v for k, v in env_layer(env).items() if k != "profile"}),
        ("cli", cli_layer(cli)),
    ]
    for layer_name, layer in layers:
        for name, (raw, origin) in layer.items():
            values[name] = convert(name, raw, origin)
            sources[name] = layer_name
            origins[name] = origin
    values["profile"] = profile
    sources["profile"], origins["profile"] = profile_source

    settings = Settings(
        **values, sources=types.MappingProxyType(sources), origins=types.MappingProxyType(origins),
        keys=types.MappingProxyType(config.keys),
        config_path=str(config.path) if config.path is not None else None,
    )
    _check_together(settings)
    return settings


def _later(settings: Settings, a: str, b: str) -> str:
    """Of two fields, the one set by the higher layer (the one to blame)."""
    return b if LAYERS.index(settings.source_of(b)) >= LAYERS.index(settings.source_of(a)) else a


def _check_together(s: Settings) -> None:
    if s.cores % s.processes:
        blame = _later(s, "cores", "processes")
        raise SettingsError(
            blame,
            f"cores {s.cores} cannot be split evenly into {s.processes} processes; "
            f"use cores divisible by processes (cores from {s.origin_of('cores')}, "
            f"processes from {s.origin_of('processes')})",
        )
    if s.adapt_min is not None and s.adapt_max is not None and s.adapt_min > s.adapt_max:
        blame = _later(s, "adapt_min", "adapt_max")
        raise SettingsError(
            "adapt",
            f"minimum {s.adapt_min} is above maximum {s.adapt_max}; use MIN:MAX with MIN <= MAX",
            s.origin_of(blame),
        )
    lifetime, wall = s.worker_lifetime(), s.walltime_seconds
    if s.lifetime != "auto" and lifetime is not None and wall is not None and sum(lifetime) >= wall:
        blame = _later(s, "walltime", "lifetime")
        raise SettingsError(
            blame,
            f"lifetime {s.lifetime} (plus its 5% stagger) does not end before the walltime "
            f"{s.effective_walltime}: SGE would kill the workers with their data first; use a "
            "shorter lifetime, a longer walltime, or lifetime auto",
            s.origin_of(blame),
        )


def validate(settings: Settings) -> Settings:
    """Check a Settings built by hand (not through load_settings) the same way."""
    for f in _FIELDS:
        value = getattr(settings, f.name)
        convert(f.name, list(value) if isinstance(value, tuple) else value, settings.origin_of(f.name))
    _check_together(settings)
    return settings
