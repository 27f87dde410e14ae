"""Shared pieces of the benchmarks: results, goals, the one table, CPU clocks, subprocesses.

Every part (``bench_probe``, ``bench_startup``, ...) builds a :class:`Report` of measurements
(label, value, unit) and goals (text, met or not, the measured number that decided it). A part
runs on its own as ``python -m bench.bench_<name> [--quick] [--json PATH]`` and prints its
table; ``python -m bench`` runs the parts in subprocesses, collects their JSON and prints
all of them as ONE table at the end.

Nothing here asserts a wall-clock limit: the machines are small and shared, so every number is
a median of repeats taken side by side in one run, and goals are reported, never enforced.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
PY = sys.executable


# ---------------------------------------------------------------- statistics


def median(xs: Iterable[float]) -> float:
    xs = [x for x in xs if x is not None and not math.isnan(x)]
    return statistics.median(xs) if xs else float("nan")


def percentile(xs: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of ``xs``; nan when empty."""
    xs = sorted(xs)
    if not xs:
        return float("nan")
    k = max(0, min(len(xs) - 1, math.ceil(p / 100 * len(xs)) - 1))
    return xs[k]


def fmt(value: Any, digits: int = 3) -> str:
    """A number with ``digits`` significant digits (no scientific notation for usual sizes)."""
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if math.isnan(value):
        return "n/a"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if value == 0:
        return "0"
    mag = math.floor(math.log10(abs(value)))
    decimals = max(0, digits - 1 - mag)
    return f"{value:,.{decimals}f}"


# ---------------------------------------------------------------- results


@dataclass
class Row:
    part: str
    label: str
    value: Any
    unit: str = ""
    note: str = ""


@dataclass
class Goal:
    part: str
    text: str
    met: bool | None  # None: could not be measured (skipped, failed, not available)
    measured: str


@dataclass
class Report:
    part: str
    title: str
    rows: list[Row] = field(default_factory=list)
    goals: list[Goal] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    error: str | None = None

    def add(self, label: str, value: Any, unit: str = "", note: str = "") -> None:
        self.rows.append(Row(self.part, label, value, unit, note))

    def goal(self, text: str, met: bool | None, measured: str) -> None:
        self.goals.append(Goal(self.part, text, met, measured))

    def note(self, text: str) -> None:
        self.notes.append(text)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Report:
        r = cls(d["part"], d.get("title", d["part"]))
        r.rows = [Row(**x) for x in d.get("rows", [])]
        r.goals = [Goal(**x) for x in d.get("goals", [])]
        r.notes = list(d.get("notes", []))
        r.seconds = float(d.get("seconds", 0.0))
        r.error = d.get("error")
        return r


def verdict(met: bool | None) -> str:
    return "met" if met else ("NOT met" if met is False else "not measured")


def render_table(reports: Sequence[Report], header: str | None = None) -> str:
    """One plain-text table: each part's measurements, then every goal as met / NOT met."""
    rows = [(r.part, row.label, fmt(row.value), row.unit, row.note) for r in reports for row in r.rows]
    w_part = max([4] + [len(x[0]) for x in rows])
    w_label = max([11] + [len(x[1]) for x in rows])
    w_value = max([5] + [len(x[2]) for x in rows])
    w_unit = max([4] + [len(x[3]) for x in rows])
    lines = []
    if header:
        lines.append(header)
    line = f"{'part':<{w_part}}  {'measurement':<{w_label}}  {'value':>{w_value}}  {'unit':<{w_unit}}  note"
    rule = "-" * max(len(line), 60)
    lines += [rule, line, rule]
    last = None
    for part, label, value, unit, note in rows:
        if last is not None and part != last:
            lines.append("")
        last = part
        lines.append(f"{part:<{w_part}}  {label:<{w_label}}  {value:>{w_value}}  {unit:<{w_unit}}  {note}".rstrip())
    for r in reports:
        if r.error:
            lines.append(f"{r.part:<{w_part}}  ERROR: {r.error}")
    lines.append(rule)
    lines.append("GOALS")
    goals = [g for r in reports for g in r.goals]
    w_goal = max([4] + [len(g.text) for g in goals])
    for g in goals:
        lines.append(f"  [{verdict(g.met):^12}] {g.part:<{w_part}}  {g.text:<{w_goal}}  measured: {g.measured}")
    notes = [(r.part, n) for r in reports for n in r.notes]
    if notes:
        lines.append(rule)
        lines.append("NOTES")
        for part, n in notes:
            lines.append(f"  {part}: {n}")
    times = ", ".join(f"{r.part} {r.seconds:.0f} s" for r in reports)
    lines.append(rule)
    lines.append(f"wall time per part: {times}")
    return "\n".join(lines)


# ---------------------------------------------------------------- part entry point


def part_main(part: str, run: Callable[[argparse.Namespace, Report], None], doc: str | None = None,
              extra: Callable[[argparse.ArgumentParser], None] | None = None) -> int:
    """``python -m bench.bench_<part> [--quick] [--json PATH]``: run, print the table, save JSON."""
    parser = argparse.ArgumentParser(prog=f"python -m bench.bench_{part}", description=doc)
    parser.add_argument("--quick", action="store_true", help="a short smoke version")
    parser.add_argument("--json", metavar="PATH", help="write the results as JSON")
    if extra:
        extra(parser)
    args = parser.parse_args()
    title = (doc or part).strip().splitlines()[0]
    report = Report(part, title)
    t0 = time.perf_counter()
    try:
        run(args, report)
    except KeyboardInterrupt:
        report.error = "interrupted"
    except Exception as exc:  # report, never hide: the runner shows the error in the table
        import traceback

        traceback.print_exc()
        report.error = f"{type(exc).__name__}: {exc}"
    report.seconds = time.perf_counter() - t0
    print(render_table([report]), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(report.to_dict(), indent=1))
    return 0 if report.error is None else 1


def log(part: str, text: str) -> None:
    print(f"[{part}] {text}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- CPU clocks


def proc_cpu_seconds(pid: int) -> float:
    """CPU seconds used so far by all live threads of process ``pid``.

    Reads ``/proc/<pid>/task/*/schedstat`` (nanoseconds, not the 10 ms ticks of
    ``cpu_times``); falls back to psutil where that file is missing.
    """
    total = 0
    base = f"/proc/{pid}/task"
    try:
        tids = os.listdir(base)
    except OSError:
        tids = []
    ok = False
    for tid in tids:
        try:
            with open(f"{base}/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
            ok = True
        except (OSError, ValueError, IndexError):
            continue
    if ok:
        return total / 1e9
    import psutil

    t = psutil.Process(pid).cpu_times()
    return t.user + t.system


def rss_bytes(pid: int | None = None) -> int:
    import psutil

    return psutil.Process(pid or os.getpid()).memory_info().rss


# ---------------------------------------------------------------- text


ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(\x07|\x1b\\)|\x1b[PX^_].*?\x1b\\|\x1b[@-Z\\-_]")


def strip_ansi(text: str) -> str:
    return ANSI.sub("", text)


def child_env(**extra: str) -> dict[str, str]:
    """The environment for a benchmark subprocess: this checkout first on sys.path."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("PYTHONUNBUFFERED", "1")
    env.update(extra)
    return env


# ---------------------------------------------------------------- fake snapshot feed (app benches)


class SnapshotFeed:
    """A monitor for the app: each ``poll()`` returns the next snapshot of ``n`` workers, with
    ``fraction`` of them changed and the clock one second on (as 1 s heartbeats would); only
    the previous snapshot is kept, so the feed itself does not grow."""

    def __init__(self, n: int, fraction: float = 0.17, seed: int = 0):
        import random

        from tests.ui.fake_data import T0, make_snapshot

        self.rng = random.Random(seed)
        self.fraction = fraction
        self.t = T0
        self.snap = make_snapshot(n, t=T0)
        self.calls = 0

    def next(self):
        from tests.ui.fake_data import vary

        self.t += 1.0
        self.snap = vary(self.snap, self.fraction, self.rng, self.t)
        return self.snap

    def poll(self):
        self.calls += 1
        return self.next()


class AppSettings:
    """The one setting the app reads from a Settings object when no controller is given."""

    def __init__(self, interval: float = 1.0) -> None:
        self.refresh_interval = interval
