"""Scale latency on the real SGE: controller.scale(1) (what the "+" key calls) to the job in
qstat, to the job running, and to its worker connected (the console's probe sees it).

The console's controller starts an SGECluster with 0 jobs (cores=1, memory=1GB, interface lo,
``-pe smp 1``); each repeat scales 0 -> 1, polls ``qstat`` and the probe every 0.1 s, then
scales back to 0 and waits until the queue is empty. SGE's own ``schedule_interval`` (how often
its scheduler dispatches pending jobs) is printed beside the numbers: it bounds the qstat->running
step. The screen polls once a second, so the worker shows on screen up to 1 s after the probe
can see it. ``qstat`` is left empty at the end, whatever happens.

``--lab``: the jobs run on the lab network's compute nodes (``ci/lab-network.sh up``), started
with the shipped ``naist`` profile (TLS, workers on ib0, scheduler on bond1) shrunk in size, as
the lab tests do; the table says on which node each job ran.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

from bench.common import Report, fmt, log, median, part_main

PART = "scale_sge"
POLL = 0.1


def schedule_interval() -> str:
    try:
        out = subprocess.run(["qconf", "-ssconf"], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    m = re.search(r"^schedule_interval\s+(\S+)", out, re.M)
    return m.group(1) if m else "unknown"


def run(args, report: Report) -> None:
    if not shutil.which("qsub") or not shutil.which("qstat"):
        report.note("skipped: qsub/qstat not on PATH (no SGE on this machine)")
        report.goal("scale 0->1 measured on real SGE", None, "skipped: no SGE here")
        return
    tmp = tempfile.mkdtemp(prefix="bench-sge-")
    for var in ("XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME", "XDG_DATA_HOME"):
        os.makedirs(f"{tmp}/{var.lower()}", exist_ok=True)
        os.environ[var] = f"{tmp}/{var.lower()}"

    from naist_dask_tui.core import sge
    from naist_dask_tui.core.cluster import ClusterController
    from naist_dask_tui.core.probe import SchedulerProbe
    from naist_dask_tui.core.settings import load_settings
    from naist_dask_tui.core.snapshot import JobState

    reps = 1 if args.quick else 3
    interval = schedule_interval()
    lab = getattr(args, "lab", False)
    if lab:
        # the shipped profile, shrunk; lab_node=TRUE: only the nodes take these jobs
        settings = load_settings(
            dict(backend="sge", jobs=0, cores=1, memory="1GB", job_extra_directives=["-pe smp 1"],
                 resource_spec="lab_node=TRUE", log_directory=f"{tmp}/logs"),
            env={}, profile="naist",
        )  # fmt: skip
    else:
        settings = load_settings(
            dict(
                backend="sge", jobs=0, cores=1, processes=1, memory="1GB",
                queue=os.environ.get("SGE_QUEUE", "grid_short.q"), interface="lo", scheduler_interface="lo",
                job_extra_directives=["-pe smp 1"], local_directory=tmp, log_directory=f"{tmp}/logs",
            ),
            env={},
        )
    hosts: list[str] = []
    controller = ClusterController(settings)
    times: dict[str, list[float]] = {"qsub": [], "qstat": [], "running": [], "worker": [], "down": []}
    try:
        t0 = time.perf_counter()
        controller.start()
        controller.wait_idle(60)
        report.add("controller.start() (SGECluster, 0 jobs)", time.perf_counter() - t0, "s")
        probe = SchedulerProbe(controller.client, job_of=controller.job_of)
        probe.snapshot()

        def ours():
            return [j for j in sge.qstat() if j.name == controller.job_name]

        for r in range(reps):
            seen: dict[str, float] = {}
            old_ids = set(controller.submitted_job_ids())  # ids of earlier repeats stay known
            t0 = time.perf_counter()
            controller.scale(1)
            deadline = time.time() + 120
            while len(seen) < 4 and time.time() < deadline:
                now = time.perf_counter() - t0
                if "qsub" not in seen and controller.submitted_job_ids() - old_ids:
                    seen["qsub"] = now
                jobs = ours()
                if "qstat" not in seen and jobs:
                    seen["qstat"] = time.perf_counter() - t0
                if "running" not in seen and any(j.state is JobState.RUNNING for j in jobs):
                    seen["running"] = time.perf_counter() - t0
                    hosts.append(next(j.host or "?" for j in jobs if j.state is JobState.RUNNING))
                if "worker" not in seen and probe.snapshot().n_workers >= 1:
                    seen["worker"] = time.perf_counter() - t0
                time.sleep(POLL)
            for k, v in seen.items():
                times[k].append(v)
            log(PART, f"scale-up {r + 1}: " + ", ".join(f"{k} {v:.2f} s" for k, v in seen.items()))
            if "worker" not in seen:
                report.note(f"scale-up {r + 1}: the worker did not connect within 120 s")
            t1 = time.perf_counter()
            controller.scale(0)
            controller.wait_idle(120)
            deadline = time.time() + 60
            while (ours() or probe.snapshot().n_workers) and time.time() < deadline:
                time.sleep(POLL)
            times["down"].append(time.perf_counter() - t1)
    finally:
        try:
            controller.close()
        finally:
            left = [j for j in sge.qstat() if j.name == controller.job_name] if controller.job_name else []
            if left:
                sge.qdel([j.job_id for j in left])
                report.note(f"deleted {len(left)} job(s) left after close: {[j.job_id for j in left]}")
            shutil.rmtree(tmp, ignore_errors=True)
    labels = {
        "qsub": "scale(1) -> qsub returned (job id known)",
        "qstat": "scale(1) -> job in qstat",
        "running": "scale(1) -> job running (qstat r)",
        "worker": "scale(1) -> worker connected (probe sees it)",
        "down": "scale(0) -> qstat empty and worker gone",
    }
    for k, label in labels.items():
        xs = times[k]
        report.add(label, median(xs), "s", f"median of {len(xs)}: " + ", ".join(f"{x:.2f}" for x in xs)
                   + (f"; SGE schedule_interval {interval}" if k == "running" else ""))
    report.add("SGE schedule_interval (qconf -ssconf)", interval, "")
    report.add("where the jobs ran", ", ".join(hosts) or "-", "",
               "lab network (naist profile, TLS, ib0 -> bond1)" if lab else "this host (interface lo)")
    w = median(times["worker"])
    report.goal("scale 0->1 measured on real SGE (no goal number; reported)",
                bool(times["worker"]) or None,
                f"job in qstat {fmt(median(times['qstat']))} s, worker {fmt(w)} s, "
                f"schedule_interval {interval}; on screen within +1 s (poll interval)")
    remaining = [j for j in sge.qstat() if j.name == controller.job_name] if controller.job_name else []
    report.add("our jobs left in qstat at the end", len(remaining), "")


def _options(parser) -> None:
    parser.add_argument("--lab", action="store_true",
                        help="run the jobs on the lab network's compute nodes (ci/lab-network.sh up)")


if __name__ == "__main__":
    sys.exit(part_main(PART, run, __doc__, extra=_options))
