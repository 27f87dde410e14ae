"""How an error of a compute-pane run reads: its traceback cut to the frames the user cares
about, and one plain sentence for the errors of a cluster (a dead worker, a lost connection,
a cancelled computation, a refused result).

Nothing here imports textual.
"""

from __future__ import annotations

import traceback

from naist_dask_tui.core.pane_guard import PaneRefusal
from naist_dask_tui.core.result_guard import ResultTooLarge

# The file name of a run's code in tracebacks: <console-N>.
FILENAME_PREFIX = "<console-"


class RunCancelled(Exception):
    """Raised inside the code's thread once the run has been cancelled."""


_INTERNAL_PATH_PARTS = (
    "/distributed/",
    "/dask/",
    "/tornado/",
    "/asyncio/",
    "/concurrent/",
    "/threading.py",
    "/naist_dask_tui/core/",
    "/toolz/",
    "/tlz/",
)


def _is_internal(filename: str) -> bool:
    return any(part in filename.replace("\\", "/") for part in _INTERNAL_PATH_PARTS)


def _user_traceback(exc: BaseException, remote: bool = False) -> str:
    """Format ``exc`` keeping only the frames a user cares about.

    Local errors: frames from the first ``<console-N>`` frame on. Task errors (remote): frames
    outside dask/distributed, i.e. the user's functions and the library that raised.
    """
    tb = exc.__traceback__
    frames = []
    while tb is not None:
        frames.append(tb)
        tb = tb.tb_next
    if remote:
        keep = [f for f in frames if not _is_internal(f.tb_frame.f_code.co_filename)]
    else:
        start = next(
            (i for i, f in enumerate(frames) if f.tb_frame.f_code.co_filename.startswith(FILENAME_PREFIX)),
            len(frames),
        )
        keep = frames[start:]
    summary = traceback.StackSummary.extract(
        ((f.tb_frame, f.tb_lineno) for f in keep), capture_locals=False
    )
    lines = []
    if summary:
        lines.append("Traceback (most recent call last):\n")
        lines.extend(summary.format())
    lines.extend(traceback.format_exception_only(type(exc), exc))
    return "".join(lines)


def describe_error(exc: BaseException, first_erred: str | None = None) -> str:
    """What the output shows for ``exc``; ``first_erred``: the task group of the run's first
    task that raised (from its progress), named when a task failed."""
    if isinstance(exc, SyntaxError) and (exc.filename or "").startswith(FILENAME_PREFIX):
        return "".join(traceback.format_exception_only(type(exc), exc))
    if isinstance(exc, ResultTooLarge):
        return str(exc)
    if isinstance(exc, PaneRefusal):
        return f"{exc}{_user_line(exc)}"
    try:
        from distributed.scheduler import KilledWorker
    except Exception:  # pragma: no cover
        KilledWorker = ()  # type: ignore[assignment]
    try:
        from distributed.comm.core import CommClosedError
    except Exception:  # pragma: no cover
        CommClosedError = ()  # type: ignore[assignment]

    if isinstance(exc, KilledWorker):
        return (
            f"A worker died while running task {exc.args[0]!r} (KilledWorker): the task was "
            f"tried on {exc.args[2] + 1 if len(exc.args) > 2 else 'several'} workers and each "
            "died. The usual cause is a task using more memory than the worker's limit "
            "(smaller chunks help), or workers killed by SGE (walltime, h_vmem).\n"
            + "".join(traceback.format_exception_only(type(exc), exc))
        )
    if isinstance(exc, CommClosedError) or (
        isinstance(exc, (OSError, TimeoutError)) and _is_internal(_origin(exc))
    ):
        return (
            "Lost contact with the cluster while running (a worker or the scheduler went "
            f"away): {type(exc).__name__}: {exc}\nThe console is fine; check the workers "
            "panel and run again."
        )
    import asyncio
    import concurrent.futures

    if isinstance(exc, (concurrent.futures.CancelledError, asyncio.CancelledError, RunCancelled)):
        return (
            "The computation was cancelled on the cluster (by another client, a restart, or "
            f"lost workers): {type(exc).__name__}: {exc}"
        )
    if isinstance(exc, SystemExit):
        return f"The code called exit({exc.code!r}); the console keeps running."

    remote = _is_task_error(exc)
    text = _user_traceback(exc, remote=remote)
    if remote:
        where = f" in task group {first_erred!r}" if first_erred else ""
        text = f"A task failed{where}; its traceback from the worker:\n{text}"
    return text


def _user_line(exc: BaseException) -> str:
    """" (line N)" of the innermost line of the user's code in ``exc``'s traceback."""
    line = None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename.startswith(FILENAME_PREFIX):
            line = tb.tb_lineno
        tb = tb.tb_next
    return f" (line {line})" if line else ""


def _origin(exc: BaseException) -> str:
    tb = exc.__traceback__
    last = ""
    while tb is not None:
        last = tb.tb_frame.f_code.co_filename
        tb = tb.tb_next
    return last


def _is_task_error(exc: BaseException) -> bool:
    """True when the exception was raised on a worker (its traceback passes through a task)."""
    tb = exc.__traceback__
    seen_console = False
    while tb is not None:
        name = tb.tb_frame.f_code.co_filename.replace("\\", "/")
        if name.startswith(FILENAME_PREFIX):
            seen_console = True
        elif seen_console and (
            "/distributed/worker" in name or "/dask/_task_spec" in name or "/dask/core.py" in name
        ):
            return True
        tb = tb.tb_next
    # distributed re-raises task errors from Future.result: the tail is not from the console
    return any(
        "/distributed/client.py" in f.filename.replace("\\", "/")
        for f in traceback.extract_tb(exc.__traceback__)
    ) and not isinstance(exc, (KeyboardInterrupt, SystemExit))

