"""Bounded histories of cluster memory and spill for the sparklines.

Owned by the app (one place), fed one ``ConsoleSnapshot`` a poll; plain Python, no Textual.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from naist_dask_tui.core.snapshot import ClusterTotals, ConsoleSnapshot


@dataclass(frozen=True, slots=True)
class Sample:
    time: float
    managed: int
    unmanaged: int
    spilled: int
    limit: int


class MemoryHistory:
    """The last ``maxlen`` samples (10 minutes at a 1 s interval by default)."""

    def __init__(self, maxlen: int = 600) -> None:
        self.samples: deque[Sample] = deque(maxlen=maxlen)
        # bytes/s spilled between consecutive samples (negative when spilled data is unspilled)
        self.spill_rates: deque[float] = deque(maxlen=maxlen)

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
        return sample

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
