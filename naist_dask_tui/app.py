"""The Textual app: owns the poll loop, the history and the controller calls.

Data flows one way (monitor -> ``SnapshotFetched`` -> widgets); intents flow back (key ->
action -> a queued controller call on one control thread -> ``ActionDone``/``ActionFailed``).
"""

from __future__ import annotations

import asyncio
import getpass
import queue
import signal
import socket
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterable

from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen
from textual.timer import Timer
from textual.widget import Widget
from textual.worker import Worker, WorkerState, get_current_worker

import naist_dask_tui
from naist_dask_tui.core.snapshot import ConsoleSnapshot, JobRow, JobState
from naist_dask_tui.history import ClusterTotals, MemoryHistory
from naist_dask_tui.messages import ActionDone, ActionFailed, SnapshotFetched

CSS_FILES = ("app.tcss", "panels.tcss", "dialogs.tcss")
OPTIONAL_CSS_FILES = ("compute.tcss",)  # written by the compute pane's owner


def styles_dir() -> Path:
    """``naist_dask_tui/styles`` in an installed wheel, else the checkout's top-level ``styles/``."""
    installed = Path(naist_dask_tui.__file__).parent / "styles"
    if installed.is_dir():
        return installed
    return Path(naist_dask_tui.__file__).resolve().parent.parent / "styles"


def css_paths() -> list[Path]:
    base = styles_dir()
    paths = [base / name for name in CSS_FILES]
    paths += [base / name for name in OPTIONAL_CSS_FILES if (base / name).is_file()]
    return paths


def _login_host() -> str:
    """The name a laptop would ``ssh`` to: the FQDN, unless /etc/hosts maps it to localhost."""
    try:
        fqdn = socket.getfqdn()
        if fqdn and not fqdn.startswith("localhost"):
            return fqdn
        return socket.gethostname() or "login-node"
    except OSError:
        return "login-node"


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:
        return "user"


def _compute_pane(controller: Any) -> Widget | None:
    """The compute pane when its module exists and a client is up; None otherwise."""
    if controller is None or getattr(controller, "client", None) is None:
        return None
    try:
        from naist_dask_tui.core.compute import ComputeSession
        from naist_dask_tui.widgets.command_pane import ComputePane
    except ImportError:
        return None
    try:
        return ComputePane(
            ComputeSession(
                controller.client, controller.cluster, client_source=lambda: controller.client
            )
        )
    except Exception:  # a broken pane must not take the console down with it
        return None


def _start_resource_tracker() -> None:
    """Start multiprocessing's resource tracker now, while ``sys.stderr`` is a real file.

    A LocalCluster spawns nanny processes; the first spawn starts the tracker and passes it
    ``sys.stderr.fileno()``. Inside a running Textual app stderr is a capture object whose
    fileno is -1, so that first spawn fails ("bad value(s) in fds_to_keep") and the new
    worker never starts. With the tracker already running nothing asks for stderr's fd.
    """
    try:
        from multiprocessing import resource_tracker

        resource_tracker.ensure_running()
    except Exception:
        pass


ALIVE_STATES = {
    JobState.SUBMITTING,
    JobState.PENDING,
    JobState.HELD,
    JobState.RUNNING,
    JobState.SUSPENDED,
    JobState.ERROR,
    JobState.RETIRING,
}


class ConsoleApp(App[int]):
    TITLE = "naist-dask-tui"
    CSS_PATH = css_paths()
    ENABLE_COMMAND_PALETTE = True
    BINDINGS = [
        Binding("ctrl+c", "ctrl_c", "Quit", show=False, priority=True, id="app.ctrl_c"),
        Binding("ctrl+q", "request_quit(True)", "Quit", show=False, priority=True, id="app.ctrl_q"),
    ]

    def __init__(
        self,
        settings: Any,
        controller: Any = None,
        monitor: Any = None,
        *,
        user: str | None = None,
        login_host: str | None = None,
        poll: bool = True,
        handle_signals: bool = False,
    ) -> None:
        super().__init__()
        self.settings = settings
        from naist_dask_tui.keymap import apply as apply_keymap  # (issue 9) the [keys] table

        apply_keymap(self, getattr(settings, "keys", None))
        self.controller = controller
        if monitor is None and controller is not None:
            from naist_dask_tui.core.monitor import Monitor

            monitor = Monitor(controller)
        self.monitor = monitor
        if getattr(controller, "backend", None) == "local":
            _start_resource_tracker()
        self.refresh_interval = float(getattr(settings, "refresh_interval", 1.0) or 1.0)
        self.user = user or _user()
        self.login_host = login_host or _login_host()
        self.history = MemoryHistory(maxlen=max(60, int(600 / self.refresh_interval)))
        self.snapshot: ConsoleSnapshot | None = None
        self.connected = True
        self.polls = 0  # finished polls: tests wait on this
        self._poll_enabled = poll and monitor is not None
        self._poll_timer: Timer | None = None
        self._poll_again = False
        self._requested: int | None = None  # shown until a poll started after the request lands
        self._requested_epoch = 0
        self._poll_epoch = 0  # polls started
        self._snapshot_epoch = 0  # epoch of the poll that produced self.snapshot
        self._control: queue.Queue[tuple[str, Callable[[], str]] | None] = queue.Queue()
        self._handle_signals = handle_signals
        self._signals_installed: list[int] = []
        self.exit_reason: str | None = None
        self._seen_notices: dict[str, None] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    # ---- screens --------------------------------------------------------------------------

    def get_default_screen(self) -> Screen[Any]:
        from naist_dask_tui.screens.main import MainScreen

        return MainScreen(
            user=self.user, login_host=self.login_host, compute=_compute_pane(self.controller)
        )

    @property
    def main(self) -> Any:
        from naist_dask_tui.screens.main import MainScreen

        for screen in self.screen_stack:
            if isinstance(screen, MainScreen):
                return screen
        raise LookupError("main screen not mounted")

    def on_mount(self) -> None:
        self._loop = asyncio.get_running_loop()
        if self._handle_signals:
            self._install_signal_handlers()
        if self.controller is not None:
            self._control_loop()
        if self._poll_enabled:
            self.poll()

    def on_unmount(self) -> None:
        self._control.put(None)
        loop = asyncio.get_running_loop()
        for sig in self._signals_installed:
            loop.remove_signal_handler(sig)
            # Until the console's finally has deleted the jobs, a second SIGHUP (the terminal
            # going away) or SIGTERM must not kill the process halfway through the cleanup.
            if sig != signal.SIGINT:
                signal.signal(sig, signal.SIG_IGN)
        self._signals_installed.clear()

    def exit_threadsafe(self, return_code: int = 0, reason: str | None = None) -> bool:
        """Ask the app to exit from a signal handler or another thread; False if not running."""
        loop = self._loop
        if loop is None or loop.is_closed() or not self.is_running:
            return False
        if reason:
            self.exit_reason = reason
        loop.call_soon_threadsafe(self.exit, return_code)
        return True

    # ---- signals: an SSH drop (SIGHUP) or a kill (SIGTERM) ends the app, the finally cleans up

    def _install_signal_handlers(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
            try:
                loop.add_signal_handler(sig, self._on_signal, sig)
            except (NotImplementedError, RuntimeError, ValueError):
                continue
            self._signals_installed.append(sig)

    def _on_signal(self, sig: int) -> None:
        self.exit_reason = signal.Signals(sig).name
        self.exit(128 + sig)

    # ---- polling ----------------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="poll", exit_on_error=False, name="poll")
    def poll(self) -> None:
        try:
            snapshot = self.monitor.poll()
        except Exception as exc:  # Monitor promises not to raise; a lost poll must not crash us
            snapshot = self._lost_snapshot(f"{type(exc).__name__}: {exc}")
        self.post_message(SnapshotFetched(snapshot))

    def _lost_snapshot(self, error: str) -> ConsoleSnapshot:
        prev = self.snapshot
        return ConsoleSnapshot(
            time=time.time(),
            backend=getattr(self.controller, "backend", prev.backend if prev else "?"),
            scheduler_address=prev.scheduler_address if prev else "",
            connected=False,
            cluster=None,
            jobs=prev.jobs if prev else (),
            requested_jobs=prev.requested_jobs if prev else 0,
            dashboard_link=prev.dashboard_link if prev else None,
            local_directory=prev.local_directory if prev else None,
            error=error,
        )

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        worker = event.worker
        if worker.group == "poll":
            if event.state is WorkerState.RUNNING:
                self._poll_epoch += 1
                worker._naist_epoch = self._poll_epoch  # type: ignore[attr-defined]
            elif event.state in (WorkerState.SUCCESS, WorkerState.ERROR, WorkerState.CANCELLED):
                self.polls += 1
                if self._poll_enabled and self.is_running:
                    # (never a 0 s timer: Textual divides by the interval when stopping it)
                    delay = 0.01 if self._poll_again else self.refresh_interval
                    self._poll_again = False
                    self._poll_timer = self.set_timer(delay, self.poll)
        elif worker.group == "control" and event.state is WorkerState.ERROR:
            self.notify(f"control thread failed: {worker.error}", severity="error")

    def poll_now(self) -> None:
        """Poll as soon as possible without overlapping a running poll."""
        if not self._poll_enabled:
            return
        if any(w.group == "poll" and w.is_running for w in self.workers):
            self._poll_again = True
            return
        if self._poll_timer is not None:
            self._poll_timer.stop()
        self.poll()

    def on_snapshot_fetched(self, message: SnapshotFetched) -> None:
        snapshot = message.snapshot
        self._snapshot_epoch = self._poll_epoch
        self.apply_snapshot(snapshot)

    def apply_snapshot(self, snapshot: ConsoleSnapshot) -> None:
        """Show one snapshot (tests and the benchmark call this directly)."""
        self.snapshot = snapshot
        if snapshot.connected != self.connected:
            self.connected = snapshot.connected
            if snapshot.connected:
                self.notify("scheduler reachable again", timeout=3)
            else:
                self.notify(f"scheduler lost: {snapshot.error or 'no answer'}", severity="error")
        if self._requested is not None and (
            snapshot.requested_jobs == self._requested or self._snapshot_epoch > self._requested_epoch
        ):
            self._requested = None
        totals = ClusterTotals.of(snapshot.cluster) if snapshot.cluster is not None else None
        self.history.add(snapshot, totals)
        for notice in snapshot.notices:
            # The monitor repeats the controller's recent notices every poll: show each once.
            if notice not in self._seen_notices:
                self._seen_notices[notice] = None
                if len(self._seen_notices) > 500:
                    self._seen_notices.pop(next(iter(self._seen_notices)))
                self.notify(notice, severity="warning", timeout=8)
        try:
            main = self.main
        except LookupError:
            return
        with self.batch_update():
            main.show_snapshot(snapshot, self.history, self._requested, totals)

    # ---- controller calls, one at a time, in order, off the UI thread ----------------------

    @work(thread=True, group="control", exit_on_error=False, name="control")
    def _control_loop(self) -> None:
        # Thread workers run in asyncio's default executor, which asyncio.run() joins on the
        # way out: never block forever, or a crashed app would hang the process at exit.
        worker = get_current_worker()
        while not worker.is_cancelled:
            try:
                item = self._control.get(timeout=0.25)
            except queue.Empty:
                continue
            if item is None:
                return
            action, call = item
            try:
                text = call()
            except Exception as exc:
                self.post_message(ActionFailed(action, str(exc) or type(exc).__name__))
            else:
                self.post_message(ActionDone(action, text))

    def _submit(self, action: str, call: Callable[[], str]) -> None:
        if self.controller is None:
            self.notify("No cluster controller: this console only shows data.", severity="warning")
            return
        self._control.put((action, call))

    def on_action_done(self, message: ActionDone) -> None:
        self._requested_epoch = self._poll_epoch
        if message.text:
            self.notify(message.text, timeout=3)
        self.poll_now()

    def on_action_failed(self, message: ActionFailed) -> None:
        self._requested = None
        self.notify(f"{message.action} failed: {message.text}", severity="error", timeout=8)
        self.poll_now()
        self._show_requested()

    # ---- intents ----------------------------------------------------------------------------

    @property
    def requested_jobs(self) -> int:
        if self._requested is not None:
            return self._requested
        if self.controller is not None:
            try:
                return int(self.controller.requested_jobs)
            except Exception:
                pass
        return self.snapshot.requested_jobs if self.snapshot else 0

    @property
    def adaptive(self) -> tuple[int, int] | None:
        if self.controller is not None:
            try:
                return self.controller.adaptive
            except Exception:
                pass
        return self.snapshot.adaptive if self.snapshot else None

    def _show_requested(self) -> None:
        try:
            self.main.show_requested(self._requested)
        except LookupError:
            pass

    def request_scale(self, jobs: int) -> None:
        """Ask for ``jobs`` jobs now; the status bar shows the request at once."""
        if jobs < 0:
            self.notify("Already at 0 jobs.", severity="warning")
            return
        current = self.requested_jobs
        adaptive = self.adaptive
        self._requested = jobs
        self._requested_epoch = 1 << 60  # until the call returns
        self._show_requested()
        note = " (adaptive scaling turned off)" if adaptive else ""
        self.notify(f"Scaling {current} → {jobs} job{'s' if jobs != 1 else ''}{note}", timeout=3)
        controller = self.controller

        def call() -> str:
            if adaptive:
                controller.stop_adapt()
            controller.scale(jobs)
            return ""

        self._submit("scale", call)

    def _confirm_zero(self, jobs: int, stepwise: bool = False) -> None:
        # (issue 9) refuse above max_jobs; ask before 0 and before jobs that would pend
        from naist_dask_tui.screens.confirm import ConfirmScreen
        from naist_dask_tui.screens.scale_dialog import scale_problem, scale_question

        limits = getattr(self.controller, "limits", None)
        problem = scale_problem(limits, jobs)
        if problem:
            self.notify(problem, severity="error", timeout=8)
            return
        question = scale_question(limits, self.requested_jobs, jobs, stepwise=stepwise)
        if question:

            def answered(yes: bool | None) -> None:
                if yes:
                    self.request_scale(jobs)
                else:
                    self.notify("Nothing changed.", timeout=2)

            yes = "Scale to 0" if jobs == 0 else f"Scale to {jobs}"
            self.push_screen(ConfirmScreen(question, yes=yes), answered)
        else:
            self.request_scale(jobs)

    def action_scale_up(self) -> None:
        self._confirm_zero(self.requested_jobs + 1, stepwise=True)

    def action_scale_down(self) -> None:
        current = self.requested_jobs
        if current <= 0:
            self.notify("Already at 0 jobs.", severity="warning", timeout=2)
            return
        self._confirm_zero(current - 1)

    def action_scale_to(self) -> None:
        from naist_dask_tui.screens.scale_dialog import ScaleDialog

        def answered(jobs: int | None) -> None:
            if jobs is not None:
                self._confirm_zero(jobs)

        self.push_screen(ScaleDialog(self.requested_jobs, getattr(self.controller, "limits", None)), answered)

    def action_toggle_adaptive(self) -> None:
        from naist_dask_tui.screens.scale_dialog import AdaptDialog

        adaptive = self.adaptive
        if adaptive:
            self.notify(f"Adaptive scaling off; keeping {self.requested_jobs} job(s).", timeout=3)
            self._submit("adaptive off", lambda: self.controller.stop_adapt() or "")
            return

        def answered(bounds: tuple[int, int] | None) -> None:
            if bounds is None:
                return
            lo, hi = bounds
            self.notify(f"Adaptive scaling on: {lo}-{hi} jobs", timeout=3)
            self._submit("adaptive", lambda: self.controller.adapt(minimum=lo, maximum=hi) or "")

        current = self.requested_jobs
        limits = getattr(self.controller, "limits", None)
        hi = max(current, 4) if limits is None else min(max(current, 4), limits.max_jobs)
        self.push_screen(AdaptDialog(min(current, 1), hi, limits), answered)

    def retire(self, target: str, label: str) -> None:
        self.notify(f"Retiring {label}: moving its data, then deleting it…", timeout=4)
        controller = self.controller

        def call() -> str:
            controller.retire_job(target)
            return ""

        self._submit(f"retire {label}", call)

    def show_job_log(self, job: JobRow) -> None:
        from naist_dask_tui.screens.log_tail import LogTailScreen

        backend = getattr(self.controller, "backend", "sge")
        noun = "worker" if backend == "local" else "job"
        self.push_screen(LogTailScreen(f"{noun} {job.job_id or job.name}", job.log_path, backend=backend))

    def action_help(self) -> None:
        from naist_dask_tui.keymap import help_sections
        from naist_dask_tui.screens.help import HelpScreen

        self.push_screen(HelpScreen(help_sections(self)))  # (issue 9: keymap.py has the sections)

    # ---- quitting ---------------------------------------------------------------------------

    def jobs_alive(self) -> int:
        if getattr(self.controller, "backend", None) == "attach" or (
            self.controller is None and self.snapshot and self.snapshot.backend == "attach"
        ):
            return 0
        alive = sum(1 for j in self.snapshot.jobs if j.state in ALIVE_STATES) if self.snapshot else 0
        return max(alive, self.requested_jobs)

    def action_ctrl_c(self) -> None:
        """Ctrl+C cancels a running computation when the compute pane has focus, else quits
        (asking first when jobs are alive; a second Ctrl+C at that question quits)."""
        focused = self.focused
        node = focused
        while node is not None:
            if type(node).__name__ == "ComputePane" and getattr(node, "running", False):
                node.action_cancel()  # type: ignore[attr-defined]
                return
            node = node.parent  # type: ignore[assignment]
        self.action_request_quit(True)

    def action_request_quit(self, force_on_repeat: bool = False) -> None:
        from naist_dask_tui.screens.confirm import ConfirmScreen

        if isinstance(self.screen, ConfirmScreen) and self.screen.id == "quit-confirm":
            if force_on_repeat:
                self.exit(0)
            return
        alive = self.jobs_alive()
        if not alive:
            self.exit(0)
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.exit(0)

        what = "SGE job" if getattr(self.controller, "backend", "sge") == "sge" else "job"
        self.push_screen(
            ConfirmScreen(
                f"Quit? This deletes {alive} {what}{'s' if alive != 1 else ''}, "
                "their workers and the data they hold.",
                yes="Quit",
                id="quit-confirm",
            ),
            answered,
        )

    # ---- command palette --------------------------------------------------------------------

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        from naist_dask_tui.screens.main import MainScreen

        if not isinstance(screen, MainScreen):
            return
        yield SystemCommand("Scale: one job more (+)", "Submit one more SGE job", self.action_scale_up)
        yield SystemCommand("Scale: one job less (-)", "Retire and delete one job", self.action_scale_down)
        yield SystemCommand("Scale to an exact number of jobs (s)", "Type a job count", self.action_scale_to)
        yield SystemCommand("Adaptive scaling on/off (a)", "Let dask choose between min and max jobs", self.action_toggle_adaptive)
        yield SystemCommand("Retire the selected worker's job (r)", "Move its data away, then delete it", screen.action_retire)
        yield SystemCommand("Filter workers (/)", "Show only matching workers", screen.action_filter)
        yield SystemCommand("Show the selected job's SGE output (l)", "Follow the worker log live", screen.action_job_log)
        yield SystemCommand("Keys and help (?)", "Every key binding", self.action_help)
        yield SystemCommand("Quit and delete all jobs (q)", "Close the cluster", self.action_request_quit)


def make_app(settings: Any, controller: Any = None, monitor: Any = None, **options: Any) -> ConsoleApp:
    """The one factory for the CLI and the tests.

    ``controller`` (a started ``ClusterController``) and ``monitor`` (anything with ``poll() ->
    ConsoleSnapshot``) are injected; with a controller and no monitor a ``Monitor`` is built.
    ``options``: ``user``/``login_host`` (for the ``ssh -L`` hint), ``poll`` (False: no poll loop,
    feed ``app.apply_snapshot``), ``handle_signals`` (True in the CLI).
    """
    return ConsoleApp(settings, controller, monitor, **options)
