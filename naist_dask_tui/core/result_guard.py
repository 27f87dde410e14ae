"""What keeps a run from bringing too much data to the login node.

Every gather of the console's client (``.compute()``, ``client.gather``, ``future.result()``,
``np.asarray(x)``...) checks the size of what it would bring first (:func:`install_result_guard`),
and a result whose size is known before computing (an array's shape and dtype) is refused
before it is computed (:func:`known_nbytes`).

Nothing here imports textual.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any


class ResultTooLarge(Exception):
    """The result would be too large to bring to the login node."""


def too_large_message(nbytes: int, limit: int, measured: bool) -> str:
    from dask.utils import format_bytes

    how = "is" if measured else "would be"
    return (
        f"Result refused: it {how} {format_bytes(nbytes)}, over the console's limit of "
        f"{format_bytes(limit)} for bringing data to the login node.\n"
        "Keep it on the cluster with `.persist()` (or run with persist), or reduce it first "
        "(e.g. `.sum()`, `.mean(axis=0)`, a slice `[:10]`) so that only a small result comes back."
    )


def install_result_guard(client: Any, limit: Callable[[], int | None]) -> None:
    """Make every gather of ``client`` (``.compute()``, ``client.gather``, ``future.result()``,
    ``np.asarray(x)``...) check the size of what it would bring here first: above
    ``limit()`` bytes (None: no limit now) it raises :class:`ResultTooLarge` and nothing is
    transferred. The sizes are the scheduler's (what the workers measured), read once the
    futures are finished. Several sessions may share a client: the smallest limit in force
    counts."""
    limits = getattr(client, "_ndtui_result_limits", None)
    if limits is not None:
        limits.append(limit)
        return
    limits = client._ndtui_result_limits = [limit]
    original = client._gather

    def in_force() -> int | None:
        found = [b for b in (f() for f in list(limits)) if b is not None]
        return min(found) if found else None

    async def guarded_gather(futures: Any, *args: Any, **kwargs: Any) -> Any:
        bound = in_force()
        if bound is not None:
            from distributed.client import _wait, futures_of

            flat = [f for f in futures_of(futures) if getattr(f, "client", client) is client]
            if flat:
                await _wait(flat)
                keys = [f.key for f in flat if f.status == "finished"]
                if keys:
                    sizes = await client.scheduler.nbytes(keys=keys, summary=False)
                    total = sum(int(v) for v in sizes.values() if v and v > 0)
                    if total > bound:
                        raise ResultTooLarge(too_large_message(total, bound, measured=True))
        return await original(futures, *args, **kwargs)

    client._gather = guarded_gather


def run_guard_limit(session: Any) -> Callable[[], int | None]:
    """The guard's limit: the session's while one of its runs is going, else none."""
    import weakref

    ref = weakref.ref(session)

    def limit() -> int | None:
        s = ref()
        return s.max_result_bytes if s is not None and s.running else None

    return limit


def known_nbytes(value: Any) -> int | None:
    """Bytes of a dask collection's result when knowable without computing (arrays)."""
    shape = getattr(value, "shape", None)
    dtype = getattr(value, "dtype", None)
    if isinstance(shape, tuple) and dtype is not None and hasattr(dtype, "itemsize"):
        try:
            if all(isinstance(d, (int,)) or (hasattr(d, "__index__") and not isinstance(d, float)) for d in shape):
                return int(math.prod(int(d) for d in shape)) * int(dtype.itemsize)
        except Exception:
            return None
        return None  # unknown chunk sizes (nan)
    nbytes = getattr(value, "nbytes", None)
    if isinstance(nbytes, (int, float)) and not isinstance(nbytes, bool):
        return None if math.isnan(nbytes) else int(nbytes)
    return None

