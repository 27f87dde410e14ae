"""Fixed snapshot data for pure widget tests, snapshot tests and the benchmark.

Fakes are used ONLY to feed widgets with snapshot records; the app-level tests run a real
LocalCluster.
"""

from __future__ import annotations

import random
from dataclasses import replace

from naist_dask_tui.core.snapshot import (
    ClusterSnapshot,
    ConsoleSnapshot,
    JobRow,
    JobState,
    TaskCounts,
    WorkerRow,
)

T0 = 1_780_000_000.0  # a fixed clock: frozen text in snapshots
GiB = 2**30


def make_worker(i: int, *, job: int | None = None, t: float = T0, **changes) -> WorkerRow:
    job_id = str(1000 + (job if job is not None else i))
    w = WorkerRow(
        address=f"tcp://10.0.{i // 250}.{i % 250 + 1}:40{i % 1000:03d}",
        name=f"ndtui-{job if job is not None else i}",
        host=f"node{i % 40:02d}",
        job_id=job_id,
        nthreads=4,
        status="running",
        cpu=float((i * 37) % 100),
        memory=int((1 + (i * 13) % 7) * GiB),
        managed=int((i % 5) * 0.5 * GiB),
        unmanaged=int(0.8 * GiB),
        spilled=0,
        memory_limit=8 * GiB,
        executing=i % 4,
        ready=i % 3,
        in_memory=(i * 7) % 50,
        last_seen=t,
    )
    return replace(w, **changes) if changes else w


def make_snapshot(
    n_workers: int = 6,
    *,
    t: float = T0,
    connected: bool = True,
    jobs: tuple[JobRow, ...] | None = None,
    workers: tuple[WorkerRow, ...] | None = None,
    requested: int | None = None,
    dashboard: str | None = "http://10.0.0.1:8787/status",
    backend: str = "sge",
    error: str | None = None,
) -> ConsoleSnapshot:
    if workers is None:
        workers = tuple(make_worker(i, t=t) for i in range(n_workers))
    if jobs is None:
        jobs = tuple(
            JobRow(
                name=w.name,
                job_id=w.job_id,
                state=JobState.RUNNING,
                raw_state="r",
                queue="grid_short.q",
                host=w.host,
                slots=4,
                since=t - 125,
                workers=(w.address,),
                log_path=f"/tmp/{w.name}.o{w.job_id}",
            )
            for w in workers
        )
    cluster = ClusterSnapshot(
        time=t,
        scheduler_address="tcp://10.0.0.1:8786",
        workers=workers,
        tasks=TaskCounts(total=100, memory=40, processing=10, queued=50),
        spill_threshold=0.7,
        target_fraction=0.6,
    )
    return ConsoleSnapshot(
        time=t,
        backend=backend,
        scheduler_address="tcp://10.0.0.1:8786",
        connected=connected,
        cluster=cluster if connected else None,
        jobs=jobs,
        requested_jobs=len(jobs) if requested is None else requested,
        dashboard_link=dashboard,
        local_directory="/var/tmp/dask-scratch",
        error=error,
    )


def showcase_snapshot(t: float = T0) -> ConsoleSnapshot:
    """Every state a screen can show: paused, retiring, over the spill threshold, spilling,
    pending and erred jobs."""
    workers = [make_worker(i, t=t) for i in range(6)]
    workers[1] = replace(workers[1], status="paused", memory=int(7.5 * GiB), spilled=3 * GiB)
    workers[2] = replace(workers[2], status="closing_gracefully")
    workers[3] = replace(workers[3], memory=int(6.2 * GiB), spilled=int(1.5 * GiB))
    running = [
        JobRow(
            name=w.name, job_id=w.job_id, state=JobState.RUNNING, raw_state="r",
            queue="grid_short.q", host=w.host, slots=4, since=t - 300 - 60 * i,
            workers=(w.address,), log_path=None,
        )
        for i, w in enumerate(workers)
    ]
    extra = [
        JobRow(name="ndtui-6", job_id="1006", state=JobState.PENDING, raw_state="qw",
               queue=None, slots=4, since=t - 42,
               reason="cannot run in queue \"grid_short.q\" because it offers only hc:mem_req=4G"),
        JobRow(name="ndtui-7", job_id="1007", state=JobState.ERROR, raw_state="Eqw",
               since=t - 3700, reason="can't chdir to /home/x: No such file or directory"),
    ]
    return make_snapshot(workers=tuple(workers), jobs=tuple(running + extra), t=t, requested=8)


class FakeMonitor:
    """Hands out prepared snapshots (the last one again when they run out)."""

    def __init__(self, *snapshots: ConsoleSnapshot) -> None:
        self.snapshots = list(snapshots)
        self.calls = 0

    def poll(self) -> ConsoleSnapshot:
        self.calls += 1
        if len(self.snapshots) > 1:
            return self.snapshots.pop(0)
        return self.snapshots[0]


def vary(snapshot: ConsoleSnapshot, fraction: float, rng: random.Random, t: float) -> ConsoleSnapshot:
    """A later snapshot where ``fraction`` of the workers changed their CPU, memory and tasks."""
    assert snapshot.cluster is not None
    workers = list(snapshot.cluster.workers)
    for i in rng.sample(range(len(workers)), max(1, int(len(workers) * fraction))):
        w = workers[i]
        workers[i] = replace(
            w,
            cpu=rng.uniform(0, 400),
            memory=rng.randint(1, 7) * GiB,
            executing=rng.randint(0, 4),
            in_memory=rng.randint(0, 100),
            last_seen=t,
        )
    cluster = replace(snapshot.cluster, time=t, workers=tuple(workers))
    return replace(snapshot, time=t, cluster=cluster)


def overview_series(n_workers: int = 8, seconds: int = 300, t_end: float = T0) -> list[ConsoleSnapshot]:
    """One snapshot a second for ``seconds``, deterministic: memory grows and starts to spill
    half-way, CPU follows the work, tasks finish at a rate that steps up, the queue drains, and
    one job pends for the first minute before it runs."""
    out = []
    finished = 0
    total = 20_000
    for k in range(seconds):
        t = t_end - (seconds - 1 - k)
        phase = k / max(1, seconds - 1)
        workers = tuple(
            make_worker(
                i, t=t,
                cpu=float(40 + 50 * phase + 10 * ((k + i) % 3)),
                managed=int((0.5 + 5 * phase) * GiB),
                unmanaged=int(0.8 * GiB),
                memory=int((1.3 + 5 * phase) * GiB),
                spilled=int(max(0.0, phase - 0.5) * 4 * GiB),
                executing=4 if k < seconds - 20 or i == 0 else 0,
            )
            for i in range(n_workers if k >= 60 else n_workers - 1)
        )
        finished += 40 if k < seconds // 2 else 90
        queued = max(0, total - finished - 64)
        jobs = tuple(
            JobRow(name=w.name, job_id=w.job_id, state=JobState.RUNNING, raw_state="r",
                   queue="grid_short.q", host=w.host, slots=4, since=t_end - 400, workers=(w.address,))
            for w in workers
        ) + ((JobRow(name="ndtui-7", job_id="1007", state=JobState.PENDING, raw_state="qw"),) if k < 60 else ())
        snap = make_snapshot(workers=workers, jobs=jobs, t=t)
        tasks = TaskCounts(total=total, processing=min(64, total - finished), queued=queued,
                           memory=finished, finished=finished)
        out.append(replace(snap, cluster=replace(snap.cluster, tasks=tasks)))
    return out
