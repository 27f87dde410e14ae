"""The snippets one key away in the compute pane, the lab's test computation first.

Nothing here imports textual.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Snippet:
    name: str
    description: str
    code: str


LAB_SHAPE_FULL = (100_000, 100_000, 10)
LAB_SHAPE_LOCAL = (4_000, 4_000, 10)
LAB_CHUNKS = (1000, 1000, 5)


def lab_snippet(full: bool, shape: tuple[int, int, int] | None = None) -> str:
    """The lab note's test computation; ``full`` for a real cluster, reduced for a local one."""
    if shape is None:
        shape = LAB_SHAPE_FULL if full else LAB_SHAPE_LOCAL
    if full:
        header = (
            f"# The lab's test computation at full size {shape}: sized for a real SGE cluster."
        )
    else:
        header = (
            f"# The lab's test computation reduced to {shape} for a local cluster "
            f"(the full size, {LAB_SHAPE_FULL}, is for SGE)."
        )
    return (
        f"{header}\n"
        f"x = da.random.random({shape}, chunks={LAB_CHUNKS})\n"
        f"y = da.random.random({shape}, chunks={LAB_CHUNKS})\n"
        "(da.arcsin(x) + da.arccos(y)).sum(axis=(1, 2))\n"
    )


_CLUSTER_INFO = """\
# Workers, threads and memory limits as the scheduler sees them.
info = client.scheduler_info(n_workers=-1)
workers = info["workers"]
for addr, w in sorted(workers.items()):
    print(f"{str(w.get('name')):>14}  {addr:<30} {w['nthreads']:>3} threads"
          f"  {w['memory_limit'] / 2**30:7.1f} GiB limit")
print(f"{len(workers)} workers, {sum(w['nthreads'] for w in workers.values())} threads")
client.dashboard_link
"""

_MEMORY_PER_WORKER = """\
# Memory per worker from the last heartbeat: process RSS, dask-managed data, spilled to disk.
info = client.scheduler_info(n_workers=-1)
for addr, w in sorted(info["workers"].items()):
    m = w.get("metrics", {})
    disk = m.get("spilled_bytes", {}).get("disk", 0)
    print(f"{str(w.get('name')):>14}  rss {m.get('memory', 0) / 2**20:9.1f} MiB"
          f"  managed {m.get('managed_bytes', 0) / 2**20:9.1f} MiB"
          f"  spilled {disk / 2**20:9.1f} MiB  limit {w['memory_limit'] / 2**30:6.1f} GiB")
"""

_PERSIST_DEMO = """\
# Keep an array on the cluster (persist), wait for it, then reduce it there: only the
# reduction comes back. Bigger than the workers' memory it spills to disk (watch the spill panel).
# Free it afterwards with: del a
from distributed import wait
a = da.random.random({shape}, chunks={chunks}).persist()
wait(a)
print(f"persisted {{a.nbytes / 2**30:.2f}} GiB in {{a.npartitions}} chunks")
a.mean()
"""

_SLOW_DEMO = """\
# A slow computation to try the progress view and cancelling (Esc): 120 tasks that sleep 1 s each.
import time

def slow(block):
    time.sleep(1)
    return block

da.ones((120,), chunks=1).map_blocks(slow).sum()
"""


def snippets(full: bool) -> list[Snippet]:
    """The snippets one key away, the lab's test computation first."""
    persist_shape = (40_000, 40_000, 4) if full else (8_000, 8_000, 4)
    persist_chunks = (2000, 2000, 4)
    return [
        Snippet(
            "Lab test",
            "the lab's test computation" + (" (full size)" if full else " (reduced for a local cluster)"),
            lab_snippet(full),
        ),
        Snippet("Cluster info", "workers, threads and memory limits", _CLUSTER_INFO),
        Snippet("Memory per worker", "RSS, managed and spilled bytes per worker", _MEMORY_PER_WORKER),
        Snippet(
            "Persist and spill",
            "persist an array on the cluster, then reduce it there",
            _PERSIST_DEMO.format(shape=persist_shape, chunks=persist_chunks),
        ),
        Snippet("Slow tasks", "120 one-second tasks, to try progress and cancel", _SLOW_DEMO),
    ]
