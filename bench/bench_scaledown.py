"""Scale-down in the middle of a computation on the real SGE: the console's graceful path
versus plain dask-jobqueue ``cluster.scale(jobs=1)``, side by side.

Both start 2 single-core jobs, persist 256 chunks spread over both, start a slow computation
over them, and scale to 1 job while it runs. Printed per run: chunks recomputed (task
transitions to memory beyond one per chunk), whether the result was right, and the seconds
the scale-down plus the rest of the computation took.

    python -m bench.bench_scaledown [--runs N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def _settings(tmp: str):
    from naist_dask_tui.core.settings import load_settings

    return load_settings(
        dict(
            backend="sge", jobs=2, cores=1, processes=1, memory="1GB",
            interface="lo", scheduler_interface="lo", job_extra_directives=["-pe smp 1"],
            local_directory=tmp, log_directory=os.path.join(tmp, "logs"), tls=False,
        ),
        env={},
    )  # fmt: skip


def run_console(tmp: str) -> dict:
    from naist_dask_tui.core.cluster import ClusterController
    from tests.sge.scenarios import scale_down_mid_computation

    with ClusterController(_settings(tmp)) as c:
        c.client.wait_for_workers(2, timeout=120)

        def down():
            c.scale(1)
            c.wait_idle(timeout=120)

        return scale_down_mid_computation(c.client, down)


def run_plain(tmp: str) -> dict:
    from dask_jobqueue import SGECluster
    from distributed import Client

    from tests.sge.scenarios import scale_down_mid_computation

    kwargs = _settings(tmp).sge_cluster_kwargs()
    kwargs.pop("job_name", None)
    with SGECluster(**kwargs) as cluster, Client(cluster) as client:
        cluster.scale(jobs=2)
        client.wait_for_workers(2, timeout=120)
        return scale_down_mid_computation(client, lambda: cluster.scale(jobs=1))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=3)
    args = p.parse_args(argv)
    from naist_dask_tui.core import sge

    if not sge.available():
        print("scale-down (SGE): not available: qsub/qstat not found")
        return 0
    rows = {"console": [], "dask-jobqueue": []}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.runs):  # alternate, so both see the same machine
            for name, fn in (("console", run_console), ("dask-jobqueue", run_plain)):
                out = fn(tmp)
                rows[name].append(out)
                print(f"run {i + 1} {name:14s} recomputed {out['recomputed']:3d} of {out['chunks']} "
                      f"chunks, result {'right' if out['correct'] else 'WRONG'}, {out['seconds']:.1f} s",
                      flush=True)  # fmt: skip
    print()
    print(f"{'scale-down mid-computation (SGE)':34s} {'recomputed (median)':>20s} {'right':>6s} "
          f"{'seconds (median)':>17s}")
    for name, outs in rows.items():
        print(
            f"{name:34s} {statistics.median(o['recomputed'] for o in outs):>20.0f} "
            f"{sum(o['correct'] for o in outs):>3d}/{len(outs):<2d} "
            f"{statistics.median(o['seconds'] for o in outs):>17.1f}"
        )
    ok = all(o["recomputed"] == 0 and o["correct"] for o in rows["console"])
    print(f"goal: console recomputes nothing: {'met' if ok else 'NOT met'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
