"""What one run of the compute pane produced: bounded texts, never data.

Nothing here imports textual.
"""

from __future__ import annotations

import reprlib
from collections import deque
from dataclasses import dataclass
from typing import Any

from naist_dask_tui.core.progress import ProgressSnapshot

DEFAULT_MAX_REPR_CHARS = 20_000


@dataclass(frozen=True, slots=True)
class RunResult:
    """What one run of the console produced. Texts are bounded; nothing here holds data."""

    number: int
    code: str
    ok: bool
    value_repr: str = ""  # repr of the last expression's (computed) value, bounded; "" for None
    error: str = ""  # readable error or traceback (user frames / task frames only)
    stdout: str = ""  # what the code printed to stdout and stderr, bounded
    stdout_cut: int = 0  # characters of output dropped to keep it bounded
    wall_time: float = 0.0
    task_count: int = 0  # tasks of the graphs this run submitted
    cancelled: bool = False
    refused: bool = False  # result refused as too large for the login node
    persisted: bool = False  # the value was persisted on the cluster, not gathered
    started_at: float = 0.0  # epoch seconds
    progress: ProgressSnapshot | None = None  # final counts, when the cluster reported them

    @property
    def status(self) -> str:
        if self.cancelled:
            return "cancelled"
        if self.refused:
            return "refused"
        return "ok" if self.ok else "error"

    def summary(self, width: int = 200) -> str:
        """One line for history lists: the value, or the error's last line."""
        if self.ok:
            text = self.value_repr
        else:
            lines = self.error.strip().splitlines()
            text = lines[-1] if lines else self.status
        line = " ".join(text.split())
        return line if len(line) <= width else line[: width - 1] + "…"

    def to_record(self) -> dict[str, Any]:
        """A JSON-friendly dict for the history file (texts trimmed further)."""
        return {
            "time": self.started_at,
            "number": self.number,
            "code": self.code,
            "status": self.status,
            "ok": self.ok,
            "wall_time": round(self.wall_time, 3),
            "task_count": self.task_count,
            "result": _trim(self.value_repr, 4000),
            "error": _trim(self.error, 4000),
            "stdout": _trim(self.stdout, 4000),
        }


def _trim(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + f"\n[... {len(text) - limit} characters cut]"


def bounded_repr(value: Any, limit: int = DEFAULT_MAX_REPR_CHARS) -> str:
    if value is None:
        return ""
    try:
        import numpy as np

        if isinstance(value, np.generic):
            text = str(value)  # 82.0 rather than np.float64(82.0)
        elif isinstance(value, np.ndarray):
            with np.printoptions(threshold=1000, edgeitems=5, linewidth=100):
                text = repr(value)
        elif isinstance(value, (list, tuple, dict, set, frozenset, deque)) and len(value) > 200:
            r = reprlib.Repr()
            r.maxlist = r.maxtuple = r.maxdict = r.maxset = r.maxfrozenset = r.maxdeque = 100
            r.maxlevel = 4
            r.maxstring = r.maxother = 200
            text = r.repr(value)
        else:
            text = repr(value)
    except Exception as exc:
        text = f"<repr failed: {type(exc).__name__}: {exc}>"
    if len(text) > limit:
        text = text[:limit] + f"... [{len(text) - limit:,} characters cut]"
    return text

