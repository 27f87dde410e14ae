"""The compute console pane: a Python editor, a live progress view and an output log.

``ComputePane(session)`` is self-contained: its own bindings (active while focus is inside the
pane), its own messages (``RunStarted``, ``RunFinished`` bubble to the app), no app internals.
Code runs in a thread worker (``ComputeSession.run`` blocks); progress is read from the
session's cached snapshot by a timer that only runs while a computation does.

Keys (chosen to reach the app through tmux and a plain xterm, and to be keys a code editor
does not need: no alt+ keys, which tmux may split into escape + a letter, and not f6/f7, the
editor's select line / select all; naist_dask_tui/keymap.py has the whole map):
  ctrl+r            run (ctrl+enter too, on terminals that report it: kitty, WezTerm, foot...)
  ctrl+t            run and keep (persist) the result on the cluster instead of gathering it
  escape, ctrl+c    cancel the running computation (only while one runs; otherwise escape
                    leaves the editor and ctrl+c is the editor's copy / the app's own)
  ctrl+o            the output log on the whole screen, and back
  ctrl+up / down    previous / next code from the history
  ctrl+n            a new, empty editor (ctrl+z brings the text back)
  f2 f3 f4 f5 f8    snippets (f2: the lab's test computation)
  ctrl+s            export this session's transcript (Markdown) to the state directory
  ctrl+l            clear the output log
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from rich.syntax import Syntax
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.timer import Timer
from textual.widgets import RichLog, Static, TextArea
from textual.worker import Worker, WorkerState

from naist_dask_tui.core.compute import RunResult, Snippet, snippets
from naist_dask_tui.core.history_store import HistoryStore
from naist_dask_tui.core.paths import state_dir
from naist_dask_tui.widgets.progress_view import ProgressView

if TYPE_CHECKING:
    from naist_dask_tui.core.compute import ComputeSession

PROGRESS_INTERVAL = 0.25  # s; the session polls the scheduler at the same rate
WATCH_INTERVAL = 2.0  # s; a pane on a keeper's runner looks for runs it did not start
SHOW_EARLIER = 5  # results of runs that ended before this pane attached, shown at attach
SNIPPET_KEYS = ("f2", "f3", "f4", "f5", "f8")
COMPACT_BELOW = 30  # pane rows under which the progress view keeps to 3 lines


def make_editor(text: str = "") -> TextArea:
    """A Python code editor; plain text when syntax highlighting (tree-sitter) is missing."""
    try:
        from textual._tree_sitter import get_language

        language = "python" if get_language("python") is not None else None
    except Exception:
        language = None
    try:
        editor = TextArea.code_editor(text, language=language, id="compute-editor")
    except Exception:  # a language Textual cannot load: edit without highlighting
        editor = TextArea.code_editor(text, language=None, id="compute-editor")
    return editor


class ComputePane(Vertical):
    """Editor + progress view + output log for one ``ComputeSession``."""

    BINDINGS = [
        Binding("ctrl+r", "run", "Run", id="compute.run"),
        Binding("ctrl+enter", "run", "Run", show=False, id="compute.run_enter"),
        Binding("escape", "cancel", "Cancel", priority=True, id="compute.cancel"),
        Binding("ctrl+c", "cancel", "Cancel", show=False, priority=True, id="compute.cancel_c"),
        Binding("ctrl+o", "toggle_output", "Output", id="compute.output"),
        Binding("f2", "snippet(0)", "Lab test", id="compute.snippet_lab"),
        Binding("ctrl+t", "run(True)", "Run+persist", show=False, id="compute.run_persist"),
        Binding("ctrl+up", "history(-1)", "Previous code", show=False, id="compute.history_prev"),
        Binding("ctrl+down", "history(1)", "Next code", show=False, id="compute.history_next"),
        Binding("ctrl+n", "clear_editor", "New (empty editor)", show=False, id="compute.clear_editor"),
        Binding("f3", "snippet(1)", "Snippet: cluster info", show=False, id="compute.snippet_1"),
        Binding("f4", "snippet(2)", "Snippet: memory per worker", show=False, id="compute.snippet_2"),
        Binding("f5", "snippet(3)", "Snippet: persist and spill", show=False, id="compute.snippet_3"),
        Binding("f8", "snippet(4)", "Snippet: slow tasks", show=False, id="compute.snippet_4"),
        Binding("ctrl+s", "export", "Export session", show=False, id="compute.export"),
        Binding("ctrl+l", "clear_log", "Clear output", show=False, id="compute.clear"),
    ]

    class RunStarted(Message):
        """A run began (posted by the pane; bubbles to the app)."""

        def __init__(self, number: int, code: str, persist: bool) -> None:
            super().__init__()
            self.number = number
            self.code = code
            self.persist = persist

    class RunFinished(Message):
        """A run ended: ok, error, refused or cancelled; bubbles to the app."""

        def __init__(self, result: RunResult) -> None:
            super().__init__()
            self.result = result

    class RunsSeen(Message):
        """What the keeper's runner said: the run going (maybe not this pane's) and results."""

        def __init__(self, status: dict) -> None:
            super().__init__()
            self.status = status

    def __init__(
        self,
        session: ComputeSession | None = None,
        *,
        history: HistoryStore | None = None,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.session = session
        self.history = history if history is not None else HistoryStore()
        self.running = False
        self._codes: list[str] = []
        self._history_pos: int | None = None  # index into _codes while browsing
        self._draft = ""
        self._records: list[dict] = []  # this pane's runs, for export
        self._progress_timer: Timer | None = None
        self._run_started = 0.0
        # Runs on a keeper's runner outlive the screen: the pane shows runs that others (or
        # this screen before a detach) started, and results it has not shown yet.
        self._shared = hasattr(session, "status")
        self._seen_number = 0  # the last run whose result this pane showed
        self._first_watch = True

    # -- layout ------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield make_editor()
        yield Static(self._hint(), id="compute-hint")
        yield ProgressView(id="compute-progress")
        yield RichLog(id="compute-log", wrap=True, markup=False, highlight=False, max_lines=5000)

    def on_mount(self) -> None:
        try:
            self._codes = self.history.codes()
        except Exception:
            self._codes = []
        editor = self.editor
        if editor.language is None:
            self.log_widget.write(
                Text("Syntax highlighting is off (install textual[syntax]).", style="dim")
            )
        if self._shared:
            self.set_interval(WATCH_INTERVAL, self._watch_runs)
            self.call_after_refresh(self._watch_runs)

    def on_resize(self) -> None:
        self.progress_view.compact = self.size.height < COMPACT_BELOW

    def on_unmount(self) -> None:
        self._stop_progress_timer()
        if self.session is None:
            return
        if self._shared:
            # a keeper's run goes on without this screen: stop following it, nothing more
            self.session.detach()
        elif self.running:
            # leave no computation running on the cluster behind a pane that is gone
            self.session.cancel()

    @property
    def editor(self) -> TextArea:
        return self.query_one("#compute-editor", TextArea)

    @property
    def log_widget(self) -> RichLog:
        return self.query_one("#compute-log", RichLog)

    @property
    def progress_view(self) -> ProgressView:
        return self.query_one("#compute-progress", ProgressView)

    def _hint(self) -> str:
        keys = lambda binding_id: self._keys(binding_id).replace("ctrl+", "^")  # noqa: E731
        if self.running:
            return f"running…  [b]{keys('compute.cancel')}[/b] cancel  [b]{keys('compute.output')}[/b] output"
        return (
            f"[b]{keys('compute.run')}[/b] run  [b]{keys('compute.run_persist')}[/b] persist  "
            f"[b]{keys('compute.output')}[/b] output  [b]{keys('compute.snippet_lab')}[/b] lab  "
            f"[b]{keys('compute.clear_editor')}[/b] new  [b]esc[/b] leave editor  [b]f1[/b] keys"
        )

    def _keys(self, binding_id: str) -> str:
        """The keys of a binding as the user has them (the [keys] table may rebind them)."""
        from naist_dask_tui.widgets.keys import keys_for

        try:
            return keys_for(self.app, binding_id, self.BINDINGS)
        except Exception:
            return binding_id

    def _set_running(self, running: bool) -> None:
        self.running = running
        self.set_class(running, "-running")
        self.query_one("#compute-hint", Static).update(self._hint())
        self.refresh_bindings()

    # -- actions -----------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "cancel":
            return self.running  # otherwise escape / ctrl+c keep their usual meaning
        if action == "run":
            return True if not self.running else None
        return True

    def action_run(self, persist: bool = False) -> None:
        if self.running:
            return
        code = self.editor.text
        if not code.strip():
            self.notify("Nothing to run: type Python in the editor.", severity="warning")
            return
        if self.session is None:
            self.log_widget.write(Text("No cluster connected yet: start or attach one first.", style="bold red"))
            return
        number = self.session.run_count + 1
        self._history_pos = None
        if not self._codes or self._codes[-1] != code.rstrip("\n"):
            self._codes.append(code.rstrip("\n"))
        self._echo(number, code, persist)
        self._set_running(True)
        self.progress_view.status = "submitting…"
        self.progress_view.outcome = ""
        self.progress_view.snapshot = None
        self._run_started = time.monotonic()
        self._progress_timer = self.set_interval(PROGRESS_INTERVAL, self._poll_progress)
        self.post_message(self.RunStarted(number, code, persist))
        self._run_worker(code, persist)

    @work(thread=True, exclusive=True, group="compute", exit_on_error=False)
    def _run_worker(self, code: str, persist: bool) -> None:
        session = self.session
        assert session is not None
        result = session.run(code, persist=persist)
        if getattr(session, "records_history", True):  # (a keeper's runner writes its own)
            try:
                self.history.append(result)
            except Exception:
                pass
        self.post_message(self.RunFinished(result))

    @work(thread=True, exclusive=True, group="compute", exit_on_error=False)
    def _follow_worker(self, number: int) -> None:
        self.post_message(self.RunFinished(self.session.follow(number)))

    # -- runs this pane did not start (a keeper's runner) -------------------------------------
    def _watch_runs(self) -> None:
        if not self.running and self.is_attached:
            self._watch_worker()

    @work(thread=True, exclusive=True, group="compute-watch", exit_on_error=False)
    def _watch_worker(self) -> None:
        try:
            status = self.session.status(since=self._seen_number)
        except Exception:
            return  # not connected yet, or the keeper is busy: the next tick asks again
        self.post_message(self.RunsSeen(status))

    def on_compute_pane_runs_seen(self, message: RunsSeen) -> None:
        status = message.status
        results = [r for r in status["results"] if r.number > self._seen_number]
        if self._first_watch:
            self._first_watch = False
            earlier = len(results) - SHOW_EARLIER
            if earlier > 0:
                self.log_widget.write(Text(f"({earlier} earlier run(s) of this cluster: ctrl+↑ "
                                           "brings their code back)", style="dim"))
                results = results[-SHOW_EARLIER:]
        for r in results:
            self._echo(r.number, r.code, r.persisted, note="ended while this screen was away")
            self._write_result(r)
            self._seen_number = r.number
        running = status.get("running")
        if running and not self.running and running["number"] > self._seen_number:
            self._adopt(running)

    def _adopt(self, run: dict) -> None:
        """Follow a run this pane did not start: from another screen, or from before a detach."""
        number = int(run["number"])
        note = "running; started before you attached, or from another screen"
        self._echo(number, run.get("code", ""), bool(run.get("persist")), note=note)
        self._set_running(True)
        self.progress_view.status = "running…"
        self.progress_view.outcome = ""
        self.progress_view.snapshot = run.get("progress")
        self._run_started = time.monotonic() - max(0.0, time.time() - float(run.get("started_at") or time.time()))
        self._progress_timer = self.set_interval(PROGRESS_INTERVAL, self._poll_progress)
        self._follow_worker(number)

    def _poll_progress(self) -> None:
        if self.session is None:
            return
        snap = self.session.progress()
        if snap is not None:
            self.progress_view.snapshot = snap
        else:
            self.progress_view.status = f"running… {time.monotonic() - self._run_started:.1f} s"

    def _stop_progress_timer(self) -> None:
        if self._progress_timer is not None:
            self._progress_timer.stop()
            self._progress_timer = None

    def action_cancel(self) -> None:
        if self.running and self.session is not None:
            self._cancel()

    @work(thread=True, exclusive=True, group="compute-cancel", exit_on_error=False)
    def _cancel(self) -> None:
        # off the UI thread: through a keeper this is a control call to its runner
        if self.session is not None and self.session.cancel():
            self.app.call_from_thread(self._cancelling)

    def _cancelling(self) -> None:
        if self.running:  # (the run may have ended meanwhile)
            self.query_one("#compute-hint", Static).update("cancelling…")

    def action_history(self, step: int) -> None:
        if not self._codes:
            return
        if self._history_pos is None:
            if step > 0:
                return
            self._draft = self.editor.text
            pos = len(self._codes) - 1
        else:
            pos = self._history_pos + step
        if pos >= len(self._codes):
            self._history_pos = None
            self._set_editor(self._draft)
            return
        pos = max(pos, 0)
        self._history_pos = pos
        self._set_editor(self._codes[pos])

    def _snippets(self) -> list[Snippet]:
        return self.session.snippets() if self.session is not None else snippets(full=False)

    def action_snippet(self, index: int) -> None:
        items = self._snippets()
        if 0 <= index < len(items):
            self._history_pos = None
            self._set_editor(items[index].code)
            self.editor.focus()
            self.notify(f"{items[index].name}: {items[index].description}. ctrl+r runs it.", timeout=3)

    def action_export(self) -> None:
        if not self._records:
            self.notify("Nothing to export yet: no run in this session.", severity="warning")
            return
        path = state_dir() / "exports" / time.strftime("session-%Y%m%d-%H%M%S.md")
        try:
            written = self.history.export(path, self._records)
        except OSError as exc:
            self.notify(f"Export failed: {exc}", severity="error")
            return
        self.log_widget.write(Text(f"Transcript exported to {written}", style="bold"))
        self.notify(f"Exported to {written}")

    def action_clear_log(self) -> None:
        self.log_widget.clear()

    def action_clear_editor(self) -> None:
        self._history_pos = None
        self._set_editor("")
        self.editor.focus()

    @property
    def output_maximized(self) -> bool:
        return self.screen.maximized is self.log_widget

    def action_toggle_output(self) -> None:
        """The output log on the whole screen, and back (the same key)."""
        screen = self.screen
        if screen.maximized is self.log_widget:
            screen.minimize()
            self.editor.focus()
        else:
            screen.maximized = self.log_widget
            self.log_widget.focus()

    def _set_editor(self, text: str) -> None:
        # replace (not load_text) keeps ctrl+z able to bring the previous text back
        editor = self.editor
        editor.replace(text, (0, 0), editor.document.end)
        editor.move_cursor(editor.document.end)

    # -- results -----------------------------------------------------------------------------
    def _echo(self, number: int, code: str, persist: bool, note: str = "") -> None:
        log = self.log_widget
        extra = (" (persist)" if persist else "") + (f" ({note})" if note else "")
        log.write(Text(f"In [{number}]{extra}:", style="bold cyan"))
        log.write(Syntax(code.rstrip("\n"), "python", theme="ansi_dark", background_color="default"))

    def on_compute_pane_run_finished(self, message: RunFinished) -> None:
        result = message.result
        self._stop_progress_timer()
        self.progress_view.outcome = {"ok": "done", "error": "failed", "refused": "refused"}.get(
            result.status, result.status
        )
        if result.progress is not None:
            self.progress_view.snapshot = result.progress
        elif self.session is not None:
            self.progress_view.snapshot = self.session.progress()
        snap = self.progress_view.snapshot
        if snap is None or snap.total == 0:
            self.progress_view.snapshot = None
            self.progress_view.status = "no tasks ran on the cluster"
        self._records.append(result.to_record())
        if result.number > self._seen_number or not self._shared:
            self._write_result(result)
        self._seen_number = max(self._seen_number, result.number)
        self._set_running(False)

    def _write_result(self, r: RunResult) -> None:
        log = self.log_widget
        if r.stdout:
            log.write(Text(r.stdout.rstrip("\n")))
        if r.ok and r.value_repr:
            log.write(Text(r.value_repr))
        if r.error:
            style = "yellow" if r.cancelled else "red"
            log.write(Text(r.error.rstrip("\n"), style=style))
        tasks = f" · {r.task_count:,} tasks" if r.task_count else ""
        mark, style = {
            "ok": ("✓ ok", "green"),
            "error": ("✗ error", "bold red"),
            "refused": ("✗ refused", "bold red"),
            "cancelled": ("■ cancelled", "bold yellow"),
        }[r.status]
        extra = " · persisted on the cluster" if r.persisted else ""
        log.write(Text(f"Out [{r.number}]: {mark} · {r.wall_time:.2f} s{tasks}{extra}", style=style))

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        # session.run never raises; this is the safety net that keeps the pane usable
        if event.worker.group == "compute" and event.state is WorkerState.ERROR:
            self._stop_progress_timer()
            err = event.worker.error
            self.log_widget.write(Text(f"Internal error while running: {type(err).__name__}: {err}", style="bold red"))
            self._set_running(False)
