"""The price of TLS: where its time goes, and what it costs the lab's computation.

1. **The comm layer** (always; ~1 min): distributed's own ``tcp://`` and ``tls://`` comms
   between two endpoints in this process (both ends' CPU counted), alternated, for three
   kinds of connection: plain TCP, TLS with the console's credentials (its own CA per
   cluster, EC P-256 certificates, ``core/credentials.py``) and TLS with dask-jobqueue's
   ``Security.temporary()`` (RSA-2048). Per kind: the handshake, CPU per MB of large frames
   (40 MB numpy arrays, as chunks move between workers), CPU per small message round trip (as
   the scheduler and workers talk), and the cipher negotiated. Beside them, the cipher's own
   speed (AES-256-GCM and AES-128-GCM over 16 KB records, ``cryptography``).
2. **Root fusion** (always; ~1 min): the lab's computation at its own chunking on a
   LocalCluster of 2 one-thread worker processes, TCP and TLS (the console's credentials), each
   with dask's graph as it is and with the console's root fusion (``core/rootfuse.py``: ``x_i``
   and ``y_i`` made in the task that adds them), alternated. Wall time and MB copied between
   workers per run: what TLS costs the computation before and after. Beside it, the fusion
   pass's own cost (it runs in the scheduler) on the lab's graph at ``(10000, 10000, 10)`` in
   ``(100, 100, 5)`` (40,000 root chunks; 69,900 tasks after dask's own optimization).
3. **On SGE** (``--sge``, ~4 min; at most 2 one-core jobs at a time, every job deleted): the
   lab's computation at its own chunking, ``(6000, 6000, 10)`` in ``(1000, 1000, 5)``, on 2
   one-core jobs started with plain dask-jobqueue, alternated: no TLS (the lab's plain script),
   no TLS with root fusion, ``Security.temporary()`` (RSA), the console's credentials (EC),
   and EC with the console's progress plugin, probe and root fusion on (what the console's
   compute pane runs with its defaults). Wall time of each run, and the ratios per round.
"""

from __future__ import annotations

import asyncio
import time

from bench.common import Report, fmt, log, median, part_main

PART = "tls"
KINDS = ("tcp", "tls-ec", "tls-rsa")
BIG = 40 * 2**20


def _security(kind: str):
    from distributed.security import Security

    if kind == "tcp":
        return None
    if kind == "tls-rsa":
        return Security.temporary()
    from naist_dask_tui.core.credentials import make_credentials

    return make_credentials().security()


async def _comm_once(kind: str, n_big: int, n_small: int) -> dict:
    import numpy as np
    from distributed.comm import connect, listen
    from distributed.protocol import to_serialize

    sec = _security(kind)
    prefix = "tcp://" if sec is None else "tls://"
    listen_args = sec.get_listen_args("scheduler") if sec else {}
    connect_args = sec.get_connection_args("worker") if sec else {}
    payload = np.random.random(BIG // 8)

    async def handle(comm):
        while True:
            msg = await comm.read()
            if msg == "stop":
                await comm.write("bye")
                return
            await comm.write("ok")

    listener = listen(prefix + "127.0.0.1:0", handle, **listen_args)
    await listener.start()
    out: dict = {}
    try:
        t0 = time.perf_counter()
        comm = await connect(listener.contact_address, **connect_args)
        out["handshake_ms"] = 1000 * (time.perf_counter() - t0)
        cipher = comm.extra_info.get("cipher")
        out["cipher"] = f"{cipher[0]} ({cipher[1]})" if cipher else "none"
        c0 = time.process_time()
        for _ in range(n_big):
            await comm.write({"x": to_serialize(payload)})
            await comm.read()
        out["ms_per_mb"] = 1000 * (time.process_time() - c0) / (n_big * BIG / 2**20)
        c0 = time.process_time()
        for i in range(n_small):
            await comm.write({"op": "task-finished", "key": f"x-{i}", "nbytes": 8})
            await comm.read()
        out["us_per_message"] = 1e6 * (time.process_time() - c0) / n_small
        await comm.write("stop")
        await comm.read()
        await comm.close()
    finally:
        listener.stop()
    return out


def _cipher_speed() -> dict[str, float]:
    """ms of CPU per MB to seal 16 KB records (what each side of a TLS 1.3 stream does)."""
    import os

    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    record = os.urandom(16384)
    out = {}
    for bits in (256, 128):
        aead = AESGCM(AESGCM.generate_key(bit_length=bits))
        nonce = os.urandom(12)
        n = 2000
        c0 = time.process_time()
        for _ in range(n):
            aead.encrypt(nonce, record, None)
        out[f"AES-{bits}-GCM"] = 1000 * (time.process_time() - c0) / (n * 16384 / 2**20)
    return out


def comm_layer(report: Report, rounds: int, n_big: int, n_small: int) -> dict:
    results: dict[str, list[dict]] = {k: [] for k in KINDS}
    for r in range(rounds):
        order = KINDS if r % 2 == 0 else KINDS[::-1]
        for kind in order:
            res = asyncio.run(_comm_once(kind, n_big, n_small))
            results[kind].append(res)
            log(PART, f"round {r + 1} {kind:<8} {res}")
    tcp_mb = median(x["ms_per_mb"] for x in results["tcp"])
    tcp_msg = median(x["us_per_message"] for x in results["tcp"])
    for kind in KINDS:
        rs = results[kind]
        mb, msg = median(x["ms_per_mb"] for x in rs), median(x["us_per_message"] for x in rs)
        hs = median(x["handshake_ms"] for x in rs)
        per_round = ", ".join(f"{x['ms_per_mb']:.2f}" for x in rs)
        report.add(f"comm {kind}: CPU per MB of 40 MB frames (both ends)", mb, "ms",
                   f"rounds {per_round}; x{fmt(mb / tcp_mb)} TCP; cipher {rs[0]['cipher']}")
        report.add(f"comm {kind}: CPU per small message round trip", msg, "us",
                   f"+{fmt(msg - tcp_msg)} us over TCP; rounds " + ", ".join(f"{x['us_per_message']:.0f}" for x in rs))
        report.add(f"comm {kind}: connection + handshake", hs, "ms", "once per connection (pooled)")
    for name, ms in _cipher_speed().items():
        report.add(f"cipher alone: {name}, 16 KB records", ms, "ms/MB", "one side (seal); the other opens")
    return results


def _moved_mb(client) -> float:
    return sum(client.run(lambda dask_worker: dask_worker.transfer_outgoing_bytes_total).values()) / 1e6


def root_fusion(report: Report, rounds: int, shape: tuple, graph_shape: tuple) -> None:
    """The lab's computation over TCP and TLS, with and without root fusion, alternated."""
    import dask.array as da
    from distributed import Client, LocalCluster

    from naist_dask_tui.core import rootfuse

    chunks = (1000, 1000, 5)

    def lab():
        x = da.random.random(shape, chunks=chunks)
        y = da.random.random(shape, chunks=chunks)
        return (da.arcsin(x) + da.arccos(y)).sum(axis=(1, 2))

    runs: dict[tuple[str, bool], list[tuple[float, float]]] = {}
    for kind in ("tcp", "tls-ec"):
        sec = _security(kind)
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                          protocol="tcp://" if sec is None else "tls://", security=sec) as cluster, \
                Client(cluster, security=sec) as client:
            lab().compute()  # warm: imports, connections between the workers
            for r in range(rounds):
                for fused in ((False, True) if r % 2 == 0 else (True, False)):
                    mb0, t0 = _moved_mb(client), time.perf_counter()
                    with rootfuse.enabled(fused):
                        lab().compute()
                    took, moved = time.perf_counter() - t0, _moved_mb(client) - mb0
                    runs.setdefault((kind, fused), []).append((took, moved))
                    log(PART, f"lab {kind:<6} {'fused' if fused else 'plain':<5} {took:5.2f} s, {moved:6.0f} MB copied")
    med = {k: median(t for t, _ in v) for k, v in runs.items()}
    for (kind, fused), v in runs.items():
        report.add(f"lab {shape}, 2 workers, {kind}, {'root fusion' if fused else 'dask as is'}", med[kind, fused],
                   "s", "runs " + ", ".join(f"{t:.2f}" for t, _ in v) + "; MB copied "
                   + ", ".join(f"{m:.0f}" for _, m in v))
    before = med["tls-ec", False] / med["tcp", False]
    after = med["tls-ec", True] / med["tcp", True]
    report.add("  TLS / TCP, dask as is -> with root fusion", after, "",
               f"before {fmt(before)}; TLS with fusion / TLS as is {fmt(med['tls-ec', True] / med['tls-ec', False])}")
    copied = max(m for _, m in runs["tls-ec", True])
    report.goal("root fusion: the lab's computation copies no chunk between workers", copied < 1,
                f"{fmt(copied)} MB at most per run (as is: "
                + ", ".join(f"{m:.0f}" for _, m in runs["tls-ec", False]) + " MB)")
    report.goal("TLS's price on the lab's computation cut: TLS/TCP with fusion < without", after < before,
                f"{fmt(before)} -> {fmt(after)} (medians of {rounds})")

    x = da.random.random(graph_shape, chunks=(100, 100, 5))
    y = da.random.random(graph_shape, chunks=(100, 100, 5))
    result = (da.arcsin(x) + da.arccos(y)).sum(axis=(1, 2))
    keys = result.__dask_keys__()
    times, fused_times = [], []
    for _ in range(3):
        c0 = time.process_time()
        graph = dict(da.optimization.optimize(result.__dask_graph__(), keys))
        times.append(time.process_time() - c0)
        c0 = time.process_time()
        fused, count = rootfuse.fuse_roots(graph, keys)
        fused_times.append(time.process_time() - c0)
    per_task = 1e6 * median(fused_times) / len(graph)
    report.add(f"root fusion pass, {len(graph):,}-task graph {graph_shape}", per_task, "us/task",
               f"{fmt(median(fused_times))} s, in the scheduler; dask's own optimize {fmt(median(times))} s; "
               f"{count:,} tasks fused, {len(graph) - len(fused):,} fewer tasks")


def on_sge(report: Report, rounds: int) -> None:
    """The lab's computation on 2 one-core SGE jobs: no TLS, RSA (dask-jobqueue), EC + console."""
    import shutil

    if shutil.which("qsub") is None:
        report.note("--sge: no qsub here; skipped")
        return
    import tempfile

    import dask.array as da
    from dask_jobqueue import SGECluster
    from distributed import Client

    from naist_dask_tui.core import rootfuse
    from naist_dask_tui.core.compute import ComputeSession, lab_snippet
    from naist_dask_tui.core.probe import SchedulerProbe

    logs = tempfile.mkdtemp(prefix="bench-tls-sge-")
    shape, chunks = (6000, 6000, 10), (1000, 1000, 5)
    variants = ("tcp", "tcp+fused", "tls-rsa", "tls-ec", "tls-ec+console")
    times: dict[str, list[float]] = {v: [] for v in variants}

    def run_variant(v: str) -> float:
        sec = None if v == "tcp" else _security(v.split("+")[0])
        kwargs = dict(cores=1, processes=1, memory="2GB", queue="grid_short.q", interface="lo",
                      job_extra_directives=["-pe smp 1"], walltime="00:10:00",
                      job_name="ndtui-bench-tls", scheduler_options={"dashboard_address": None},
                      log_directory=logs, shared_temp_directory=logs)  # (not in the checkout)
        if sec is not None:
            kwargs.update(security=sec, protocol="tls://")
        with SGECluster(**kwargs) as cluster, Client(cluster, security=sec) as client:
            cluster.scale(jobs=2)
            client.wait_for_workers(2, timeout=180)
            warm = da.random.random((1000, 1000, 10), chunks=chunks)
            (da.arcsin(warm) + da.arccos(warm)).sum().compute()
            if v.endswith("console"):
                session = ComputeSession(client, cluster)
                probe = SchedulerProbe(client)
                probe.install()
                t0 = time.perf_counter()
                with rootfuse.enabled():  # as the console's runner, by default
                    result = session.run(lab_snippet(True, shape=shape))
                took = time.perf_counter() - t0
                probe.snapshot()
                assert result.ok, result.error
            else:
                x = da.random.random(shape, chunks=chunks)
                y = da.random.random(shape, chunks=chunks)
                t0 = time.perf_counter()
                with rootfuse.enabled(v.endswith("fused")):
                    (da.arcsin(x) + da.arccos(y)).sum(axis=(1, 2)).compute()
                took = time.perf_counter() - t0
            cluster.scale(0)
        return took

    for r in range(rounds):
        order = variants if r % 2 == 0 else variants[::-1]
        for v in order:
            t = run_variant(v)
            times[v].append(t)
            log(PART, f"SGE round {r + 1} {v:<15} {t:6.2f} s")
    base = times["tcp"]
    for v in variants:
        ratios = [a / b for a, b in zip(times[v], base, strict=False)]
        report.add(f"SGE, 2 one-core jobs, {shape} in {chunks}: {v}", median(times[v]), "s",
                   "runs " + ", ".join(f"{t:.2f}" for t in times[v])
                   + ("" if v == "tcp" else "; / no TLS per round " + ", ".join(f"{x:.2f}" for x in ratios)))
    console = [a / b for a, b in zip(times["tls-ec+console"], base, strict=False)]
    before = [a / b for a, b in zip(times["tls-ec"], base, strict=False)]
    after = [a / b for a, b in zip(times["tls-ec+console"], times["tcp+fused"], strict=False)]
    report.add("  TLS / TCP on SGE: dask as is -> the console (plugins + fusion) / TCP fused", median(after), "",
               f"before {fmt(median(before))}; per round "
               + ", ".join(f"{a:.2f}->{b:.2f}" for a, b in zip(before, after, strict=False)))
    report.goal("on SGE the console with its defaults (TLS) is no slower than the lab's plain script (no TLS)",
                median(console) <= 1.0,
                f"{fmt(median(console))} (rounds " + ", ".join(f"{x:.2f}" for x in console) + ")")


def run(args, report: Report) -> None:
    rounds = 1 if args.quick else 3
    n_big = 5 if args.quick else 12
    n_small = 1000 if args.quick else 3000
    results = comm_layer(report, rounds, n_big, n_small)
    tcp = median(x["ms_per_mb"] for x in results["tcp"])
    ec = median(x["ms_per_mb"] for x in results["tls-ec"])
    rsa = median(x["ms_per_mb"] for x in results["tls-rsa"])
    report.goal("the console's EC credentials cost no more per MB than dask-jobqueue's RSA", ec <= rsa * 1.05,
                f"EC {fmt(ec)} vs RSA {fmt(rsa)} ms/MB (TCP {fmt(tcp)}); rounds EC "
                + ", ".join(f"{x['ms_per_mb']:.2f}" for x in results["tls-ec"]) + ", RSA "
                + ", ".join(f"{x['ms_per_mb']:.2f}" for x in results["tls-rsa"]))
    if args.quick:
        root_fusion(report, 2, (3000, 3000, 10), (4000, 4000, 10))
    else:
        root_fusion(report, 3, (6000, 6000, 10), (10000, 10000, 10))
    if args.sge:
        on_sge(report, args.sge_rounds)


def _extra(parser) -> None:
    parser.add_argument("--sge", action="store_true", help="also the lab's computation on 2 one-core SGE jobs")
    parser.add_argument("--sge-rounds", type=int, default=2)


if __name__ == "__main__":
    import sys

    sys.exit(part_main(PART, run, __doc__, _extra))
