"""One key map for the whole console, and the user's ``[keys]`` table.

Every binding has an id (``main.quit``, ``compute.run``, ``table.sort_next``...). The keys
were chosen so that each works from where it is documented, in tmux and in a plain xterm:

* no ``alt+`` keys (tmux can deliver alt+r as escape, then r: the r lands in the editor),
* in the compute pane's editor, only keys a code editor does not need: ctrl+r/t/o/n/s/l,
  F-keys other than f6/f7 (the editor's select line / select all), ctrl+pageup/pagedown to
  change panels; printable keys (``1``-``6``, ``?``, ``q``) type into the editor, so the
  footer does not offer them there, and ``escape`` leaves the editor, after which they work,
* ``f1`` is help everywhere (``?`` too, outside the editor).

Users rebind keys in the config file (``~/.config/naist-dask-tui/config.toml``)::

    [keys]
    "compute.run" = "ctrl+r,f9"
    "main.scale_to" = "S"

which is Textual's ``App.set_keymap`` (binding id -> comma-separated keys), as posting does.
A wrong id or key is one line naming ``keys.<id>`` and the accepted form.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping
from typing import Any

from textual.binding import Binding

from naist_dask_tui.core.settings import SettingsError
from naist_dask_tui.widgets.keys import is_printable, keymap_of

__all__ = ["apply", "binding_ids", "help_sections", "is_printable", "sections", "validate"]

_KEY = re.compile(r"^(?:(?:ctrl|alt|shift|super|meta|hyper)\+)*(?:[a-z0-9_]+|[A-Z]|[^\s,+])$")


def sections() -> list[tuple[str, list[Binding]]]:
    """Every documented binding, by where it works (for help and for validating [keys])."""
    from naist_dask_tui.app import ConsoleApp
    from naist_dask_tui.screens.confirm import ConfirmScreen
    from naist_dask_tui.screens.failures import FailuresScreen
    from naist_dask_tui.screens.help import HelpScreen
    from naist_dask_tui.screens.job_detail import JobDetailScreen
    from naist_dask_tui.screens.log_tail import LogTailScreen
    from naist_dask_tui.screens.main import MainScreen
    from naist_dask_tui.screens.scale_dialog import AdaptDialog, ScaleDialog
    from naist_dask_tui.screens.slow_tasks import SlowTasksScreen
    from naist_dask_tui.screens.worker_events import WorkerEventsScreen
    from naist_dask_tui.widgets.command_pane import ComputePane
    from naist_dask_tui.widgets.jobs_table import JobsTable
    from naist_dask_tui.widgets.row_table import RowTable

    def only(bindings: Iterable[Any]) -> list[Binding]:
        return [b for b in bindings if isinstance(b, Binding)]

    return [
        ("Cluster (from any panel; outside the editor for printable keys)", only(MainScreen.BINDINGS)),
        ("Tables (workers, spill, jobs)", only(RowTable.BINDINGS)),
        ("Jobs panel (5)", only(JobsTable.BINDINGS)),
        ("Why: failures (f), slow tasks (t), worker events (e), a job's detail (enter)",
         only(FailuresScreen.BINDINGS) + only(SlowTasksScreen.BINDINGS) + only(WorkerEventsScreen.BINDINGS)
         + only(JobDetailScreen.BINDINGS)),
        ("Compute panel (6)", only(ComputePane.BINDINGS)),
        ("Anywhere", only(ConsoleApp.BINDINGS)),
        ("Dialogs", only(ConfirmScreen.BINDINGS) + only(ScaleDialog.BINDINGS)
         + only(AdaptDialog.BINDINGS) + only(HelpScreen.BINDINGS) + only(LogTailScreen.BINDINGS)),
    ]


def binding_ids() -> dict[str, Binding]:
    found: dict[str, Binding] = {}
    for _, bindings in sections():
        for b in bindings:
            if b.id:
                found.setdefault(b.id, b)
    return found


def validate(keys: Mapping[str, Any] | None, source: str | None = None) -> dict[str, str]:
    """The ``[keys]`` table checked: known binding ids, key names Textual understands.
    Raises SettingsError naming ``keys.<id>``."""
    if not keys:
        return {}
    known = binding_ids()
    out: dict[str, str] = {}
    for binding_id, value in keys.items():
        field = f"keys.{binding_id}"
        if binding_id not in known:
            import difflib

            close = difflib.get_close_matches(str(binding_id), list(known), n=1)
            hint = f"; did you mean {close[0]}?" if close else ""
            raise SettingsError(
                field, f"{binding_id!r} is not a binding id{hint} (the ids are listed by ? in "
                "the console, e.g. compute.run, main.quit)", source)
        if not isinstance(value, str) or not value.strip():
            raise SettingsError(field, f"{value!r} is not a key; use e.g. \"ctrl+r\" or \"f9,ctrl+g\"", source)
        parts = [p.strip() for p in value.split(",")]
        bad = [p for p in parts if not _KEY.match(p)]
        if bad:
            raise SettingsError(
                field, f"{bad[0]!r} is not a key name; use names like ctrl+r, f9, plus, "
                "question_mark, separated by commas", source)
        out[binding_id] = ",".join(parts)
    return out


def apply(app: Any, keys: Mapping[str, str] | None) -> None:
    """Install the user's keys on the app, checked here too: every screen is made through this
    (attach NAME, --attach ADDRESS), not only the start that checks them before anything runs."""
    if keys:
        app.set_keymap(validate(keys, "[keys]"))


def help_sections(app: Any) -> list[tuple[str, list[Binding]]]:
    """The help screen's sections, with the user's keys in place of the defaults; the
    section of where the focus is comes first (at 80x24 it is what fits)."""
    keymap = keymap_of(app)
    out = []
    for title, bindings in sections():
        shown = []
        for b in bindings:
            if b.id and b.id in keymap:
                b = dataclasses.replace(b, key=keymap[b.id], key_display=None)
            shown.append(b)
        out.append((title, shown))
    if _in_compute_pane(app):
        out.sort(key=lambda section: not section[0].startswith("Compute"))
    return out


def _in_compute_pane(app: Any) -> bool:
    node = getattr(app, "focused", None)
    while node is not None:
        if type(node).__name__ == "ComputePane":
            return True
        node = node.parent
    return False
