"""The compute console's history: one JSON line per run in the XDG state directory.

``$XDG_STATE_HOME/naist-dask-tui/history.jsonl`` (``~/.local/state/...`` when unset), bounded to
the last ``max_entries`` runs. Codes feed the editor's up/down history; ``export`` writes a
readable ``.py`` or ``.md`` transcript.

Nothing here imports textual.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol

from naist_dask_tui.core.paths import state_dir

FILE_NAME = "history.jsonl"


class _Recordable(Protocol):
    def to_record(self) -> dict[str, Any]: ...


class HistoryStore:
    """Append-only JSON-lines history, trimmed to the last ``max_entries`` runs."""

    def __init__(self, path: str | os.PathLike[str] | None = None, max_entries: int = 1000) -> None:
        self.path = Path(path) if path is not None else state_dir() / FILE_NAME
        self.max_entries = max_entries
        self._lock = threading.Lock()
        self._lines: int | None = None  # lines in the file, counted lazily

    def append(self, entry: _Recordable | dict[str, Any]) -> None:
        """Append one run; never raises (a history that cannot be written is not fatal)."""
        record = entry if isinstance(entry, dict) else entry.to_record()
        line = json.dumps(record, ensure_ascii=False, default=str)
        with self._lock:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                if self._lines is None:
                    self._lines = len(self._read_lines())
                with self.path.open("a", encoding="utf-8") as fh:
                    fh.write(line + "\n")
                self._lines += 1
                # trim in batches, not on every append
                if self._lines > self.max_entries + max(10, self.max_entries // 10):
                    self._trim()
                elif self._lines > self.max_entries and self.max_entries < 50:
                    self._trim()
            except OSError:
                pass

    def _read_lines(self) -> list[str]:
        try:
            return [ln for ln in self.path.read_text(encoding="utf-8").splitlines() if ln.strip()]
        except (OSError, UnicodeDecodeError):
            return []

    def _trim(self) -> None:
        lines = self._read_lines()[-self.max_entries :]
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text("".join(ln + "\n" for ln in lines), encoding="utf-8")
        os.replace(tmp, self.path)
        self._lines = len(lines)

    def load(self) -> list[dict[str, Any]]:
        """The stored runs, oldest first (unreadable lines are skipped)."""
        with self._lock:
            lines = self._read_lines()
        records = []
        for line in lines[-self.max_entries :]:
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if isinstance(rec, dict) and isinstance(rec.get("code"), str):
                records.append(rec)
        return records

    def codes(self) -> list[str]:
        """Codes of previous runs, oldest first, without consecutive duplicates."""
        out: list[str] = []
        for rec in self.load():
            code = rec["code"].rstrip("\n")
            if code.strip() and (not out or out[-1] != code):
                out.append(code)
        return out

    def export(
        self, path: str | os.PathLike[str], records: Iterable[dict[str, Any]] | None = None
    ) -> Path:
        """Write a transcript: Markdown for ``.md``, otherwise a Python file with results as
        comments. ``records`` defaults to the whole stored history."""
        target = Path(path).expanduser()
        recs = list(self.load() if records is None else records)
        text = _markdown(recs) if target.suffix.lower() in (".md", ".markdown") else _python(recs)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        return target


def _when(rec: dict[str, Any]) -> str:
    t = rec.get("time")
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t)) if isinstance(t, (int, float)) else "?"


def _headline(rec: dict[str, Any]) -> str:
    tasks = rec.get("task_count") or 0
    return (
        f"{_when(rec)} · {rec.get('status', '?')} · {float(rec.get('wall_time') or 0):.2f} s"
        + (f" · {tasks:,} tasks" if tasks else "")
    )


def _markdown(records: list[dict[str, Any]]) -> str:
    parts = ["# naist-dask-tui compute transcript\n"]
    for i, rec in enumerate(records, 1):
        parts.append(f"\n## Run {i} ({_headline(rec)})\n\n```python\n{rec['code'].rstrip()}\n```\n")
        for title, key in (("Output", "stdout"), ("Result", "result"), ("Error", "error")):
            text = (rec.get(key) or "").rstrip()
            if text:
                parts.append(f"\n{title}:\n\n```\n{text}\n```\n")
    return "".join(parts)


def _python(records: list[dict[str, Any]]) -> str:
    parts = ['"""naist-dask-tui compute transcript (results as comments)."""\n']
    for i, rec in enumerate(records, 1):
        parts.append(f"\n# %% Run {i}: {_headline(rec)}\n{rec['code'].rstrip()}\n")
        for title, key in (("output", "stdout"), ("result", "result"), ("error", "error")):
            text = (rec.get(key) or "").rstrip()
            if text:
                parts.append(f"# {title}:\n" + "".join(f"#   {ln}\n" for ln in text.splitlines()))
    return "".join(parts)
