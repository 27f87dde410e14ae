"""The settings object: each setting declared once, as one field (see :mod:`settings_fields`).

The defaults are the ``naist`` profile: the lab's values.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from naist_dask_tui.core import paths, settings_convert as convert
from naist_dask_tui.core.jobnames import console_job_name
from naist_dask_tui.core.settings_convert import BACKENDS, SettingsError
from naist_dask_tui.core.settings_fields import Flag, Origin, declared, setting, table


def _adapt_fields(text: str) -> dict[str, str | None]:
    """``--adapt MIN:MAX`` (either side may be empty) -> adapt_min, adapt_max."""
    parts = text.split(":")
    if len(parts) != 2 or not any(part.strip() for part in parts):
        raise SettingsError(
            "adapt", f"{text!r} is not MIN:MAX; use two whole numbers of jobs, e.g. 2:10", "--adapt"
        )
    low, high = (part.strip() or None for part in parts)
    return {"adapt_min": low, "adapt_max": high}


def _dashboard_fields(value: Any) -> dict[str, Any]:
    """``--dashboard`` alone switches it on; ``--dashboard ADDRESS`` also sets the address."""
    return {"dashboard": True} if value is True else {"dashboard": True, "dashboard_address": value}


_ADAPT = Flag("--adapt", "MIN:MAX", "start with adaptive scaling between MIN and MAX jobs",
              dest="adapt", to_fields=_adapt_fields)
_DASHBOARD = Flag("--dashboard", "ADDRESS", "also serve the Dask dashboard (default address 127.0.0.1:8787)",
                  nargs="?", const=True, to_fields=_dashboard_fields)
_text, _int = convert.text, convert.integer


@dataclass(frozen=True)
class Settings:
    """Everything the console needs to start, scale and watch a cluster. Defaults = ``naist``."""

    # name: type = setting(default, converter, help, flag or metavar, dask key, sge_only...)
    profile: str = setting("naist", _text(optional=False), "settings profile (built-in: naist, local)",
                           metavar="NAME")
    backend: str = setting("auto", convert.backend, "auto: SGE if qsub is found, else a LocalCluster",
                           flag=Flag("--backend", choices=BACKENDS))
    attach: str | None = setting(None, convert.scheduler_address,
                                 "attach to a running scheduler, e.g. tcp://host:8786", metavar="ADDRESS")
    jobs: int = setting(10, _int(0), "number of SGE jobs to start with (local: workers)", metavar="N")
    max_jobs: int | None = setting(  # None: from the backend, see core/limits.py
        None, _int(1, optional=True),
        "refuse any request for more jobs than this (default: SGE: 2 x what the queue runs at once; "
        "local: the machine's cores)",
        metavar="N", unset="auto (from the backend)")
    cores: int = setting(24, _int(1), "cores (threads) per job", metavar="N", dask="cores")
    processes: int = setting(1, _int(1), "dask worker processes per job; cores must divide evenly",
                             metavar="N", dask="processes")
    memory: str = setting("250GB", convert.size, "memory per job, e.g. 250GB or 120GiB",
                          metavar="SIZE", dask="memory")
    queue: str | None = setting("grid_short.q", _text(), "SGE queue (-q)",
                                metavar="NAME", dask="queue", sge_only=True)
    project: str | None = setting(None, _text(), "SGE project (-P)",
                                  metavar="NAME", dask="project", sge_only=True)
    walltime: str | None = setting(None, convert.walltime, "job walltime (-l h_rt); default: dask-jobqueue's",
                                   metavar="HH:MM:SS", dask="walltime", dask_default="00:30:00", sge_only=True)
    lifetime: str = setting(
        "auto", convert.lifetime,
        "workers retire gracefully, handing over their data, after this long; auto (default): shortly "
        "before the walltime; off: let SGE kill them at the walltime",
        metavar="DURATION", sge_only=True)
    interface: str | None = setting("ib0", _text(), "the workers' network interface, e.g. ib0",
                                    metavar="NIC", dask="interface", sge_only=True)
    scheduler_interface: str | None = setting(
        "bond1", _text(), "this host's network interface for the scheduler, e.g. bond1",
        metavar="NIC", dask="scheduler-options.interface", sge_only=True)
    local_directory: str | None = setting("/var/tmp", _text(), "the workers' fast local storage for spilling",
                                          metavar="DIR", dask="local-directory")
    job_extra_directives: tuple[str, ...] = setting(
        ("-pe smp 24",), convert.string_list(convert.split_semicolons),
        "extra '#$' job directive, repeatable, replaces the profile's list: "
        "--job-extra-directive '-pe smp 24' --job-extra-directive=-V",
        flag=Flag("--job-extra-directive", "DIRECTIVE", action="append"),
        dask="job-extra-directives", dask_default=(), sge_only=True)
    resource_spec: str | None = setting(None, _text(), "SGE resource request (-l), e.g. mem_free=250G",
                                        metavar="SPEC", dask="resource-spec", sge_only=True)
    log_directory: str | None = setting(None, _text(), "where SGE writes the jobs' output (default: XDG state dir)",
                                        metavar="DIR", dask="log-directory")
    worker_extra_args: tuple[str, ...] = setting(  # no flag: config file, env, dask config
        (), convert.string_list(convert.split_shell),
        "more arguments of the dask worker command (a string is split like a shell line)",
        dask="worker-extra-args", dask_default=(), sge_only=True)
    dashboard: bool = setting(False, convert.yes_no, "serve the Dask dashboard", flag=_DASHBOARD)
    dashboard_address: str = setting("127.0.0.1:8787", convert.dashboard_address,
                                     "where the dashboard listens, [HOST]:PORT", flag=_DASHBOARD)
    refresh_interval: float = setting(1.0, convert.positive_seconds, "how often the screen polls the scheduler",
                                      metavar="SECONDS")
    adapt_min: int | None = setting(None, _int(0, optional=True), "adaptive scaling: fewest jobs", flag=_ADAPT)
    adapt_max: int | None = setting(None, _int(0, optional=True), "adaptive scaling: most jobs", flag=_ADAPT)
    skip_interface_check: bool = setting(
        False, convert.yes_no, "do not check that the interfaces exist here",
        flag=Flag("--skip-interface-check", action="store_true"), sge_only=True)
    # Anyone who reaches a plain scheduler port can run code as you.
    tls: bool = setting(
        True, convert.yes_no, "TLS with mutual authentication between scheduler, workers and console",
        flag=Flag("--no-tls", action="store_false",
                  help="SGE: plain TCP between scheduler and workers (default: TLS with mutual authentication)"),
        sge_only=True)
    # dask's own fuse_roots no longer fuses task-spec graphs: chunks are copied between workers
    fuse_roots: bool = setting(
        True, convert.yes_no,
        "compute pane: make each chunk in the task that uses it (x_i and y_i of x + y), not on "
        "another worker and copied",
        flag=Flag("--no-fuse-roots", action="store_false",
                  help="compute pane: leave dask.array's graphs as dask optimizes them (default: fuse each "
                       "task's root chunks into it, so they are not copied between workers)"))
    idle_timeout: str = setting(
        "20m", convert.idle_timeout,
        "stop the cluster and delete its jobs after this long with no screen attached, no computation "
        "and no task (default 20m; off: never)",
        metavar="DURATION")
    # The binding ids live in the screens' modules: naist_dask_tui.keymap checks this table.
    keys: Mapping[str, str] = table("the config file's key bindings: binding id -> keys", '[keys], binding id = "key"')

    # -- not settings: what the loader found out about them --------------------------------------
    provenance: Mapping[str, Origin] = field(default_factory=dict, compare=False, repr=False)
    notes: tuple[str, ...] = field(default=(), compare=False, repr=False)  # what resolved_for_local did
    config_path: str | None = field(default=None, compare=False, repr=False)  # where keys came from

    # -- where the values came from ----------------------------------------------------------------

    @property
    def sources(self) -> Mapping[str, str]:
        """Field -> the layer that set it (a view of ``provenance``)."""
        return types.MappingProxyType({k: o.layer for k, o in self.provenance.items()})

    @property
    def origins(self) -> Mapping[str, str]:
        """Field -> exactly where its value came from (a view of ``provenance``)."""
        return types.MappingProxyType({k: o.where for k, o in self.provenance.items()})

    def source_of(self, name: str) -> str:
        origin = self.provenance.get(name)
        return origin.layer if origin else "profile"

    def origin_of(self, name: str) -> str:
        origin = self.provenance.get(name)
        return origin.where if origin else f"built-in profile {self.profile}"

    def explicit(self, name: str) -> bool:
        """True if the user chose this value (anything but a built-in profile's default)."""
        return not self.origin_of(name).startswith("built-in")

    def with_values(self, origin: Origin, notes: tuple[str, ...] = (), **values: Any) -> Settings:
        """A copy with ``values`` set, each recorded as coming from ``origin``."""
        provenance = dict(self.provenance, **dict.fromkeys(values, origin))
        return dataclasses.replace(
            self, **values, provenance=types.MappingProxyType(provenance), notes=self.notes + notes
        )

    # -- derived values ------------------------------------------------------------------------------

    @property
    def memory_bytes(self) -> int:
        return convert.parse_size(self.memory)

    @property
    def log_dir(self) -> str:
        if self.log_directory:
            return os.path.expanduser(self.log_directory)
        return str(paths.logs_dir())

    @property
    def tls_dir(self) -> str:
        """Where the workers' temporary TLS credentials are written: under the home directory
        (the compute nodes see it), one directory per console, readable by the user alone."""
        return str(paths.tls_dir(os.getpid()))

    @property
    def effective_walltime(self) -> str | None:
        """The jobs' walltime: ours, or dask-jobqueue's default (None if unknown)."""
        from naist_dask_tui.core.settings_layers import jobqueue_shipped_defaults

        return self.walltime or jobqueue_shipped_defaults().get("walltime")

    @property
    def walltime_seconds(self) -> float | None:
        text = self.effective_walltime
        return convert.walltime_seconds(text) if text else None

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
        life = convert.duration_seconds(self.lifetime)
        return (life, _stagger(life))

    @property
    def idle_timeout_seconds(self) -> float | None:
        return None if self.idle_timeout == "off" else convert.duration_seconds(self.idle_timeout)

    @property
    def adaptive(self) -> bool:
        return self.adapt_min is not None or self.adapt_max is not None

    @property
    def adapt_bounds(self) -> tuple[int, int] | None:
        """(minimum, maximum) jobs of adaptive scaling at start; None when it is off."""
        if not self.adaptive:
            return None
        lo = self.adapt_min or 0
        return lo, (self.adapt_max if self.adapt_max is not None else max(lo, self.jobs))

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

    # -- what the backends receive -------------------------------------------------------------

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
        sized = Origin("profile", "built-in profile, sized for this machine")
        return self.with_values(sized, tuple(notes), **changes)

    def describe(self, backend: str | None = None) -> list[str]:
        """One line per setting: name, value, where it came from. For ``backend`` "local" the
        settings only SGE uses are left out (and named once)."""
        lines = []
        specs = declared(type(self))
        skip = tuple(n for n, spec in specs.items() if spec.sge_only) if backend == "local" else ()
        for name, spec in specs.items():
            if name in skip:
                continue
            value = getattr(self, name)
            if isinstance(value, tuple):
                value = " ".join(repr(v) for v in value) or "()"
            elif value is None:
                value = spec.unset
            lines.append(f"{name:<21} {str(value):<28} {self.origin_of(name)}")
        lines.append(f"{'log_dir':<21} {self.log_dir}")
        lines.extend(f"note: {n}" for n in self.notes)
        if skip:
            lines.append(f"note: not used by a local cluster: {', '.join(skip)}")
        return lines


def _stagger(seconds: float) -> float:
    """The workers' ``--lifetime-stagger`` for a span: 5% of it, at most 5 minutes."""
    return min(300.0, 0.05 * seconds)


# Derived from the declarations above.
SETTINGS = declared(Settings)  # name -> Spec, in declaration order
FIELD_NAMES = tuple(SETTINGS)
SGE_ONLY = tuple(name for name, spec in SETTINGS.items() if spec.sge_only)

BUILTIN_PROFILES: dict[str, dict[str, Any]] = {
    "naist": {},  # the declared defaults are the lab's values
    "local": {
        "backend": "local",
        "queue": None,
        "interface": None,
        "scheduler_interface": None,
        "job_extra_directives": (),
    },
}
