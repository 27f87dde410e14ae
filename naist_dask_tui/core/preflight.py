"""Can these settings start a cluster here? Checked before anything is submitted.

Each check says what it found and, when something is wrong, what to do about it. SGE's own
words (a command's stderr) are kept in the message: they are what an admin will recognise.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass

from naist_dask_tui.core import sge
from naist_dask_tui.core.settings import Settings, SettingsError

TIMEOUT = 10.0  # seconds; qconf on a loaded qmaster can be slow, but not this slow


@dataclass(frozen=True)
class Check:
    name: str  # short: "qsub", "queue", "pe smp", "interface", ...
    ok: bool
    detail: str  # one sentence a user can act on
    severity: str = "error"  # error | warning | info: only errors block a start
    field: str | None = None  # the setting to blame, for require_ready()

    @property
    def failed(self) -> bool:
        return not self.ok and self.severity == "error"

    def line(self) -> str:
        """``ok    ...`` / ``FAIL  ...`` / ``warn  ...`` / ``note  ...``, for --check."""
        status = "ok" if self.ok else {"error": "FAIL", "warning": "warn"}.get(self.severity, "note")
        return f"{status:<6}{self.detail}"


def _run(command: list[str], timeout: float = TIMEOUT) -> str:
    """stdout of a command, or sge.CommandFailed with its own words."""
    return sge.output(command, timeout=timeout)


def _sge_commands(which: Callable[[str], str | None]) -> list[Check]:
    checks = []
    for command in ("qsub", "qstat", "qdel"):
        path = which(command)
        if path:
            checks.append(Check(command, True, f"{command} found: {path}", field="backend"))
        elif command == "qsub":
            checks.append(Check(
                command, False,
                "qsub not found on PATH: not an SGE login node? use --backend local "
                "(or load your site's SGE environment: source $SGE_ROOT/default/common/settings.sh)",
                field="backend"))
        else:
            checks.append(Check(command, False, f"{command} not found on PATH", field="backend"))
    return checks


def _queues(which: Callable[[str], str | None]) -> tuple[list[str], str]:
    """Queue names, and which command told us. Raises sge.CommandFailed."""
    if which("qconf"):
        return _run(["qconf", "-sql"]).split(), "qconf -sql"
    if which("qstat"):
        lines = _run(["qstat", "-g", "c"]).splitlines()
        # CLUSTER QUEUE  CQLOAD ...  /  ------  /  grid_short.q  0.06 ...
        names = [ln.split()[0] for ln in lines if ln.strip() and not ln.startswith(("CLUSTER", "-"))]
        return names, "qstat -g c"
    raise sge.CommandFailed("neither qconf nor qstat is on PATH")


def _queue_check(settings: Settings, which: Callable[[str], str | None]) -> list[Check]:
    queue = settings.queue
    if not queue:
        return [Check("queue", True, "no queue given: SGE picks one", field="queue")]
    try:
        names, via = _queues(which)
    except sge.CommandFailed as e:
        return [Check("queue", False, f"queue {queue} could not be checked: {e}", field="queue")]
    # -q also takes "queue@host" and wildcard lists; check the plain names we can.
    wanted = [q.split("@")[0] for q in queue.split(",")]
    missing = [q for q in wanted if q and not any(c in q for c in "*?[") and q not in names]
    if missing:
        return [
            Check(
                "queue",
                False,
                f"queue {', '.join(missing)} does not exist (from {via}); "
                f"existing queues: {', '.join(names) or 'none'}; use --queue NAME",
                field="queue",
            )
        ]
    return [Check("queue", True, f"queue {queue} exists", field="queue")]


def _pe_checks(settings: Settings, which: Callable[[str], str | None]) -> list[Check]:
    wanted = settings.pe_directives()
    if not wanted:
        return []
    if not which("qconf"):
        return [
            Check(f"pe {name}", False, f"parallel environment {name} not checked: qconf not found",
                  severity="warning", field="job_extra_directives")
            for name, _ in wanted
        ]
    try:
        existing = _run(["qconf", "-spl"]).split()
    except sge.CommandFailed as e:
        return [Check("pe", False, f"parallel environments could not be listed: {e}",
                      field="job_extra_directives")]
    checks = []
    for name, slots in wanted:
        if name not in existing:
            checks.append(Check(
                f"pe {name}", False,
                f"parallel environment {name} does not exist (from qconf -spl); existing: "
                f"{', '.join(existing) or 'none'}; fix the '-pe {name} {slots}' job directive",
                field="job_extra_directives"))
            continue
        checks.append(Check(f"pe {name}", True, f"parallel environment {name} exists",
                            field="job_extra_directives"))
        checks.extend(_pe_in_queue(settings.queue, name))
        if slots != settings.cores:
            checks.append(Check(
                f"pe {name} slots", False,
                f"'-pe {name} {slots}' asks for {slots} slots but each job runs {settings.cores} "
                "threads; make them equal so SGE reserves what dask uses",
                severity="warning", field="job_extra_directives"))
    return checks


def _pe_in_queue(queue: str | None, pe: str) -> list[Check]:
    """A warning when the queue's pe_list does not name the PE (jobs would wait forever)."""
    if not queue or any(c in queue for c in ",*?[@"):
        return []
    try:
        text = _run(["qconf", "-sq", queue])
    except sge.CommandFailed:
        return []  # the queue check already says what is wrong with it
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("pe_list"):
            value = line.split(None, 1)[1] if len(line.split(None, 1)) > 1 else ""
            j = i + 1
            while value.rstrip().endswith("\\") and j < len(lines):  # qconf wraps long values
                value = value.rstrip()[:-1] + " " + lines[j].strip()
                j += 1
            names = value.replace(",", " ").replace("[", " ").replace("]", " ").replace("=", " ").split()
            if pe not in names:
                return [Check(f"pe {pe} in {queue}", False,
                              f"queue {queue} does not list parallel environment {pe} in its pe_list "
                              f"({value.strip()}); jobs would stay pending",
                              severity="warning", field="job_extra_directives")]
            return []
    return []


def _interface_checks(settings: Settings) -> list[Check]:
    if settings.skip_interface_check:
        return [Check("interfaces", True, "network interface check skipped (--skip-interface-check)")]
    import psutil

    existing = sorted(psutil.net_if_addrs())
    checks = []
    value = settings.scheduler_interface
    if value and value in existing:
        checks.append(Check("scheduler_interface", True,
                            f"scheduler interface {value} exists on this host", field="scheduler_interface"))
    elif value:
        # The scheduler runs here: its interface must exist here.
        checks.append(Check(
            "scheduler_interface", False,
            f"scheduler interface {value} does not exist on this host; existing: {', '.join(existing)}; "
            "use --scheduler-interface NAME",
            field="scheduler_interface"))
    value = settings.interface
    if value and value in existing:
        checks.append(Check("interface", True, f"worker interface {value} exists on this host",
                            field="interface"))
    elif value:
        # The workers run on the compute nodes, which may have a NIC the login node lacks (the
        # lab's ib0): never refuse a start for it. Each job checks it on its node (nodecheck).
        checks.append(Check(
            "interface", False,
            f"worker interface {value} is not on this host; each job checks it on its compute node "
            "and the console says so if it is missing there",
            severity="info", field="interface"))
    return checks


def _directory_checks(settings: Settings, backend: str) -> list[Check]:
    checks = []
    local = settings.local_directory
    if local:
        path = os.path.expanduser(local)
        # On SGE the workers need it on the compute nodes; this host is only a hint.
        severity = "error" if backend == "local" else "warning"
        if not os.path.isdir(path):
            checks.append(Check("local_directory", False,
                                f"local directory {local} does not exist; use --local-directory DIR",
                                severity=severity, field="local_directory"))
        elif not os.access(path, os.W_OK | os.X_OK):
            checks.append(Check("local_directory", False,
                                f"local directory {local} is not writable; use --local-directory DIR",
                                severity=severity, field="local_directory"))
        else:
            checks.append(Check("local_directory", True, f"local directory {local} is writable",
                                field="local_directory"))
    log_dir = settings.log_dir
    try:
        os.makedirs(log_dir, exist_ok=True)
        if not os.access(log_dir, os.W_OK | os.X_OK):
            raise PermissionError(13, "not writable")
        checks.append(Check("log_directory", True, f"log directory {log_dir} is writable",
                            field="log_directory"))
    except OSError as e:
        checks.append(Check("log_directory", False,
                            f"log directory {log_dir} cannot be created ({e.strerror or e}); "
                            "use --log-directory DIR", field="log_directory"))
    return checks


def _memory_check(settings: Settings, backend: str = "sge") -> Check:
    try:
        size = settings.memory_bytes
    except (ValueError, TypeError):
        return Check("memory", False, f"memory {settings.memory!r} is not a size; "
                     "use a number with a unit, e.g. 250GB or 120GiB", field="memory")
    from dask.utils import format_bytes

    if backend == "local":
        # the local view (limits.local_view): workers of this machine, sized to fit it
        from naist_dask_tui.core import limits

        try:
            local, lim = limits.local_view(settings)
        except SettingsError as e:
            return Check("memory", False, str(e), field=e.field)
        total = format_bytes(limits._total_memory()).replace(" ", "")
        most = format_bytes(local.memory_bytes * lim.max_jobs).replace(" ", "")
        return Check("memory", True,
                     f"memory {local.memory} per local worker; at most {lim.max_jobs} workers "
                     f"(max_jobs) hold {most} of this machine's {total}", field="memory")
    per = format_bytes(size // max(settings.processes, 1)).replace(" ", "")
    return Check("memory", True, f"memory {settings.memory} per job ({per} per worker process)",
                 field="memory")


def _attach_check(settings: Settings, timeout: float = 5.0) -> Check:
    """Does anything listen at the scheduler address? (A TCP connect; no dask handshake.)"""
    import socket

    from distributed.comm import parse_address
    from distributed.comm.addressing import parse_host_port

    address = settings.attach or ""
    try:
        host, port = parse_host_port(parse_address(address)[1])
        with socket.create_connection((host, int(port)), timeout=timeout):
            pass
    except (OSError, ValueError) as e:
        reason = getattr(e, "strerror", None) or str(e) or type(e).__name__
        return Check("attach", False, f"scheduler {address} does not answer ({reason}); "
                     "is it running? check the address given to --attach", field="attach")
    return Check("attach", True, f"scheduler {address} answers; nothing will be submitted", field="attach")


def run_checks(
    settings: Settings,
    which: Callable[[str], str | None] = shutil.which,
    backend: str | None = None,
) -> list[Check]:
    """Everything that can be known before a job is submitted, in the order a user fixes it.

    ``backend`` None is --check's view: with backend auto the SGE checks run too, because
    "qsub not found" is the line a user on the wrong host needs to see. Pass the resolved backend
    ("sge", "local", "attach") to check only what that backend needs.
    """
    if backend is None:
        backend = settings.resolved_backend(which)
        sge = backend == "sge" or (backend == "local" and settings.backend == "auto")
    else:
        sge = backend == "sge"
    checks: list[Check] = []
    if backend == "attach":
        checks.append(_attach_check(settings))
        return checks
    if sge:
        checks.extend(_sge_commands(which))
        if which("qsub"):
            checks.extend(_queue_check(settings, which))
            checks.extend(_pe_checks(settings, which))
            checks.extend(_interface_checks(settings))
    checks.extend(_directory_checks(settings, "sge" if sge else backend))
    checks.append(_memory_check(settings, "sge" if sge else "local"))
    return checks


def require_ready(settings: Settings, which: Callable[[str], str | None] = shutil.which) -> list[Check]:
    """Raise SettingsError for the first failed check of the backend that will actually start.

    Returns the checks (warnings included) when nothing blocks the start.
    """
    checks = run_checks(settings, which, backend=settings.resolved_backend(which))
    for check in checks:
        if check.failed:
            field = check.field or check.name
            source = settings.origin_of(field) if field in settings.provenance else None
            raise SettingsError(field, check.detail, source)
    return checks
