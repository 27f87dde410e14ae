"""Why a job ended, in one line: the verdict rules, and what is kept of a job once it left.

When a job of the console leaves the queue, the console keeps the last lines of its output file
(taken at once, before anyone cleans the log directory) and, on SGE, its accounting record
(``qacct -j``, read in the background: see :mod:`accounting`). :func:`verdict` turns those
into the sentence the Jobs panel shows: *killed at the walltime*, *killed by memory (maxvmem
1.04G of 1G)*, *exited 1: <the line that says why>*, *deleted by the console (scale-down)*,
*ended at its worker lifetime*, *deleted by someone else*. Pure functions, tested on captured
``qacct`` outputs.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass

from naist_dask_tui.core import nodecheck
from naist_dask_tui.core.accounting import Accounting

TAIL_LINES = 200
TAIL_BYTES = 64 * 1024
READING = "reading its accounting (qacct) in the background"
LIFETIME_MARK = "worker-lifetime-reached"
# lines of a worker's output that say why it failed, most telling first
_WHY = re.compile(
    r"(Error|Exception|error:|ERROR|Killed|No such file|not found|denied|refused|"
    r"Timed out|cannot|can't|failed|Failed)"
)


@dataclass(slots=True)
class PostMortem:
    """What the console kept of a job that left the queue."""

    ended_at: float
    log_tail: tuple[str, ...] = ()  # its output file's last lines, read when it left
    log_found: bool = False  # the output file existed then
    accounting: Accounting | None = None
    accounting_note: str = ""  # READING, or why there is no accounting record
    verdict: str = ""

    def to_wire(self) -> dict:
        return {
            "ended_at": self.ended_at,
            "log_tail": list(self.log_tail),
            "log_found": self.log_found,
            "accounting": self.accounting.to_wire() if self.accounting else None,
            "accounting_note": self.accounting_note,
            "verdict": self.verdict,
        }


def read_tail_lines(path: str | None, lines: int = TAIL_LINES, nbytes: int = TAIL_BYTES) -> tuple[str, ...] | None:
    """The last ``lines`` lines of a file (None: no such file)."""
    if not path:
        return None
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - nbytes))
            data = f.read().decode("utf-8", "replace")
    except OSError:
        return None
    out = data.splitlines()
    if size > nbytes and out:
        out = out[1:]  # a partial first line
    return tuple(out[-lines:])


def read_piece(path: str | None, offset: int | None, limit: int) -> dict:
    """A piece of a job's output file: from ``offset`` (None: the last ``limit`` bytes)."""
    if not path:
        return {"path": None, "size": 0, "offset": 0, "data": ""}
    try:
        size = os.path.getsize(path)
    except FileNotFoundError:
        return {"path": path, "size": -1, "offset": 0, "data": ""}
    limit = max(1, min(int(limit), 1 << 20))
    start = max(0, size - limit) if offset is None or offset > size else int(offset)
    with open(path, "rb") as f:
        f.seek(start)
        data = f.read(min(limit, size - start))
    return {"path": path, "size": size, "offset": start + len(data), "data": data.decode("utf-8", "replace")}


def hms(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def size(nbytes: float) -> str:
    """SGE's way: 1.04G, 250G, 512M."""
    for unit, factor in (("T", 1024**4), ("G", 1024**3), ("M", 1024**2), ("K", 1024)):
        if nbytes >= factor:
            return f"{nbytes / factor:.3g}{unit}"
    return f"{int(nbytes)}B"


def why_line(lines: Sequence[str]) -> str:
    """The line of a job's output that most likely says why it failed."""
    text = [line.strip() for line in lines if line.strip()]
    for line in reversed(text):
        if _WHY.search(line) and not line.startswith("Traceback (most recent call last)"):
            return line[:200]
    return text[-1][:200] if text else "its output file is empty"


def _killed(acct: Accounting) -> bool:
    return acct.failed == 37 or acct.exit_status in (137, 9)


def verdict(
    *,
    deleted: str | None,
    connected: bool,
    has_queue: bool,
    log_tail: Sequence[str] | None,
    acct: Accounting | None,
    note: str = "",
    lifetime_reached: bool = False,
    walltime: float | None = None,
    memory: float | None = None,
) -> str:
    """One line on why a job ended.

    ``deleted``: why the console deleted it (None: it did not); ``connected``: a worker of
    it ever connected; ``log_tail``: its output's last lines (None: no output file);
    ``acct``: its accounting record (None: not read, none, or a local worker) and ``note``
    why not; ``lifetime_reached``: it ran until its workers' ``--lifetime``; ``walltime`` and
    ``memory``: the limits its jobs ask SGE for (h_rt seconds; h_vmem, m_mem_free... bytes),
    for records that do not say."""
    if deleted:
        return f"{'deleted' if has_queue else 'stopped'} by the console ({deleted})"
    lines = tuple(log_tail or ())
    if not connected and log_tail is not None:
        text = "\n".join(lines)
        cause = nodecheck.likely_cause(text)
        said = nodecheck.telling_line(lines) or why_line(lines)
        if cause and said not in cause:
            return f"ended before its worker started: {cause} (its output: {said})"
        return f"ended before its worker started: {cause or nodecheck.start_failure(text)}"
    lifetime = lifetime_reached or any(LIFETIME_MARK in line for line in lines[-40:])
    if acct is not None:
        h_rt = acct.h_rt or walltime
        limit = acct.h_vmem or memory
        if _killed(acct) and h_rt and acct.wallclock is not None and acct.wallclock >= h_rt - 1:
            return f"killed at the walltime (ran {hms(acct.wallclock)} of h_rt {hms(h_rt)})"
        # SGE's own kill (failed 37) samples the usage: it may stop a little short of the limit
        reached = 0.9 * limit if acct.failed == 37 else limit if limit else 0
        if _killed(acct) and limit and acct.maxvmem and acct.maxvmem >= reached:
            return f"killed by memory (maxvmem {size(acct.maxvmem)} of {size(limit)})"
        if acct.failed == 37:
            used = f"maxvmem {size(acct.maxvmem)}, " if acct.maxvmem else ""
            ran = hms(acct.wallclock) if acct.wallclock is not None else "?"
            return f"killed by SGE for a limit (h_rt, h_cpu or h_vmem): {used}ran {ran}"
        if lifetime:
            return "ended at its worker lifetime (its workers handed their data over first)"
        if acct.exit_status in (137, 9):
            return "deleted by someone else (killed: exit 137, not by the console)"
        if acct.exit_status == 143:
            return "ended by SIGTERM (exit 143, not by the console)"
        if acct.exit_status:
            return f"exited {acct.exit_status}: {why_line(lines)}"
        if acct.failed not in (None, 0, 100):
            return f"failed in SGE: {acct.failed_meaning}"
        return f"ended (exit 0): {why_line(lines)}" if lines else "ended (exit 0)"
    if lifetime:
        return "ended at its worker lifetime (its workers handed their data over first)"
    if not has_queue:
        return f"ended without the console stopping it: {why_line(lines)}" if lines else \
            "ended without the console stopping it"
    why = "left the queue without the console deleting it (qdel from outside, walltime, or a node failure)"
    return f"{why}; {note}" if note else why
