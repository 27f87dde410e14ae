"""Bounded histories of the cluster for the sparklines and the Overview's graphs.

Owned by the app (one place), fed one ``ConsoleSnapshot`` a poll; plain Python, no Textual.

Two kinds of store, both bounded from the start:

* ``samples`` / ``spill_rates``: the last ``maxlen`` samples of memory and spill (10 minutes at
  a 1 s interval), for the Memory and Spill panels' sparklines and the spill rate;
* three :class:`Tier` s of the Overview's series (:data:`SERIES`), each a ring of preallocated
  ``array('d')`` columns: every sample for the last 10 minutes, 10 s means for 2 hours, 1 min
  means for 24 hours. A graph's window reads the finest tier that covers it, so a redraw
  touches at most a few hundred samples per series whatever the window, and memory does not
  grow after start.

Tasks finished per second come from the scheduler's cumulative count of tasks that reached
memory (``TaskCounts.finished``): the rate of a bucket is its count difference over its time.
"""

from __future__ import annotations

import math
from array import array
from bisect import bisect_left
from collections import deque
from dataclasses import dataclass

from naist_dask_tui.core.snapshot import ClusterTotals, ConsoleSnapshot

# The Overview's series, in the order of a row (after the time).
SERIES = (
    "managed",  # bytes in RAM held by keys
    "unmanaged",  # process memory no key accounts for
    "spilled",  # bytes on disk
    "limit",  # sum of the workers' memory limits
    "cpu",  # cores busy (sum of the workers' CPU % / 100)
    "threads",  # worker threads (the CPU graph's top)
    "rate",  # tasks finished per second
    "processing",  # tasks on the workers
    "queued",  # tasks waiting on the scheduler for a free thread (queued + no-worker)
    "workers",
    "jobs_running",
    "jobs_pending",
)
_INDEX = {name: i for i, name in enumerate(SERIES)}
_RATE = _INDEX["rate"]

# (bucket seconds, capacity) of the tiers: 0 = every sample.
TIERS = ((0.0, 600), (10.0, 720), (60.0, 1440))
WINDOWS = (("5 min", 300.0), ("1 h", 3600.0), ("since start", None))


@dataclass(frozen=True, slots=True)
class Sample:
    time: float
    managed: int
    unmanaged: int
    spilled: int
    limit: int


class Ring:
    """The last ``capacity`` rows (time + SERIES), in preallocated float columns."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.columns = [array("d", bytes(8 * capacity)) for _ in range(1 + len(SERIES))]
        self.start = 0  # index of the oldest row
        self.size = 0

    def append(self, row: tuple[float, ...]) -> None:
        if self.size < self.capacity:
            i = (self.start + self.size) % self.capacity
            self.size += 1
        else:
            i = self.start
            self.start = (self.start + 1) % self.capacity
        for column, value in zip(self.columns, row, strict=False):
            column[i] = value

    def _ordered(self, column: array) -> array:
        if self.size < self.capacity:  # (not wrapped yet: start is 0)
            return column[: self.size]
        return column[self.start :] + column[: self.start]

    @property
    def first_time(self) -> float | None:
        return self.columns[0][self.start] if self.size else None

    def since(self, t0: float) -> tuple[array, dict[str, array]]:
        """(times, {series: values}) of the rows at or after ``t0``, oldest first."""
        times = self._ordered(self.columns[0])
        k = bisect_left(times, t0)
        return times[k:], {name: self._ordered(self.columns[1 + i])[k:] for i, name in enumerate(SERIES)}


class Tier:
    """A ring fed with every sample (``bucket`` 0) or with means over ``bucket`` seconds."""

    def __init__(self, bucket: float, capacity: int) -> None:
        self.bucket = bucket
        self.ring = Ring(capacity)
        self._sums: list[float] | None = None
        self._count = 0
        self._slot: float | None = None
        self._t_first = 0.0
        self._finished_first = 0.0
        self._finished_last = 0.0
        self._t_last = 0.0

    @property
    def span(self) -> float:
        return self.bucket * self.ring.capacity if self.bucket else float("inf")

    def add(self, t: float, values: tuple[float, ...], finished: float) -> None:
        if not self.bucket:
            self.ring.append((t, *values))
            return
        slot = math.floor(t / self.bucket)
        if self._slot is not None and slot != self._slot and self._count:
            self._flush()
        if self._sums is None or self._count == 0:
            self._sums = [0.0] * len(values)
            self._slot = slot
            self._t_first, self._finished_first = t, finished
        for i, v in enumerate(values):
            self._sums[i] += v
        self._count += 1
        self._t_last, self._finished_last = t, finished

    def _flush(self) -> None:
        assert self._sums is not None
        n = self._count
        means = [s / n for s in self._sums]
        dt = self._t_last - self._t_first
        if dt > 0 and self._finished_last >= self._finished_first:
            means[_RATE] = (self._finished_last - self._finished_first) / dt
        # a bucket is drawn at its middle
        self.ring.append(((self._slot + 0.5) * self.bucket, *means))
        self._count = 0


@dataclass(frozen=True)
class Window:
    """What one Overview window shows: times (epoch s) and a column per series."""

    start: float
    end: float
    times: array
    values: dict[str, array]

    def last(self, name: str) -> float | None:
        column = self.values[name]
        return column[-1] if len(column) else None


class MemoryHistory:
    """The app's one history: memory and spill samples for the sparklines (the last ``maxlen``,
    10 minutes at a 1 s interval by default) and the Overview's tiers."""

    def __init__(self, maxlen: int = 600) -> None:
        self.samples: deque[Sample] = deque(maxlen=maxlen)
        # bytes/s spilled between consecutive samples (negative when spilled data is unspilled)
        self.spill_rates: deque[float] = deque(maxlen=maxlen)
        self.tiers = [Tier(bucket, capacity) for bucket, capacity in TIERS]
        self.first_time: float | None = None
        self._last_finished: tuple[float, int] | None = None
        self.version = 0  # bumped by every sample: a graph redraws only when it changed

    def add(self, snapshot: ConsoleSnapshot, totals: ClusterTotals | None = None) -> Sample | None:
        cluster = snapshot.cluster
        if cluster is None:
            return None
        if self.samples and cluster.time <= self.samples[-1].time:
            return None  # the same snapshot twice (or a clock step): nothing new
        t = totals or ClusterTotals.of(cluster)
        sample = Sample(cluster.time, t.managed, t.unmanaged, t.spilled, t.memory_limit)
        if self.samples:
            prev = self.samples[-1]
            self.spill_rates.append((sample.spilled - prev.spilled) / (sample.time - prev.time))
        self.samples.append(sample)
        self._add_series(snapshot, t)
        return sample

    def _add_series(self, snapshot: ConsoleSnapshot, t: ClusterTotals) -> None:
        cluster = snapshot.cluster
        assert cluster is not None
        now, tasks = cluster.time, cluster.tasks
        rate = 0.0
        if self._last_finished is not None:
            t0, f0 = self._last_finished
            if now > t0 and tasks.finished >= f0:  # (a restarted scheduler counts from 0)
                rate = (tasks.finished - f0) / (now - t0)
        self._last_finished = (now, tasks.finished)
        values = (
            float(t.managed),
            float(t.unmanaged),
            float(t.spilled),
            float(t.memory_limit),
            t.cpu / 100.0,
            float(t.nthreads),
            rate,
            float(tasks.processing),
            float(tasks.queued + tasks.no_worker),
            float(t.n_workers),
            float(snapshot.jobs_running),
            float(snapshot.jobs_pending),
        )
        for tier in self.tiers:
            tier.add(now, values, float(tasks.finished))
        if self.first_time is None:
            self.first_time = now
        self.version += 1

    def window(self, seconds: float | None, now: float | None = None) -> Window:
        """The last ``seconds`` (None: since the first sample), from the finest tier that
        covers them (or, while none does yet, the one that reaches furthest back)."""
        fine = self.tiers[0].ring
        if now is None:
            now = fine.columns[0][(fine.start + fine.size - 1) % fine.capacity] if fine.size else 0.0
        first = self.first_time if self.first_time is not None else now
        start = now - max((now - first) if seconds is None else seconds, 1.0)
        needed = max(start, first)  # nothing older exists
        tiers = [t for t in self.tiers if t.ring.size]
        chosen = next((t for t in tiers if t.ring.first_time <= needed + t.bucket), None)
        if chosen is None:
            chosen = min(tiers, key=lambda t: t.ring.first_time, default=self.tiers[0])
        times, values = chosen.ring.since(start)
        return Window(start, now, times, values)

    @property
    def used(self) -> tuple[float, ...]:
        return tuple(float(s.managed + s.unmanaged) for s in self.samples)

    @property
    def spilled(self) -> tuple[float, ...]:
        return tuple(float(s.spilled) for s in self.samples)

    @property
    def rates(self) -> tuple[float, ...]:
        return tuple(max(0.0, r) for r in self.spill_rates)

    def recent_spill_rate(self, seconds: float = 30.0) -> float:
        """Average bytes/s written to disk over the last ``seconds`` (0 without two samples)."""
        if len(self.samples) < 2:
            return 0.0
        last = self.samples[-1]
        first = last
        for sample in reversed(self.samples):
            if last.time - sample.time > seconds:
                break
            first = sample
        if first is last:
            first = self.samples[-2]
        return max(0.0, (last.spilled - first.spilled) / (last.time - first.time))
