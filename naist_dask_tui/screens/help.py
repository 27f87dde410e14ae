"""The `?` help screen: every key, from the bindings themselves (so it cannot go stale)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.markup import escape
from textual.screen import ModalScreen
from textual.widgets import Static

INTRO = """\
[b]naist-dask-tui[/b]: your Dask cluster on SGE, from this terminal.
Jobs are SGE jobs; each runs dask workers. Scaling down retires workers (their data moves)
before the job is deleted.

The cluster lives in a background [b]keeper[/b], not in this screen: [b]d[/b] (or a dropped SSH
connection) detaches and leaves it running; [b]q[/b] asks whether to stop it (every job deleted)
or detach. [b]naist-dask-tui attach[/b] comes back to it, [b]naist-dask-tui ls[/b] lists your
clusters, [b]naist-dask-tui stop[/b] stops one. Detached and unused (no screen, no computation,
no task) for its idle timeout (20 min by default), it stops by itself and deletes its jobs.

[b $accent]Use it from your own script or notebook[/] (you, on this login node)
  shell:   eval "$(naist-dask-tui env)"   then plain   client = distributed.Client()
  Python:  from naist_dask_tui import connect;   client = connect()
  Both use TLS with credentials only you can read; other users cannot connect.
"""


def _key_display(binding: Binding) -> str:
    names = {"plus": "+", "minus": "-", "slash": "/", "question_mark": "?", "escape": "Esc"}
    keys = binding.key_display or ", ".join(names.get(k, k) for k in binding.key.split(","))
    return keys


def help_markup(sections: list[tuple[str, list[Binding]]]) -> str:
    lines = [INTRO]
    for title, bindings in sections:
        lines.append(f"[b $accent]{escape(title)}[/]")
        for b in bindings:
            if b.description:
                lines.append(f"  [b]{escape(_key_display(b)):>12}[/b]  {escape(b.description)}")
        lines.append("")
    lines.append("Ctrl+P opens the command palette with the same actions.  Esc or ? closes this.")
    return "\n".join(lines)


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,question_mark,q", "close", "Close", id="help.close")]

    def __init__(self, sections: list[tuple[str, list[Binding]]]) -> None:
        super().__init__(classes="dialog-screen")
        self.sections = sections

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog help"):
            yield Static(help_markup(self.sections), id="help-text")

    def action_close(self) -> None:
        self.dismiss(None)
