"""The `?` help screen: every key, from the bindings themselves (so it cannot go stale)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.markup import escape
from textual.screen import ModalScreen
from textual.widgets import Static

INTRO = """\
[b]naist-dask-tui[/b]: your Dask cluster, from this terminal; it lives in a background keeper: \
[b]d[/b] detaches, [b]q[/b] stops it or detaches (more after the keys).
"""
# After the keys: at 80x24 the keys of where you are come first.
OUTRO = """\
[b $accent]Detach, reattach, stop[/]
On SGE a job runs dask workers; on a local cluster a job is one worker process. Scaling down \
retires workers (their data moves) first. The cluster is not this screen: detached, it keeps \
running with its jobs and data. \
[b]naist-dask-tui attach[/b] comes back to it, [b]naist-dask-tui ls[/b] lists your clusters, \
[b]naist-dask-tui stop[/b] stops one (every job deleted). \
With no screen, no computation and no task for its idle timeout (20 min by default), \
it stops by itself and deletes its jobs.

[b $accent]Use it from your own script or notebook[/] (you, on this login node)
  shell:   eval "$(naist-dask-tui env)"   then plain   client = distributed.Client()
  Python:  from naist_dask_tui import connect;   client = connect()
Both use TLS with credentials only you can read; other users cannot connect.
"""

def _key_display(binding: Binding) -> str:
    names = {"plus": "+", "minus": "-", "slash": "/", "question_mark": "?", "escape": "Esc",
             "equals_sign": "=", "ctrl+pagedown": "ctrl+PgDn", "ctrl+pageup": "ctrl+PgUp"}
    keys = binding.key_display or ", ".join(names.get(k, k) for k in binding.key.split(","))
    return keys.replace("^", "ctrl+")


def help_markup(sections: list[tuple[str, list[Binding]]]) -> str:
    lines = [INTRO]
    for title, bindings in sections:
        lines.append(f"[b $accent]{escape(title)}[/]")
        for b in bindings:
            text = b.tooltip or b.description  # the footer's words are short; help says more
            if text:
                lines.append(f"  [b]{escape(_key_display(b)):>12}[/b]  {escape(text)}")
        lines.append("")
    lines.append(OUTRO)
    lines.append("Ctrl+P opens the command palette with the same actions.  Esc or ? closes this.")
    lines.append("Keys can be rebound in the config file: a [keys] table of binding id = \"keys\"")
    lines.append("(the ids: " + ", ".join(sorted({b.id for _, bs in sections for b in bs if b.id})) + ").")
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
