"""The main screen: status bar, panel tabs (all panels at once on a large terminal), footer.

The app hands it each refresh as reactives (``snapshot``, and ``requested`` for a job count
just asked for); the screen renders them and turns keys into intents (dialogs here, then an
intent message the app carries out). It offers only what the cluster's controller can do
(``capabilities``): attached to a scheduler started elsewhere, it only watches.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Container, Vertical
from textual.reactive import reactive
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Input, Static, Tab, Tabs

from naist_dask_tui.core.control import Capabilities
from naist_dask_tui.core.snapshot import ConsoleSnapshot, JobState
from naist_dask_tui.history import MemoryHistory
from naist_dask_tui.messages import LeaveRequested
from naist_dask_tui.screens.scaling import ScalingActions
from naist_dask_tui.screens.selection import SelectionActions
from naist_dask_tui.widgets.footer import ConsoleFooter
from naist_dask_tui.widgets.jobs_table import JobsTable
from naist_dask_tui.widgets.memory_panel import MemoryPanel
from naist_dask_tui.widgets.overview_panel import OverviewPanel
from naist_dask_tui.widgets.spill_panel import SpillPanel
from naist_dask_tui.widgets.status_bar import StatusBar
from naist_dask_tui.widgets.worker_groups import GroupsTable, WorkersView
from naist_dask_tui.widgets.workers_table import WorkersTable
from naist_dask_tui.words import jobs_panel_title

PANELS = ("overview", "workers", "memory", "spill", "jobs", "compute")
# The panels shown side by side on a large terminal (when one of them is active).
SIDE_BY_SIDE = ("workers", "memory", "spill", "jobs")
WIDE_MIN = (160, 40)  # columns, rows from which those panels are shown side by side
ALIVE_STATES = frozenset(
    {
        JobState.SUBMITTING,
        JobState.PENDING,
        JobState.HELD,
        JobState.RUNNING,
        JobState.SUSPENDED,
        JobState.ERROR,
        JobState.RETIRING,
        JobState.NO_WORKER,
    }
)
# Which capability each action needs; without it the key is hidden and does nothing.
NEEDS = {
    "scale_up": "scale",
    "scale_down": "scale",
    "scale_to": "scale",
    "toggle_adaptive": "adapt",
    "retire": "retire",
    "job_log": "logs",
    "detach": "detach",
}
# Keys offered only where they mean something (MainScreen.check_action).
WORKERS_VIEW_MIN = 100  # workers from which the aggregated workers view is offered


class MainScreen(ScalingActions, SelectionActions, Screen[None]):
    # The whole key map (and why these keys) is in naist_dask_tui/keymap.py; descriptions are
    # short: the footer shows them at 80 columns.
    BINDINGS = [
        Binding("q", "request_quit", "Quit", tooltip="Quit: stop the cluster (every job deleted) or detach",
                id="main.quit"),
        Binding("d", "detach", "Detach", tooltip="Detach: the screen closes, the cluster keeps running",
                id="main.detach"),
        Binding("plus,equals_sign", "scale_up", "Job+", key_display="+", tooltip="Job +1: one job more",
                id="main.scale_up"),
        Binding("minus", "scale_down", "Job-", key_display="-", tooltip="Job -1: one job less (graceful)",
                id="main.scale_down"),
        Binding("s", "scale_to", "Scale", tooltip="Scale to an exact number of jobs", id="main.scale_to"),
        Binding("a", "toggle_adaptive", "Adapt", tooltip="Adaptive scaling on/off", id="main.adaptive"),
        Binding("slash", "filter", "Filter", key_display="/", tooltip="Filter the workers (name and job first)",
                id="main.filter"),
        Binding("l", "job_log", "Log", tooltip="Job log: follow the selected job's output", id="main.job_log"),
        Binding("L", "console_log", "Keeper log", show=False, tooltip="Follow the cluster keeper's log",
                id="main.console_log"),
        Binding("question_mark", "help", "Help", key_display="?", tooltip="Help: every key", id="main.help"),
        Binding("f1", "help", "Help", tooltip="Help (also from the editor)", id="main.help_f1"),
        # priority: scroll views (the editor, the tables) would page sideways on these keys
        Binding("ctrl+pagedown", "cycle_panel(1)", "Panel", key_display="^PgDn", priority=True,
                tooltip="Next panel (also from the editor)", id="main.next_panel"),
        Binding("ctrl+pageup", "cycle_panel(-1)", "Previous panel", show=False, priority=True,
                id="main.previous_panel"),
        Binding("r", "retire", "Retire job", show=False, tooltip="Retire job: the selected worker's job, gracefully",
                id="main.retire"),
        Binding("1", "show_panel('overview')", "Overview panel", show=False, id="main.panel_overview"),
        Binding("2", "show_panel('workers')", "Workers panel", show=False, id="main.panel_workers"),
        Binding("3", "show_panel('memory')", "Memory panel", show=False, id="main.panel_memory"),
        Binding("4", "show_panel('spill')", "Spill panel", show=False, id="main.panel_spill"),
        Binding("5", "show_panel('jobs')", "Jobs panel", show=False, id="main.panel_jobs"),
        Binding("6", "show_panel('compute')", "Compute panel", show=False, id="main.panel_compute"),
        Binding("w", "overview_window", "Graph window", show=False,
                tooltip="Overview: the graphs' window (5 min, 1 h, since start)", id="main.overview_window"),
        # (not in the footer, which is full at 80 columns: the Workers panel's subtitle offers it)
        Binding("g", "workers_view", "Group", show=False,
                tooltip="Workers: grouped by job, by host, or one row each", id="main.workers_view"),
        Binding("escape", "clear_filter", "Clear filter", show=False, id="main.clear_filter"),
        # Why did it fail (issue 10): views of their own, opened from any panel
        Binding("f", "inquire('failures')", "Failures", show=False,
                tooltip="Failed tasks, grouped by exception, with tracebacks", id="main.failures"),
        Binding("t", "inquire('slow_tasks')", "Slow tasks", show=False,
                tooltip="Slow and stuck tasks, and their call stacks", id="main.slow_tasks"),
        Binding("e", "inquire('worker_events')", "Worker events", show=False,
                tooltip="Workers joining, leaving, restarting, and why", id="main.worker_events"),
    ]

    snapshot: reactive[ConsoleSnapshot | None] = reactive(None, always_update=True)
    # A job count just asked for, shown until a refresh reflects it (None: none pending).
    requested: reactive[int | None] = reactive(None)

    def __init__(
        self,
        *,
        user: str,
        login_host: str,
        compute: Widget | None = None,
        history: MemoryHistory | None = None,
        capabilities: Capabilities | None = None,
        retry_in: float | None = None,
        log_files: list[tuple[str, str]] | None = None,
        name: str | None = None,
        backend: str | None = None,
    ) -> None:
        super().__init__(id="main")
        self.log_files = list(log_files or [])
        self.cluster_name = name
        self.backend = backend  # until a snapshot says
        self._user = user
        self._login_host = login_host
        self._compute = compute
        self.history = history if history is not None else MemoryHistory()
        self.capabilities = capabilities if capabilities is not None else Capabilities.all()
        self.retry_in = retry_in
        self.active_panel = "overview"
        self.wide = False
        self._job_views: dict = {}
        self.ready = False  # set once mounted: snapshots that arrive earlier are shown then
        self.run_started_at: float | None = None  # the compute pane's current (or last) run
        self._groups_offered = False

    def compose(self) -> ComposeResult:
        yield StatusBar(user=self._user, login_host=self._login_host, name=self.cluster_name, id="status")
        yield Tabs(
            Tab("1 Overview", id="overview"),
            Tab("2 Workers", id="workers"),
            Tab("3 Memory", id="memory"),
            Tab("4 Spill", id="spill"),
            Tab("5 Jobs", id="jobs"),
            Tab("6 Compute", id="compute"),
            id="tabs",
        )
        with Container(id="panels"):
            yield OverviewPanel(id="overview-panel", classes="panel")
            with Vertical(id="workers-panel", classes="panel"):
                yield Static(id="workers-outliers")
                yield WorkersTable(id="workers-table")
                yield GroupsTable(id="groups-table")
                yield Input(placeholder="filter workers: name, host, job id… (enter keeps, esc clears)", id="filter")
            yield MemoryPanel(id="memory-panel", classes="panel")
            yield SpillPanel(id="spill-panel", classes="panel")
            with Vertical(id="jobs-panel", classes="panel"):
                yield JobsTable(id="jobs-table")
            with Vertical(id="compute-panel", classes="panel"):
                yield self._compute or Static(
                    "The compute pane is not available in this build.", id="compute-placeholder"
                )
        yield ConsoleFooter(compact=True)

    def on_mount(self) -> None:
        titles = {
            "overview-panel": "Overview",
            "workers-panel": "Workers",
            "memory-panel": "Memory",
            "spill-panel": "Spill to disk",
            "jobs-panel": jobs_panel_title(self.backend),
            "compute-panel": "Compute",
        }
        for panel_id, title in titles.items():
            self.query_one(f"#{panel_id}").border_title = title
        self.query_one("#filter", Input).display = False
        self.status = self.query_one(StatusBar)
        self.workers_table = self.query_one(WorkersTable)
        self.jobs_table = self.query_one(JobsTable)
        self.memory_panel = self.query_one(MemoryPanel)
        self.spill_panel = self.query_one(SpillPanel)
        self.workers_panel = self.query_one("#workers-panel")
        self.overview = self.query_one(OverviewPanel)
        self.workers_view = WorkersView(self.workers_panel, self.workers_table, self.query_one(GroupsTable),
                                        self.query_one("#workers-outliers", Static))
        self.status.retry_in = self.retry_in
        if not self.capabilities.scale:
            self.jobs_table.empty_text = "a scheduler started elsewhere: its jobs are not managed here"
        self._apply_layout()
        self.ready = True
        if self.snapshot is not None:
            self.watch_snapshot(self.snapshot)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        need = NEEDS.get(action)
        if need is not None and not getattr(self.capabilities, need):
            return None  # hidden from the footer, and the key does nothing
        if action == "workers_view":  # offered at scale (and to come back from a grouped view)
            return self._offer_groups()
        return True

    def _offer_groups(self) -> bool:
        snap = self.snapshot
        n = snap.cluster.n_workers if snap is not None and snap.cluster is not None else 0
        view = getattr(self, "workers_view", None)
        return n >= WORKERS_VIEW_MIN or (view is not None and view.grouped)

    # ---- layout ---------------------------------------------------------------------------

    def on_resize(self) -> None:
        self._apply_layout()

    def _apply_layout(self) -> None:
        width, height = self.size
        self.wide = width >= WIDE_MIN[0] and height >= WIDE_MIN[1]
        panels = self.query_one("#panels")
        overview = self.wide and self.active_panel in SIDE_BY_SIDE
        panels.set_class(overview, "-overview")
        for name in PANELS:
            widget = self.query_one(f"#{name}-panel")
            widget.display = name == self.active_panel or (overview and name in SIDE_BY_SIDE)
            widget.set_class(name == self.active_panel, "-active")

    def action_show_panel(self, name: str) -> None:
        self.query_one(Tabs).active = name

    def action_cycle_panel(self, step: int) -> None:
        i = PANELS.index(self.active_panel) if self.active_panel in PANELS else 0
        self.action_show_panel(PANELS[(i + step) % len(PANELS)])

    def action_overview_window(self) -> None:
        name = self.overview.cycle_window()
        self.overview.show(self.history)
        if self.active_panel != "overview":
            self.action_show_panel("overview")
        self.notify(f"Overview: {name}", timeout=2)

    def action_workers_view(self) -> None:
        if self.active_panel != "workers" and not self.wide:
            self.action_show_panel("workers")
        self.notify(f"Workers: {self.workers_view.cycle()}", timeout=2)
        self._update_subtitle()
        self.refresh_bindings()

    def on_tabs_tab_activated(self, event: Tabs.TabActivated) -> None:
        if event.tab is None or event.tab.id is None:
            return
        self.active_panel = event.tab.id
        self._apply_layout()
        if self.active_panel == "overview" and self.snapshot is not None:
            self.overview.show(self.history)
        focus = {
            "workers": "#groups-table" if self.workers_view.grouped else "#workers-table",
            "spill": "#spill-table",
            "jobs": "#jobs-table",
        }.get(self.active_panel)
        if focus:
            self.query_one(focus).focus()
        elif self.active_panel == "compute" and self._compute is not None:
            self.call_after_refresh(self._focus_compute)

    def _focus_compute(self) -> None:
        panel = self.query_one("#compute-panel")
        for widget in panel.query("*"):
            if widget.focusable:
                widget.focus()
                return

    # ---- data -----------------------------------------------------------------------------

    def watch_snapshot(self, snapshot: ConsoleSnapshot | None) -> None:
        if snapshot is None or not self.ready:
            return
        if snapshot.backend != self.backend:
            self.backend = snapshot.backend
            self.query_one("#jobs-panel").border_title = jobs_panel_title(snapshot.backend)
        cluster = snapshot.cluster
        totals = cluster.totals if cluster is not None else None
        history = self.history
        self.status.show(snapshot, self.requested, totals)
        if cluster is not None:
            retiring = frozenset(
                a for j in snapshot.jobs if j.state is JobState.RETIRING for a in j.workers
            )
            self.workers_table.update_workers(
                cluster.workers, spill_threshold=cluster.spill_threshold, retiring=retiring
            )
            self.workers_view.update(cluster.workers)
            if self._offer_groups() != self._groups_offered:
                self._groups_offered = not self._groups_offered
                self.refresh_bindings()  # g appears in the footer from WORKERS_VIEW_MIN workers
            names = {w.address: w.name for w in cluster.workers}
        else:
            names = {}
        self.workers_panel.set_class(not snapshot.connected, "-stale")
        self._update_subtitle()
        if self.overview.display:
            self.overview.show(history)
        self.memory_panel.show(cluster, history, totals)
        self.spill_panel.show(snapshot, history, totals)
        subtitle = self.jobs_table.show_jobs(snapshot.jobs, snapshot.ended, snapshot.time, names, self._job_views)
        panel = self.query_one("#jobs-panel")
        if panel.border_subtitle != subtitle:
            panel.border_subtitle = subtitle

    def watch_requested(self, requested: int | None) -> None:
        if self.ready:
            self.status.show(None, requested)

    # ---- leaving ----------------------------------------------------------------------------

    def jobs_alive(self) -> int:
        if not self.capabilities.stop:
            return 0
        snap = self.snapshot
        alive = sum(1 for j in snap.jobs if j.state in ALIVE_STATES) if snap is not None else 0
        return max(alive, self.requested_jobs)

    def _computing(self) -> bool:
        return bool(getattr(self._compute, "running", False))

    def action_request_quit(self, force_on_repeat: bool = False) -> None:
        from naist_dask_tui.screens.confirm import ConfirmScreen
        from naist_dask_tui.screens.quit_dialog import QuitDialog, quit_question
        from naist_dask_tui.words import stop_deletes

        top = self.app.screen
        if isinstance(top, (QuitDialog, ConfirmScreen)) and top.id in ("quit-dialog", "quit-confirm"):
            if force_on_repeat:  # a second Ctrl+C at the question
                self.post_message(LeaveRequested("stop"))
            return
        caps = self.capabilities
        if not caps.stop:
            self.post_message(LeaveRequested("exit"))  # a scheduler started elsewhere: just go
            return
        alive = self.jobs_alive()
        snap = self.snapshot
        if caps.detach and snap is not None and not snap.connected and not alive:
            self.post_message(LeaveRequested("exit"))  # its keeper is gone: nothing to keep
            return
        if not caps.detach:
            if not alive:
                self.post_message(LeaveRequested("stop"))
                return
            self.app.push_screen(
                ConfirmScreen(
                    f"Quit? This deletes {stop_deletes(self.backend, alive)}.",
                    yes="Quit",
                    id="quit-confirm",
                ),
                lambda yes: self.post_message(LeaveRequested("stop")) if yes else None,
            )
            return
        question = quit_question(self.snapshot, alive, computing=self._computing())
        self.app.push_screen(QuitDialog(question), self._left)

    def _left(self, answer: str | None) -> None:
        if answer in ("stop", "detach"):
            self.post_message(LeaveRequested(answer))

    def action_detach(self) -> None:
        # A computation running in the compute pane lives in the keeper's runner: it goes on.
        self.post_message(LeaveRequested("detach"))

    def action_help(self) -> None:
        from naist_dask_tui.screens.help import HelpScreen

        def offered(binding: Binding) -> bool:  # what this cluster cannot do is not listed
            return not (binding.id or "").startswith("main.") or bool(self.check_action(binding.action, ()))

        sections = [(title, [b for b in bindings if offered(b)]) for title, bindings in self.app.help_sections()]
        self.app.push_screen(HelpScreen(sections))

    # ---- command palette ----------------------------------------------------------------------

    def palette_commands(self) -> Iterable[SystemCommand]:
        from naist_dask_tui.words import palette_text

        up, down, log = (palette_text(self.backend, a) for a in ("scale_up", "scale_down", "job_log"))
        commands = [
            ("scale_up", *up, self.action_scale_up),
            ("scale_down", *down, self.action_scale_down),
            ("scale_to", "Scale to an exact number of jobs (s)", "Type a job count", self.action_scale_to),
            ("toggle_adaptive", "Adaptive scaling on/off (a)", "Let dask choose between min and max jobs",
             self.action_toggle_adaptive),
            ("retire", "Retire the selected worker's job (r)", "Move its data away, then delete it",
             self.action_retire),
            ("filter", "Filter workers (/)", "Show only matching workers", self.action_filter),
            ("job_log", *log, self.action_job_log),
            ("detach", "Detach (d)", "Leave the cluster running without this screen", self.action_detach),
            ("console_log", "Show the keeper's log (L)", "What the cluster's keeper did and why",
             self.action_console_log),
            ("inquire", "Failed tasks (f)", "Grouped by exception, with tracebacks and the jobs that died",
             lambda: self.action_inquire("failures")),
            ("inquire", "Slow and stuck tasks (t)", "Tasks running far longer than usual; their call stacks",
             lambda: self.action_inquire("slow_tasks")),
            ("inquire", "Worker events (e)", "Workers joining, leaving, restarting, and why",
             lambda: self.action_inquire("worker_events")),
            ("request_quit", "Quit (q)", "Stop the cluster, or detach from it", self.action_request_quit),
            ("help", "Keys and help (?)", "Every key binding", self.action_help),
        ]
        for action, title, help_text, callback in commands:
            if self.check_action(action, ()):
                yield SystemCommand(title, help_text, callback)

    # ---- filter ---------------------------------------------------------------------------

    def action_filter(self) -> None:
        if self.workers_view.grouped:  # the filter is the per-worker table's
            self.workers_view.show_workers()
        if self.active_panel not in ("workers",) and not self.wide:
            self.action_show_panel("workers")
        box = self.query_one("#filter", Input)
        box.display = True
        box.focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "filter":
            event.stop()
            self.query_one(WorkersTable).set_filter(event.value)
            self._update_subtitle()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "filter":
            event.stop()
            if not event.value.strip():
                event.input.display = False
            self.query_one(WorkersTable).focus()

    def action_clear_filter(self) -> None:
        box = self.query_one("#filter", Input)
        if box.display or box.value:
            box.value = ""
            box.display = False
            self.query_one(WorkersTable).set_filter("")
            self.query_one(WorkersTable).focus()
            self._update_subtitle()

    def _update_subtitle(self) -> None:
        table = self.workers_table
        field = f" ({table.filter_field})" if getattr(table, "filter_field", "") else ""
        subtitle = (
            f"{table.row_count} of {table.total_count} match /{table.filter_text}{field}"
            if table.filter_text
            else f"{table.total_count} workers"
        ) + self.workers_view.subtitle(table.total_count, WORKERS_VIEW_MIN)
        if self.workers_panel.border_subtitle != subtitle:
            self.workers_panel.border_subtitle = subtitle

    def on_compute_pane_run_started(self, message) -> None:
        self.run_started_at = time.time()  # the Failures view's "current run" (it bubbles on)

    def on_jobs_table_detail_requested(self, message: JobsTable.DetailRequested) -> None:
        from naist_dask_tui.screens.inquiries import open_job

        open_job(self, message.job)
