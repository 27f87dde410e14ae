"""SGE job names that say which console submitted a job.

Every job the console submits is named ``ndtui.<host>.<pid>`` (SGE's ``-N``), so that a later
start can recognise the leftovers of a console that was killed with SIGKILL: same prefix, this
host, and a pid that is no longer a running process.
"""

from __future__ import annotations

import os
import re
import socket

JOB_NAME_PREFIX = "ndtui"
# SGE forbids \n \t \r / : @ \ * ? in job names; host names only need their dots and dashes.
_SAFE = re.compile(r"[^A-Za-z0-9_.-]")
_PATTERN = re.compile(rf"^{JOB_NAME_PREFIX}\.(?P<host>[A-Za-z0-9_-]+)\.(?P<pid>\d+)$")


def short_hostname() -> str:
    return _SAFE.sub("_", socket.gethostname().split(".")[0]) or "host"


def console_job_name(pid: int | None = None, host: str | None = None) -> str:
    """The ``-N`` name of this console's jobs."""
    return f"{JOB_NAME_PREFIX}.{host or short_hostname()}.{os.getpid() if pid is None else pid}"


def parse_console_job_name(name: str) -> tuple[str, int] | None:
    """``(host, pid)`` of the console that submitted a job of this name, or None if it is not ours."""
    m = _PATTERN.match(name)
    return (m["host"], int(m["pid"])) if m else None
