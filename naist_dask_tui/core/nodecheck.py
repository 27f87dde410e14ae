"""What is checked where the workers run, and how the console reads the answer back.

The workers' network interface (``ib0`` in the lab) exists on the compute nodes, not on the
login node, so it cannot be checked before the start. Each job checks it first thing, on its
node: when it is missing, the job writes one line to its SGE output file and ends before a
worker starts. The console reads that line from the file (the log directory is shared with the
nodes) when the job leaves the queue, says it in words, and does not submit the job again.
"""

from __future__ import annotations

import os
import re
import shlex

MARK = "naist-dask-tui: worker interface"
_MISSING = re.compile(
    re.escape(MARK) + r" (?P<nic>\S+) does not exist on (?P<host>\S+); it has: (?P<has>[^\n]*)"
)
TAIL_BYTES = 8192


def interface_prologue(interface: str) -> str:
    """One shell line for the job script: end the job with a clear message when ``interface``
    does not exist on the node that runs it (``/sys/class/net`` is the node's own network
    namespace)."""
    nic = shlex.quote(interface)
    # inside the echo's double quotes: a plain name as it is, anything else closes and reopens
    said = nic if nic == interface else f'"{nic}"'
    return (
        f"[ -e /sys/class/net/{nic} ] || {{ echo \"{MARK} {said} does not exist on $(hostname); "
        f"it has: $(ls /sys/class/net | tr '\\n' ' ')\" >&2; exit 3; }}"
    )


def read_tail(path: str | None, nbytes: int = TAIL_BYTES) -> str | None:
    """The end of a job's output file; None when there is none (the job never ran)."""
    if not path:
        return None
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - nbytes))
            return f.read().decode("utf-8", "replace")
    except OSError:
        return None


def start_failure(log_text: str) -> str:
    """Why a job ended before its worker connected, in words, from the end of its output."""
    m = _MISSING.search(log_text)
    if m:
        has = ", ".join(m.group("has").split()) or "none"
        return (
            f"worker interface {m.group('nic')} does not exist on {m.group('host')} "
            f"(it has: {has}); use --interface with one of those"
        )
    lines = [line.strip() for line in log_text.splitlines() if line.strip()]
    if not lines:
        return "its output file is empty"
    return "its output ends with: " + " | ".join(lines[-3:])[-300:]
