"""Scheduler cost of one console refresh at 10-2,000 workers: probe vs scheduler_info vs HTTP.

Layout (all on this machine, loopback only):

* the scheduler runs in its own process (default config, its HTTP server on 127.0.0.1 with
  the JSON and Prometheus routes, no Bokeh), so its CPU time can be read from outside;
* the workers are plain ``distributed.Worker`` objects, up to 250 per host process in a few
  host processes, made light (no ticks, no missing-data checks, system monitor at 5 s, no
  profiler, no memory monitor) so 2,000 of them keep heartbeating on 2 cores; the scheduler
  sets their heartbeat interval as usual (6 s at 1,000 workers, 11 s at 2,000);
* this process is the console side: a synchronous ``Client`` and the console's own
  ``SchedulerProbe`` (the ``ndtui_probe_3`` scheduler plugin);
* the scheduler also carries a keeper's state board (``keeper.StateBoard``, as a keeper
  installs it, holding 1,000 job rows): "probe + keeper state" is the probe a keeper's screen
  makes (``keeper=<version>``: it also learns the cluster's control state, in steady state
  "nothing new"), side by side with the plain probe.

Scheduler CPU per call = (scheduler CPU during K calls - idle rate x the same wall time) / K,
the idle rate taken from idle windows right before and after; the probe and scheduler_info are
measured in each round, side by side (the other methods in the first), and the table shows
medians over the rounds. Every method is paced like a poll (one call every 20 ms, or 3x its
latency when slower), so each call finds the scheduler idle and pays the same wake-up; calls
made back to back would share it, which favoured the methods measured that way before issue
12. Client latency is the median wall time of one call in this process.

The console's probe in steady state is measured as a 1 s poll would see it: 50 probes (each
with its own cursor, as 50 consoles) take turns every 20 ms, so each asks "what changed in the
last second" and the scheduler answers with about N / heartbeat-interval rows. Many cursors
make the probe's CPU signal large beside the scheduler's idle CPU (heartbeats), whose drift
between windows is what makes this subtraction noisy.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import signal
import subprocess
import sys
import time

from bench.common import PY, REPO, Report, child_env, fmt, log, median, part_main, proc_cpu_seconds

PART = "probe"
SIZES = (10, 100, 1000, 2000)  # (300 with --sizes: the full set must stay under 15 minutes)
QUICK_SIZES = (10, 100)
GOAL_SIZES = (1000, 2000)  # where the probe must be >= GOAL_RATIO x cheaper than scheduler_info
WORKERS_PER_HOST = 250
MAX_HOSTS = 8
# Measured in every round (the goals compare them); the others in the first round only.
EVERY_ROUND = ("probe", "probe_keeper", "scheduler_info")
QUIET_CALLBACKS = ("tick", "ticks", "find-missing", "shift_counters")
N_CURSORS = 50  # probes taking turns to emulate a 1 s poll interval per cursor
GOAL_RATIO = 8.0
GOAL_MS = 2.0
GOAL_KEEPER_PCT = 5.0  # what a keeper's state may add to the probe's scheduler CPU
KEEPER_JOBS = 1000

METHODS = (
    ("probe", "probe, changed rows (1 s steady state)"),
    ("probe_keeper", "probe + keeper state (a keeper's screen, 1 s)"),
    ("probe_full", "probe full=True"),
    ("scheduler_info", "scheduler_info(n_workers=-1)"),
    ("identity_json", "HTTP /json/identity.json"),
    ("metrics", "HTTP /metrics (Prometheus)"),
)


# ================================================================ child roles


def _role_scheduler() -> None:
    async def main() -> None:
        from distributed import Scheduler

        s = Scheduler(host="127.0.0.1", port=0, dashboard=False, dashboard_address="127.0.0.1:0")
        await s
        from naist_dask_tui.core.keeper import StateBoard
        from naist_dask_tui.core.scheduler_plugin import KEEPER_EXTENSION
        from naist_dask_tui.core.snapshot import JobRow, JobState, job_row_to_wire

        board = StateBoard()
        board.publish({
            "name": "bench", "backend": "sge", "requested": KEEPER_JOBS, "notices": [],
            "jobs": [job_row_to_wire(JobRow(name=f"job-{i}", job_id=str(1000 + i), state=JobState.RUNNING,
                                            queue="grid_short.q", host="node", slots=24, since=1.0))
                     for i in range(KEEPER_JOBS)],
        })
        s.extensions[KEEPER_EXTENSION] = board
        http_port = s.http_server.port if getattr(s, "http_server", None) else None
        print(json.dumps({"address": s.address, "http_port": http_port, "pid": os.getpid()}), flush=True)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, sys.stdin.read)  # until the driver closes our stdin
        await s.close()

    asyncio.run(main())


def _light_worker_config() -> dict:
    return {
        "distributed.admin.tick.interval": "1s",
        "distributed.admin.system-monitor.interval": "5s",
        "distributed.admin.system-monitor.gil.enabled": False,
        "distributed.worker.profile.enabled": False,
        "distributed.worker.memory.target": False,
        "distributed.worker.memory.spill": False,
        "distributed.worker.memory.pause": False,
        "distributed.worker.memory.terminate": False,
        "distributed.logging.distributed": "error",
    }


def _role_workers(address: str, prefix: str) -> None:
    import dask

    dask.config.set(_light_worker_config())
    import logging

    logging.getLogger("distributed").setLevel(logging.ERROR)

    async def main() -> None:
        from distributed import Worker

        loop = asyncio.get_running_loop()
        workers: list = []
        while True:
            line = await loop.run_in_executor(None, sys.stdin.readline)
            if not line:
                break
            parts = line.split()
            if len(parts) != 2 or parts[0] != "add":
                continue
            k = int(parts[1])
            new = [
                Worker(
                    address,
                    nthreads=1,
                    memory_limit=4 * 2**30,
                    name=f"{prefix}-{len(workers) + i}",
                    host="127.0.0.1",
                    validate=False,
                )
                for i in range(k)
            ]
            for b in range(0, k, 25):
                await asyncio.gather(*(w.start() for w in new[b : b + 25]))
            for w in new:
                # Only the heartbeat matters to the scheduler: 2,000 workers' 1 s ticks and
                # missing-data checks would keep this machine's 2 cores busy and delay the
                # probe's calls (a real worker runs on its own node).
                for name in QUIET_CALLBACKS:
                    pc = w.periodic_callbacks.get(name)
                    if pc is not None:
                        pc.stop()
            workers += new
            print(f"ok {len(workers)}", flush=True)
        os._exit(0)  # the driver ends the scheduler; a graceful close of 250 workers is slow

    asyncio.run(main())


# ================================================================ driver


class Hosts:
    """The worker host processes; ``grow(n)`` spreads new workers over them."""

    def __init__(self, address: str, n_hosts: int, log_file):
        self.procs = []
        self.counts = []
        for i in range(n_hosts):
            p = subprocess.Popen(
                [PY, "-m", "bench.bench_probe", "--role", "workers", "--scheduler", address, "--prefix", f"h{i}"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log_file,
                text=True,
                cwd=REPO,
                env=child_env(),
            )
            self.procs.append(p)
            self.counts.append(0)

    @property
    def total(self) -> int:
        return sum(self.counts)

    def grow(self, n: int) -> None:
        need = n - self.total
        orders = []
        while need > 0:
            i = min(range(len(self.procs)), key=lambda j: self.counts[j])
            k = min(need, WORKERS_PER_HOST - self.counts[i], 50)
            if k <= 0:
                raise RuntimeError("more workers than the host processes hold")
            self.counts[i] += k
            orders.append((i, k))
            need -= k
        per = {}
        for i, k in orders:
            per[i] = per.get(i, 0) + k
        for i, k in per.items():
            self.procs[i].stdin.write(f"add {k}\n")
            self.procs[i].stdin.flush()
        for i in per:
            line = self.procs[i].stdout.readline()
            if not line.startswith("ok"):
                raise RuntimeError(f"worker host {i} failed: {line!r}")

    def close(self) -> None:
        for p in self.procs:
            try:
                p.stdin.close()
            except Exception:
                pass
        for p in self.procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def heartbeat_interval(n: int) -> float:
    from distributed.scheduler import heartbeat_interval as hb

    return hb(n)


class Http:
    """One keep-alive HTTP connection to the scheduler's HTTP server (as a scraper keeps)."""

    def __init__(self, port: int):
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def get(self, path: str) -> bytes:
        try:
            self.conn.request("GET", path)
            resp = self.conn.getresponse()
        except (http.client.HTTPException, OSError):
            self.conn.close()
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            self.conn.request("GET", path)
            resp = self.conn.getresponse()
        body = resp.read()
        if resp.status != 200:
            raise RuntimeError(f"GET {path}: HTTP {resp.status}")
        return body


def run(args, report: Report) -> None:
    from distributed import Client

    from naist_dask_tui.core.probe import SchedulerProbe
    from naist_dask_tui.core.scheduler_plugin import HANDLER

    quick = args.quick
    sizes = tuple(int(s) for s in args.sizes.split(",")) if args.sizes else (QUICK_SIZES if quick else SIZES)
    rounds_top = args.rounds or (1 if quick else 3)  # at 1,000 and 2,000 workers (the goals)
    rounds_low = args.rounds or (1 if quick else 2)
    idle_s = 0.6 if quick else 1.5
    window_s = 0.6 if quick else 1.5
    n_hosts = max(1, min(MAX_HOSTS, -(-max(sizes) // WORKERS_PER_HOST)))
    report.note(
        f"scheduler in its own process; {max(sizes)} workers as distributed.Worker objects in "
        f"{n_hosts} host process(es); {rounds_top} round(s) at {', '.join(str(n) for n in GOAL_SIZES)}, "
        f"{rounds_low} below; CPU = scheduler process CPU minus its idle rate over the same wall time; "
        "every method paced like a poll (never back to back)"
    )

    import tempfile

    log_file = tempfile.NamedTemporaryFile("w+", prefix="bench-probe-", suffix=".log", delete=False)
    sched = subprocess.Popen(
        [PY, "-m", "bench.bench_probe", "--role", "scheduler"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=log_file,
        text=True,
        cwd=REPO,
        env=child_env(),
    )
    hosts = None
    client = None
    finished = False
    try:
        info = json.loads(sched.stdout.readline())
        address, http_port, spid = info["address"], info["http_port"], info["pid"]
        log(PART, f"scheduler {address} (pid {spid}), HTTP on 127.0.0.1:{http_port}")
        hosts = Hosts(address, n_hosts, log_file)
        client = Client(address, timeout="30s")
        probes = [SchedulerProbe(client) for _ in range(N_CURSORS)]
        probes[0].install()
        keeper_probes = [SchedulerProbe(client, keeper=True) for _ in range(N_CURSORS)]
        for p in probes[1:] + keeper_probes:
            p.mode = probes[0].mode
        if probes[0].mode != "plugin":
            report.note("the probe plugin could not be installed: the probe fell back to identity()")
        web = Http(http_port)
        metrics_body = web.get("/metrics")
        if b"not available" in metrics_body[:200]:
            report.note("prometheus_client is not installed: /metrics served only its stub page")

        def n_on_scheduler() -> int:
            return client.sync(client.scheduler.identity, n_workers=0)["n_workers"]

        def sched_cpu() -> float:
            return proc_cpu_seconds(spid)

        # one call of each method; returns (latency s, info)
        def call_probe_rotating(i: int, keeper: bool = False) -> int:
            snap = (keeper_probes if keeper else probes)[i % N_CURSORS].snapshot()
            return len(snap.changed) if snap.changed is not None else len(snap.workers)

        def call(method: str):
            if method == "probe_full":
                probes[0].snapshot(full=True)
            elif method == "scheduler_info":
                client.scheduler_info(n_workers=-1)
            elif method == "identity_json":
                web.get("/json/identity.json")
            elif method == "metrics":
                web.get("/metrics")
            else:
                raise ValueError(method)

        def reply_kb(method: str) -> float:
            import msgpack

            if method in ("probe", "probe_full"):
                raw = client.sync(getattr(client.scheduler, HANDLER), token="bench-size", full=method == "probe_full")
                return len(msgpack.dumps(raw, default=str)) / 1024
            if method == "scheduler_info":
                raw = client.sync(client.scheduler.identity, n_workers=-1)
                return len(msgpack.dumps(raw, default=str)) / 1024
            path = "/json/identity.json" if method == "identity_json" else "/metrics"
            return len(web.get(path)) / 1024

        def handler_split() -> dict:
            """The handler alone, inside the scheduler (thread CPU, no comm, no serialisation)."""

            def inside(dask_scheduler, name=HANDLER, reps=20):
                import time as _t

                fn = dask_scheduler.handlers[name]
                out = {}
                t = _t.thread_time()
                for _ in range(reps):
                    fn(token=None, full=True)
                out["all_rows"] = (_t.thread_time() - t) / reps
                fn(token="bench-inside")
                t = _t.thread_time()
                for _ in range(reps):
                    fn(token="bench-inside")
                out["no_change"] = (_t.thread_time() - t) / reps
                # the same with a keeper's state asked for (a keeper's screen), nothing new
                version = fn(token="bench-inside-k", keeper=-1)["keeper"]["version"]
                t = _t.thread_time()
                for _ in range(reps):
                    fn(token="bench-inside-k", keeper=version)
                out["no_change_keeper"] = (_t.thread_time() - t) / reps
                return out

            return {k: 1000 * v for k, v in client.run_on_scheduler(inside).items()}

        def idle_window(seconds: float) -> float:
            c0, t0 = sched_cpu(), time.perf_counter()
            time.sleep(seconds)
            return (sched_cpu() - c0) / (time.perf_counter() - t0)

        def method_window(method: str, seconds: float, k: int, spacing: float):
            """(scheduler CPU s, wall s, latencies, rows per call, CPU s of each call) of K calls,
            one every ``spacing`` seconds: every method is paced like a poll, so each call
            finds the scheduler idle and pays the same wake-up (back-to-back calls would share
            it). Each call's own CPU is the scheduler's CPU from just before the call to just
            after its reply (plus 0.5 ms for the scheduler to finish): a heartbeat lands in few
            of those short windows at small sizes, and their median leaves those out."""
            lat: list[float] = []
            rows: list[int] = []
            own: list[float] = []
            probe_like = method in ("probe", "probe_keeper")
            if probe_like:
                # One uncounted turn first, so every cursor's previous poll is 1 s old.
                spacing = 1.0 / N_CURSORS
                k = max(N_CURSORS, int(round(2 * seconds / spacing)))
                warm = N_CURSORS
            else:
                warm = 0
            c0, t0 = sched_cpu(), time.perf_counter()
            t_first = time.perf_counter()
            for i in range(warm + k):
                due = t_first + i * spacing
                delay = due - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                if i == warm:
                    c0, t0 = sched_cpu(), time.perf_counter()
                ca = sched_cpu() if i >= warm else 0.0
                a = time.perf_counter()
                if probe_like:
                    n_rows = call_probe_rotating(i, keeper=method == "probe_keeper")
                else:
                    call(method)
                    n_rows = -1
                if i >= warm:
                    lat.append(time.perf_counter() - a)
                    time.sleep(0.0005)
                    own.append(sched_cpu() - ca)
                    if n_rows >= 0:
                        rows.append(n_rows)
            c1, t1 = sched_cpu(), time.perf_counter()
            return c1 - c0, t1 - t0, lat, rows, own

        results: dict[int, dict] = {}
        for n in sizes:
            t_start = time.perf_counter()
            hosts.grow(n)
            deadline = time.time() + 120
            while n_on_scheduler() < n:
                if time.time() > deadline:
                    raise RuntimeError(f"only {n_on_scheduler()} of {n} workers connected")
                time.sleep(0.2)
            started = time.perf_counter() - t_start
            hb = heartbeat_interval(n)
            # Settle: every worker has heartbeated (with metrics) at the new interval.
            time.sleep(max(1.0, 1.5 * hb) if not quick else max(0.5, hb))
            log(PART, f"{n} workers up in {started:.1f} s (heartbeat every {hb:g} s); measuring")
            # Warm up: every cursor gets its first (full) answer; time each method once.
            for i in range(N_CURSORS):
                call_probe_rotating(i)
                call_probe_rotating(i, keeper=True)
            k_of: dict[str, int] = {}
            spacing_of: dict[str, float] = {}
            for method, _ in METHODS[2:]:
                a = time.perf_counter()
                call(method)
                one = time.perf_counter() - a
                a = time.perf_counter()
                call(method)
                one = min(one, time.perf_counter() - a)
                # as often as the probe's cursors take turns, but never back to back
                spacing_of[method] = max(1.0 / N_CURSORS, 3 * one)
                k_of[method] = int(max(5, min(200, window_s / spacing_of[method])))
            time.sleep(1.0 / N_CURSORS * 2)
            per_call: dict[str, list[float]] = {m: [] for m, _ in METHODS}
            lats: dict[str, list[float]] = {m: [] for m, _ in METHODS}
            owns: dict[str, list[float]] = {m: [] for m, _ in METHODS}
            rows_seen: list[int] = []
            idles: list[float] = []
            rounds = rounds_top if (n == max(sizes) or n in GOAL_SIZES) else rounds_low
            # At the largest size the scheduler's idle CPU (heartbeats) is several times the
            # probe's signal, and its drift between windows is the noise: longer windows there.
            stretch = 2.0 if (n in GOAL_SIZES and not quick) else 1.0
            for r in range(rounds):
                prev_idle = idle_window(idle_s * stretch)
                idles.append(prev_idle)
                for method, _ in METHODS:
                    if r and method not in EVERY_ROUND:
                        continue  # the other methods are context, measured in the first round
                    k = int(k_of.get(method, 0) * stretch)
                    cpu, wall, lat, rows, own = method_window(method, window_s * stretch, k,
                                                              spacing_of.get(method, 0.0))
                    owns[method].extend(own)
                    next_idle = idle_window(idle_s * stretch)
                    idles.append(next_idle)
                    base = (prev_idle + next_idle) / 2
                    per_call[method].append(max(0.0, cpu - base * wall) / len(lat))
                    lats[method].extend(lat)
                    rows_seen.extend(rows)
                    prev_idle = next_idle
            res = {
                "workers": n,
                "start_s": started,
                "heartbeat_s": hb,
                "idle_pct": 100 * median(idles),
                "rows_per_poll": sum(rows_seen) / max(1, len(rows_seen)),
                "handler": handler_split(),
                "cpu_ms": {m: 1000 * median(v) for m, v in per_call.items()},
                "cpu_ms_all": {m: [1000 * x for x in v] for m, v in per_call.items()},
                "lat_ms": {m: 1000 * median(v) for m, v in lats.items()},
                "call_ms": {m: 1000 * median(v) for m, v in owns.items()},
                "kb": {m: reply_kb(m) for m, _ in METHODS},
            }
            results[n] = res
            log(PART, f"{n} workers: " + ", ".join(f"{m} {res['cpu_ms'][m]:.2f} ms" for m, _ in METHODS))

        for n, res in results.items():
            report.add(f"{n:>5} workers: scheduler idle CPU", res["idle_pct"], "% core",
                       f"heartbeat every {res['heartbeat_s']:g} s; workers started in {res['start_s']:.0f} s")
            base = res["cpu_ms"]["scheduler_info"]
            for method, label in METHODS:
                cpu = res["cpu_ms"][method]
                ratio = base / cpu if cpu > 0 else float("inf")
                full = " when full" if method in ("probe", "probe_keeper") else ""
                note = (f"per-call median {fmt(res['call_ms'][method])} ms; latency {fmt(res['lat_ms'][method])} ms, "
                        f"reply {fmt(res['kb'][method])} KB{full}")
                if method != "scheduler_info":
                    note += f", scheduler_info/this = {fmt(ratio)}x"
                if method == "probe":
                    note += f", {fmt(res['rows_per_poll'])} rows/poll"
                report.add(f"{n:>5} workers: {label} sched CPU", cpu, "ms/call", note)
            h = res["handler"]
            report.add(f"{n:>5} workers: probe handler alone, all rows", h["all_rows"], "ms/call",
                       "thread CPU inside the scheduler: no comm, no serialisation")
            report.add(f"{n:>5} workers: probe handler alone, nothing changed", h["no_change"], "ms/call",
                       "the per-worker signature scan every poll pays")
            report.add(f"{n:>5} workers: the same + keeper state, nothing new", h["no_change_keeper"], "ms/call",
                       f"+{fmt(1000 * (h['no_change_keeper'] - h['no_change']))} us for the keeper's state")
        if results:
            # The changed-rows probe never costs more than scheduler_info, at every size: decided
            # on each call's own CPU (median), which heartbeats do not blur at small sizes, where
            # both sit near the cost of any call; the window figures are shown beside it.
            worse = [n for n, r in results.items() if r["call_ms"]["probe"] > r["call_ms"]["scheduler_info"]]
            report.goal(
                "probe <= scheduler_info(n_workers=-1) in scheduler CPU at every size",
                not worse,
                "per-call medians " + ", ".join(
                    f"{n}: {fmt(r['call_ms']['probe'])} vs {fmt(r['call_ms']['scheduler_info'])} ms"
                    for n, r in results.items())
                + "; windows " + ", ".join(
                    f"{n}: {fmt(r['cpu_ms']['probe'])} vs {fmt(r['cpu_ms']['scheduler_info'])}"
                    for n, r in results.items()) + (f"; more at {worse}" if worse else ""),
            )
            for n in GOAL_SIZES:
                res = results.get(n)
                if res is None:
                    report.goal(f"probe >= {GOAL_RATIO:g}x cheaper than scheduler_info at {n} workers", None,
                                "size not run (quick/partial run)")
                    continue
                probe, info = res["cpu_ms"]["probe"], res["cpu_ms"]["scheduler_info"]
                ratio = info / probe if probe > 0 else float("inf")
                per_round = [i / p if p > 0 else float("inf") for i, p in
                             zip(res["cpu_ms_all"]["scheduler_info"], res["cpu_ms_all"]["probe"], strict=False)]
                report.goal(
                    f"probe >= {GOAL_RATIO:g}x cheaper than scheduler_info at {n} workers",
                    ratio >= GOAL_RATIO,
                    f"{fmt(ratio)}x ({fmt(info)} ms vs {fmt(probe)} ms; per round "
                    f"{', '.join(fmt(x) + 'x' for x in per_round)})",
                )
            top = max(results)
            res = results[top]
            probe = res["cpu_ms"]["probe"]
            where = f"at {top} workers" + ("" if top >= 1000 else " (not 1,000: quick/partial run)")
            report.goal(
                f"probe < {GOAL_MS:g} ms scheduler CPU per poll",
                probe < GOAL_MS if top >= 1000 else None,
                f"{fmt(probe)} ms {where}",
            )
            extra_ms = res["handler"]["no_change_keeper"] - res["handler"]["no_change"]
            pct = 100 * extra_ms / probe if probe > 0 else float("inf")
            e2e = res["cpu_ms"]["probe_keeper"]
            report.goal(
                f"a keeper's state adds < {GOAL_KEEPER_PCT:g}% to the probe's scheduler CPU per refresh",
                pct < GOAL_KEEPER_PCT if top >= 1000 else None,
                f"{fmt(pct)}% (+{fmt(1000 * extra_ms)} us in the handler, thread CPU, on {fmt(probe)} ms "
                f"per probe) {where}; end to end, noisier: probe {fmt(probe)} vs probe + keeper {fmt(e2e)} ms",
            )
            if args.json:
                for n in sorted(results):
                    per_round = {m: [round(x, 3) for x in v] for m, v in results[n]["cpu_ms_all"].items()}
                    report.note(f"per-round CPU ms at {n} workers: {json.dumps(per_round)}")
        finished = True
    finally:
        if client is not None:
            try:
                client.close(timeout=5)
            except Exception:
                pass
        if hosts is not None:
            hosts.close()
        try:
            sched.stdin.close()
            sched.wait(timeout=15)
        except Exception:
            sched.send_signal(signal.SIGKILL)
            sched.wait()
        log_file.close()
        if finished:
            os.unlink(log_file.name)
        else:
            log(PART, f"scheduler and worker logs: {log_file.name}")


def _extra(parser) -> None:
    parser.add_argument("--sizes", help="comma-separated worker counts (default 10,100,300,1000)")
    parser.add_argument("--rounds", type=int, help="rounds of side-by-side measurement (default 3)")
    parser.add_argument("--role", choices=("scheduler", "workers"), help=argparse_hidden())
    parser.add_argument("--scheduler", help=argparse_hidden())
    parser.add_argument("--prefix", default="w", help=argparse_hidden())


def argparse_hidden():
    import argparse

    return argparse.SUPPRESS


def main() -> int:
    if "--role" in sys.argv:
        i = sys.argv.index("--role")
        role = sys.argv[i + 1]
        if role == "scheduler":
            _role_scheduler()
        else:
            addr = sys.argv[sys.argv.index("--scheduler") + 1]
            prefix = sys.argv[sys.argv.index("--prefix") + 1] if "--prefix" in sys.argv else "w"
            _role_workers(addr, prefix)
        return 0
    return part_main(PART, run, __doc__, _extra)


if __name__ == "__main__":
    sys.exit(main())
