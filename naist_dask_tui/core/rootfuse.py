"""Make each chunk where it is used: fuse a task's root inputs into it (dask.array graphs).

The lab's computation, ``(da.arcsin(x) + da.arccos(y)).sum(...)`` with ``x`` and ``y`` from
``da.random.random``, optimizes to one task per chunk that needs ``x_i`` and ``y_i``, two
root tasks of 40 MB each. The scheduler places root tasks one by one as threads free up, so
``x_i`` and ``y_i`` often land on different workers and one of them is copied: about 1.5 GB
between 2 workers for the ``(6000, 6000, 10)`` run, every byte through TLS's record-by-record
work. dask's own ``fuse_roots`` was written for exactly this (generate ``x_i`` and ``y_i``
inside the task that uses them), but since graphs became task-spec objects its low-level
``fuse`` skips them, so it no longer fuses anything.

This does what it meant, with ``Task.fuse``: a task whose dependencies are all root tasks
(no dependencies of their own), each used by this task alone, one per input collection, and
none of them asked for as an output, becomes one task that computes them inside. Graphs with
layer annotations are left as dask optimizes them (a fused task would carry only one layer's).
The result is the same numbers: the same functions run on the same inputs, in one task.

Used as dask's ``array_optimize`` (see :func:`enabled`); it runs where the graph is
materialized, in the scheduler's process.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any


def _name(key: Any) -> Any:
    return key[0] if isinstance(key, tuple) else key


def fuse_roots(dsk: Mapping, keys: Any) -> tuple[dict, int]:
    """``dsk`` (key -> task-spec node) with qualifying roots fused into their one user; also
    how many tasks were fused. A graph that is not all task-spec nodes comes back unchanged."""
    from dask._task_spec import GraphNode, Task
    from dask.core import flatten

    nodes = dict(dsk)
    if not all(isinstance(v, GraphNode) for v in nodes.values()):
        return nodes, 0
    outputs = set(flatten(keys)) if isinstance(keys, list) else {keys}
    roots = {k for k, v in nodes.items() if not v.dependencies and k not in outputs}
    users: dict[Any, int] = dict.fromkeys(roots, 0)
    for v in nodes.values():
        for d in v.dependencies:
            if d in users:
                users[d] += 1
    out = dict(nodes)
    fused = 0
    for key, node in nodes.items():
        deps = node.dependencies
        if len(deps) < 2 or any(users.get(d) != 1 for d in deps):
            continue
        if len({_name(d) for d in deps}) != len(deps):  # one chunk per input, as blockwise
            continue
        out[key] = Task.fuse(node, *(nodes[d] for d in deps))
        for d in deps:
            del out[d]
        fused += 1
    return out, fused


def optimize(dsk: Any, keys: Any, **kwargs: Any) -> Any:
    """dask.array's own optimization, then :func:`fuse_roots` (picklable: the scheduler runs it)."""
    from dask.array.optimization import optimize as array_optimize

    annotated = any(getattr(layer, "annotations", None) for layer in getattr(dsk, "layers", {}).values())
    graph = array_optimize(dsk, keys, **kwargs)
    if annotated:
        return graph
    keys = keys if isinstance(keys, list) else [keys]
    return fuse_roots(graph, keys)[0]


@contextlib.contextmanager
def enabled(on: bool = True) -> Iterator[None]:
    """Within this block, dask.array computations fuse their roots, or with ``on`` false get
    dask's own optimization only (also inside an enclosing ``enabled()`` or after ``enable()``)."""
    import dask
    from dask.array.optimization import optimize as array_optimize

    with dask.config.set(array_optimize=optimize if on else array_optimize):
        yield


def enable() -> None:
    """From now on in this process, dask.array computations fuse their roots."""
    import dask

    dask.config.set(array_optimize=optimize)
