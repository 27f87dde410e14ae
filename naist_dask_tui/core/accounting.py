"""SGE's accounting of a job that ended (``qacct -j ID``), read in the background.

``qacct`` reads the cluster's whole accounting file: on a busy site that takes seconds or
minutes, the record of a job that just ended may not be there yet, and some sites switch
accounting off. So it is never called on a refresh: :class:`AccountingReader` runs it in a
thread of its own, one job at a time, tries again while the record is missing, and says in
words when it gives up.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from naist_dask_tui.core import sge

logger = logging.getLogger(__name__)

QACCT_TIMEOUT = 60.0  # seconds one qacct may take (it reads the whole accounting file)
# seconds after the job left the queue at which qacct is asked again while it has no record
RETRY_AFTER = (2.0, 5.0, 10.0, 20.0, 40.0, 60.0)
MAX_QUEUED = 500  # jobs waiting for their accounting; older ones are dropped beyond this

# sge_status(5): the "failed" field of an accounting record. qacct prints the words too, but
# not every SGE does, and these say a little more.
FAILED = {
    0: "no failure",
    1: "failed before the job started (execd)",
    3: "failed before writing the job's config",
    4: "failed before writing the job's pid",
    5: "failed reading the job's config file",
    6: "failed setting up the processor set",
    7: "failed before the prolog",
    8: "failed in the prolog",
    9: "failed before the PE start",
    10: "failed in the PE start",
    11: "failed before the job script started",
    12: "failed before the PE stop",
    13: "failed in the PE stop",
    14: "failed before the epilog",
    15: "failed in the epilog",
    16: "failed releasing the processor set",
    17: "ended by a signal",
    18: "the shepherd returned an error",
    19: "failed before writing the exit status",
    20: "an unexpected error file was found",
    21: "failed recognizing the job",
    24: "migrating (checkpointing)",
    25: "rescheduled",
    26: "could not open its output file",
    27: "could not find the requested shell",
    28: "could not change to the working directory",
    29: "AFS setup failed",
    30: "the application returned an error",
    31: "could not read the sgepasswd file",
    32: "no entry in the password file",
    33: "wrong password",
    34: "could not talk to the Grid Engine Helper Service",
    35: "failed before the job in the Grid Engine Helper Service",
    36: "failed checking the configured daemons",
    37: "killed by SGE for a limit (h_rt, h_cpu or h_vmem)",
    38: "failed adding a supplementary group",
    100: "ended after the job script (a signal, qdel, or a limit)",
}

# SGE requests that cap a job's memory, strictest first (m_mem_free: Univa, and here)
MEMORY_LIMITS = ("h_vmem", "s_vmem", "h_rss", "m_mem_free", "mem_free", "virtual_free")

_UNITS = {"": 1, "B": 1, "K": 1024, "KB": 1024, "M": 1024**2, "MB": 1024**2, "G": 1024**3,
          "GB": 1024**3, "T": 1024**4, "TB": 1024**4}


@dataclass(frozen=True, slots=True)
class Accounting:
    """The fields of one ``qacct -j`` record the post-mortem uses."""

    job_id: str
    exit_status: int | None = None
    failed: int | None = None
    failed_text: str = ""
    hostname: str | None = None
    start: str = ""
    end: str = ""
    wallclock: float | None = None  # seconds
    maxvmem: float | None = None  # bytes
    cpu: float | None = None  # seconds
    h_rt: float | None = None  # seconds asked (from the record's category)
    h_vmem: float | None = None  # memory asked, bytes (h_vmem, or another limit: MEMORY_LIMITS)
    category: str = ""

    @property
    def failed_meaning(self) -> str:
        if self.failed is None:
            return ""
        return FAILED.get(self.failed, self.failed_text or f"failed {self.failed}")

    def to_wire(self) -> dict:
        return {name: getattr(self, name) for name in self.__slots__}


def parse_size(text: str | None) -> float | None:
    """``141.809MB`` / ``1.043GB`` / ``4.480KB`` / ``250G`` / ``123`` -> bytes."""
    if not text:
        return None
    m = re.fullmatch(r"\s*([\d.]+)\s*([KMGT]?B?)\s*", text.strip(), re.I)
    if not m:
        return None
    return float(m.group(1)) * _UNITS.get(m.group(2).upper(), 1)


def parse_seconds(text: str | None) -> float | None:
    """``5s`` / ``5`` / ``0.007s`` / ``01:00:00`` -> seconds."""
    if not text:
        return None
    text = text.strip()
    if ":" in text:
        try:
            parts = [float(p) for p in text.split(":")]
        except ValueError:
            return None
        seconds = 0.0
        for p in parts:
            seconds = seconds * 60 + p
        return seconds
    m = re.fullmatch(r"([\d.]+)\s*s?", text)
    return float(m.group(1)) if m else None


def _category_value(category: str, name: str) -> str | None:
    for m in re.finditer(r"-l\s+(\S+)", category):
        for item in m.group(1).split(","):
            key, _, value = item.partition("=")
            if key.strip() == name:
                return value.strip()
    return None


def parse_qacct(text: str) -> list[Accounting]:
    """Every record in ``qacct -j`` output (a job id reused after a qmaster restart has
    several; the last one is the newest)."""
    records = []
    for block in re.split(r"^=+\s*$", text, flags=re.M):
        fields: dict[str, str] = {}
        for line in block.splitlines():
            key, _, value = line.partition(" ")
            if key and value.strip():
                fields[key.strip()] = value.strip()
        if "jobnumber" not in fields:
            continue
        failed, failed_text = None, ""
        m = re.match(r"(\d+)\s*(?::\s*(.*))?", fields.get("failed", ""))
        if m:
            failed, failed_text = int(m.group(1)), (m.group(2) or "").strip()
        exit_m = re.match(r"(-?\d+)", fields.get("exit_status", ""))
        category = fields.get("category", "")
        h_rt = _category_value(category, "h_rt")
        records.append(Accounting(
            job_id=fields["jobnumber"],
            exit_status=int(exit_m.group(1)) if exit_m else None,
            failed=failed,
            failed_text=failed_text,
            hostname=fields.get("hostname"),
            start=fields.get("start_time", ""),
            end=fields.get("end_time", ""),
            wallclock=parse_seconds(fields.get("ru_wallclock")),
            maxvmem=parse_size(fields.get("maxvmem")),
            cpu=parse_seconds(fields.get("cpu")),
            h_rt=parse_seconds(h_rt) if h_rt else None,
            h_vmem=_memory_request(category),
            category=category,
        ))
    return records


class NoRecord(Exception):
    """qacct has no record of the job (yet)."""


class AccountingOff(Exception):
    """qacct cannot be used here (no qacct, no accounting file): the words say why."""


def qacct(job_id: str, timeout: float = QACCT_TIMEOUT) -> Accounting:
    """The newest accounting record of a job; :class:`NoRecord` while it has none,
    :class:`AccountingOff` when accounting cannot be read here."""
    try:
        out = sge.run(["qacct", "-j", str(job_id).split(".")[0]], timeout=timeout)
    except sge.SgeError as exc:
        words = str(exc)
        if "not found on PATH" not in words and "not found" in words:
            raise NoRecord(words) from None  # "error: job id 123 not found"
        raise AccountingOff(words) from None  # no qacct, no accounting file, too slow
    records = parse_qacct(out)
    if records:
        return records[-1]
    raise NoRecord(" ".join(out.split())[:200] or "no record")


class AccountingReader:
    """One daemon thread that reads ``qacct -j`` for ended jobs, oldest first.

    ``done(job_id, accounting, note)`` is called from that thread with the record (or None)
    and, when there is none, why in words. ``read`` is :func:`qacct` (tests pass recorded
    answers)."""

    def __init__(self, done: Callable[[str, Accounting | None, str], None],
                 read: Callable[[str], Accounting] = qacct,
                 retry_after: tuple[float, ...] = RETRY_AFTER) -> None:
        self._done = done
        self._read = read
        self._retry_after = retry_after
        self._queue: deque[tuple[float, str, int]] = deque()  # (due, job id, attempt)
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stopped = False
        self.off: str | None = None  # why accounting cannot be read here, once known

    def add(self, job_id: str) -> None:
        with self._cond:
            if self._stopped:
                return
            if self.off is not None:
                self._done(job_id, None, self.off)
                return
            self._queue.append((time.monotonic() + self._retry_after[0], job_id, 0))
            while len(self._queue) > MAX_QUEUED:  # the oldest go, told so (not "reading" forever)
                _, dropped, _ = self._queue.popleft()
                self._done(dropped, None, f"its accounting was not read: more than {MAX_QUEUED} "
                           f"ended jobs were waiting for qacct (qacct -j {dropped} shows it)")
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="ndtui-qacct", daemon=True)
                self._thread.start()
            self._cond.notify()

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._queue.clear()
            self._cond.notify_all()

    def _next(self) -> tuple[str, int] | None:
        with self._cond:
            while not self._stopped:
                if self._queue:
                    item = min(self._queue)  # the soonest due
                    wait = item[0] - time.monotonic()
                    if wait <= 0:
                        self._queue.remove(item)
                        return item[1], item[2]
                    self._cond.wait(wait)
                else:
                    self._cond.wait()
            return None

    def _loop(self) -> None:
        while (item := self._next()) is not None:
            job_id, attempt = item
            try:
                record = self._read(job_id)
            except NoRecord as exc:
                if attempt + 1 < len(self._retry_after):
                    due = time.monotonic() + self._retry_after[attempt + 1] - self._retry_after[attempt]
                    with self._cond:
                        self._queue.append((due, job_id, attempt + 1))
                    continue
                self._finish(job_id, None, f"no accounting record of job {job_id} after "
                             f"{self._retry_after[-1]:.0f} s (qacct: {exc}); accounting may lag "
                             "or be off at this site")
            except AccountingOff as exc:
                self.off = f"no accounting here (qacct: {exc})"
                self._finish(job_id, None, self.off)
                with self._cond:
                    pending = [i[1] for i in self._queue]
                    self._queue.clear()
                for other in pending:
                    self._finish(other, None, self.off)
            except Exception as exc:  # never let the thread die
                logger.warning("qacct -j %s failed: %s", job_id, exc)
                self._finish(job_id, None, f"qacct failed: {exc}")
            else:
                self._finish(job_id, record, "")

    def _finish(self, job_id: str, record: Accounting | None, note: str) -> None:
        try:
            self._done(job_id, record, note)
        except Exception:
            logger.exception("accounting callback failed")


def _memory_request(category: str) -> float | None:
    """The first memory limit (``MEMORY_LIMITS`` order) among a job's ``-l`` resources, in bytes."""
    value = next((v for v in (_category_value(category, n) for n in MEMORY_LIMITS) if v), None)
    return parse_size(value) if value else None


def memory_limit(resource_spec: str | None) -> float | None:
    """The memory limit a job asks SGE for in its ``-l`` resources (bytes), if any."""
    return _memory_request(f"-l {resource_spec}") if resource_spec else None
