"""The main screen: status bar, panel tabs (all panels at once on a large terminal), footer.

The screen renders snapshots and turns keys into intents; the app owns the controller calls.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Container, Vertical
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Input, Static, Tab, Tabs

from naist_dask_tui.core.snapshot import ConsoleSnapshot, JobState
from naist_dask_tui.history import ClusterTotals, MemoryHistory
from naist_dask_tui.widgets.footer import ConsoleFooter
from naist_dask_tui.widgets.jobs_table import JobsTable, job_views
from naist_dask_tui.widgets.memory_panel import MemoryPanel
from naist_dask_tui.widgets.spill_panel import SpillPanel
from naist_dask_tui.widgets.status_bar import StatusBar
from naist_dask_tui.widgets.workers_table import WorkersTable
from naist_dask_tui.words import jobs_panel_title

if TYPE_CHECKING:
    from naist_dask_tui.app import ConsoleApp

PANELS = ("workers", "memory", "spill", "jobs", "compute")
OVERVIEW = ("workers", "memory", "spill", "jobs")
WIDE_MIN = (160, 40)  # columns, rows from which the overview panels are shown side by side


class MainScreen(Screen[None]):
    # The whole key map (and why these keys) is in naist_dask_tui/keymap.py; descriptions are
    # short: the footer shows them at 80 columns.
    BINDINGS = [
        Binding("q", "app.request_quit", "Quit", tooltip="Quit: close the cluster, delete every job", id="main.quit"),
        Binding("plus,equals_sign", "app.scale_up", "Job+", key_display="+", tooltip="Job +1: one job more", id="main.scale_up"),
        Binding("minus", "app.scale_down", "Job-", key_display="-", tooltip="Job -1: one job less (graceful)", id="main.scale_down"),
        Binding("s", "app.scale_to", "Scale", tooltip="Scale to an exact number of jobs", id="main.scale_to"),
        Binding("a", "app.toggle_adaptive", "Adapt", tooltip="Adaptive scaling on/off", id="main.adaptive"),
        Binding("slash", "filter", "Filter", key_display="/", tooltip="Filter the workers (name and job first)", id="main.filter"),
        Binding("l", "job_log", "Log", tooltip="Job log: follow the selected job's output", id="main.job_log"),
        Binding("question_mark", "app.help", "Help", key_display="?", tooltip="Help: every key", id="main.help"),
        Binding("f1", "app.help", "Help", tooltip="Help (also from the editor)", id="main.help_f1"),
        # priority: scroll views (the editor, the tables) would page sideways on these keys
        Binding("ctrl+pagedown", "cycle_panel(1)", "Panel", key_display="^PgDn", priority=True,
                tooltip="Next panel (also from the editor)", id="main.next_panel"),
        Binding("ctrl+pageup", "cycle_panel(-1)", "Previous panel", show=False, priority=True,
                id="main.previous_panel"),
        Binding("r", "retire", "Retire job", show=False, tooltip="Retire job: the selected worker's job, gracefully", id="main.retire"),
        Binding("1", "show_panel('workers')", "Workers panel", show=False, id="main.panel_workers"),
        Binding("2", "show_panel('memory')", "Memory panel", show=False, id="main.panel_memory"),
        Binding("3", "show_panel('spill')", "Spill panel", show=False, id="main.panel_spill"),
        Binding("4", "show_panel('jobs')", "Jobs panel", show=False, id="main.panel_jobs"),
        Binding("5", "show_panel('compute')", "Compute panel", show=False, id="main.panel_compute"),
        Binding("escape", "clear_filter", "Clear filter", show=False, id="main.clear_filter"),
    ]

    def __init__(self, *, user: str, login_host: str, compute: Widget | None = None) -> None:
        super().__init__(id="main")
        self._user = user
        self._login_host = login_host
        self._compute = compute
        self.active_panel = "workers"
        self.wide = False
        self._job_views: dict = {}
        self.ready = False  # set once mounted: snapshots that arrive earlier are shown then

    @property
    def console(self) -> ConsoleApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield StatusBar(user=self._user, login_host=self._login_host, id="status")
        yield Tabs(
            Tab("1 Workers", id="workers"),
            Tab("2 Memory", id="memory"),
            Tab("3 Spill", id="spill"),
            Tab("4 Jobs", id="jobs"),
            Tab("5 Compute", id="compute"),
            id="tabs",
        )
        with Container(id="panels"):
            with Vertical(id="workers-panel", classes="panel"):
                yield WorkersTable(id="workers-table")
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
            "workers-panel": "Workers",
            "memory-panel": "Memory",
            "spill-panel": "Spill to disk",
            "jobs-panel": jobs_panel_title(getattr(self.console.controller, "backend", "sge")),
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
        self._apply_layout()
        self.workers_table.focus()
        self.ready = True
        app = self.console
        if app.snapshot is not None:
            self.show_snapshot(app.snapshot, app.history, app._requested)

    # ---- layout ---------------------------------------------------------------------------

    def on_resize(self) -> None:
        self._apply_layout()

    def _apply_layout(self) -> None:
        width, height = self.size
        self.wide = width >= WIDE_MIN[0] and height >= WIDE_MIN[1]
        panels = self.query_one("#panels")
        overview = self.wide and self.active_panel in OVERVIEW
        panels.set_class(overview, "-overview")
        for name in PANELS:
            widget = self.query_one(f"#{name}-panel")
            widget.display = name == self.active_panel or (overview and name in OVERVIEW)
            widget.set_class(name == self.active_panel, "-active")

    def action_show_panel(self, name: str) -> None:
        self.query_one(Tabs).active = name

    def action_cycle_panel(self, step: int) -> None:
        i = PANELS.index(self.active_panel) if self.active_panel in PANELS else 0
        self.action_show_panel(PANELS[(i + step) % len(PANELS)])

    def on_tabs_tab_activated(self, event: Tabs.TabActivated) -> None:
        if event.tab is None or event.tab.id is None:
            return
        self.active_panel = event.tab.id
        self._apply_layout()
        focus = {
            "workers": "#workers-table",
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

    def show_snapshot(
        self,
        snapshot: ConsoleSnapshot,
        history: MemoryHistory,
        requested: int | None,
        totals: ClusterTotals | None = None,
    ) -> None:
        if not self.ready:
            return
        status = self.status
        status.retry_in = self.console.refresh_interval
        cluster = snapshot.cluster
        if totals is None and cluster is not None:
            totals = ClusterTotals.of(cluster)
        status.show(snapshot, requested, totals)
        if cluster is not None:
            retiring = frozenset(
                a for j in snapshot.jobs if j.state is JobState.RETIRING for a in j.workers
            )
            self.workers_table.update_workers(
                cluster.workers, spill_threshold=cluster.spill_threshold, retiring=retiring
            )
            names = {w.address: w.name for w in cluster.workers}
        else:
            names = {}
        self.workers_panel.set_class(not snapshot.connected, "-stale")
        self._update_subtitle()
        self.memory_panel.show(cluster, history, totals)
        self.spill_panel.show(snapshot, history, totals)
        self.jobs_table.set_rows(job_views(snapshot.jobs, snapshot.time, names, self._job_views))

    def show_requested(self, requested: int | None) -> None:
        if self.ready:
            self.status.show(None, requested)

    # ---- filter ---------------------------------------------------------------------------

    def action_filter(self) -> None:
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
        )
        if self.workers_panel.border_subtitle != subtitle:
            self.workers_panel.border_subtitle = subtitle

    # ---- intents on the selected row -------------------------------------------------------

    def selected_job_target(self) -> tuple[str, str] | None:
        """(target for ``retire_job``, label) of the selected job or of the selected worker's job."""
        focused = self.focused
        if isinstance(focused, JobsTable) or (self.active_panel == "jobs" and not self.wide):
            job = self.query_one(JobsTable).cursor_job
            if job is None:
                return None
            return (job.job_id or job.name, f"job {job.job_id or job.name}")
        worker = self.query_one(WorkersTable).cursor_row
        if worker is None:
            return None
        snapshot = self.console.snapshot
        for job in snapshot.jobs if snapshot else ():
            if worker.address in job.workers:
                return (job.job_id or job.name, f"job {job.job_id or job.name} (worker {worker.name})")
        if worker.job_id:
            return (worker.job_id, f"job {worker.job_id} (worker {worker.name})")
        return (worker.name, f"worker {worker.name}")

    def action_retire(self) -> None:
        target = self.selected_job_target()
        if target is None:
            self.notify("Select a worker or a job first.", severity="warning")
            return
        self.console.retire(*target)

    def action_job_log(self) -> None:
        job = None
        if isinstance(self.focused, JobsTable) or self.active_panel == "jobs":
            job = self.query_one(JobsTable).cursor_job
        else:
            worker = self.query_one(WorkersTable).cursor_row
            snapshot = self.console.snapshot
            if worker is not None and snapshot is not None:
                job = next((j for j in snapshot.jobs if worker.address in j.workers), None)
        if job is None:
            self.notify("Select a job (4 shows the jobs) to see its output.", severity="warning")
            return
        self.console.show_job_log(job)
