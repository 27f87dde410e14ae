"""The Textual app: the poll loop, the hand-off of each snapshot to the screen, and the
controller calls.

Data flows one way: monitor -> ``SnapshotFetched`` -> ``MainScreen.snapshot`` (a reactive set
inside ``batch_update()``) -> widgets. Intents flow back: key -> screen action (dialogs there)
-> intent message (``ScaleRequested``, ...) -> a queued controller call on one control thread
-> ``ActionDone``/``ActionFailed``. The controller is anything that speaks
:class:`~naist_dask_tui.core.control.ClusterControl`: a keeper's cluster seen from here, one in
this process (tests, the keeper itself), or a scheduler started elsewhere (watch only).
"""

from __future__ import annotations

import asyncio
import queue
import signal
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen
from textual.timer import Timer
from textual.worker import Worker, WorkerState, get_current_worker

from naist_dask_tui.appsetup import (
    compute_pane,
    css_paths,
    login_host as _login_host,
    start_resource_tracker,
    styles_dir,  # noqa: F401  (part of this module's interface: the wheel test reads it here)
    user as _user,
)
from naist_dask_tui.core.control import Capabilities
from naist_dask_tui.core.snapshot import ConsoleSnapshot
from naist_dask_tui.history import MemoryHistory
from naist_dask_tui.messages import (
    ActionDone,
    ActionFailed,
    AdaptRequested,
    LeaveRequested,
    RetireRequested,
    ScaleRequested,
    SnapshotFetched,
)


class ConsoleApp(App[int]):
    TITLE = "naist-dask-tui"
    CSS_PATH = css_paths()
    ENABLE_COMMAND_PALETTE = True
    BINDINGS = [
        Binding("ctrl+c", "ctrl_c", "Quit", show=False, priority=True, id="app.ctrl_c"),
        Binding("ctrl+q", "ctrl_c", "Quit", show=False, priority=True, id="app.ctrl_q"),
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
        capabilities: Capabilities | None = None,
        notes: Iterable[str] = (),
    ) -> None:
        super().__init__()
        self.settings = settings
        from naist_dask_tui.keymap import apply as apply_keymap  # (issue 9) the [keys] table

        apply_keymap(self, getattr(settings, "keys", None))
        self.controller = controller
        if capabilities is None:
            # No controller: a display fed with snapshots (widget tests, benchmarks) shows every
            # key; pressing one says that nothing is behind it.
            capabilities = controller.capabilities if controller is not None else Capabilities.all()
        self.capabilities: Capabilities = capabilities
        if monitor is None and controller is not None:
            monitor = controller.make_monitor()
        self.monitor = monitor
        if controller is not None and controller.backend == "local" and not self.capabilities.detach:
            # a LocalCluster in this process (a keeper's lives in the keeper)
            start_resource_tracker()
        self.refresh_interval = float(getattr(settings, "refresh_interval", 1.0) or 1.0)
        self.user = user or _user()
        self.login_host = login_host or _login_host()
        self.history = MemoryHistory(maxlen=max(60, int(600 / self.refresh_interval)))
        self.snapshot: ConsoleSnapshot | None = None
        self.connected = True
        self.polls = 0  # finished polls: tests wait on this
        self.outcome: str | None = None  # "stop" | "detach" | "exit", once the screen closes
        self.exit_reason: str | None = None
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
        self._seen_notices: dict[str, None] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._notes = tuple(notes)  # said at start (e.g. "attached to your running cluster")

    # ---- screens --------------------------------------------------------------------------

    def get_default_screen(self) -> Screen[Any]:
        from naist_dask_tui.screens.main import MainScreen

        return MainScreen(
            user=self.user,
            login_host=self.login_host,
            compute=compute_pane(self.controller),
            history=self.history,
            capabilities=self.capabilities,
            retry_in=self.refresh_interval,
            log_files=self._log_files(),
            name=self.controller.name if self.controller is not None else None,
            backend=self.controller.backend if self.controller is not None else None,
        )

    def _log_files(self) -> list[tuple[str, str]]:
        from naist_dask_tui.core.logcapture import screen_log_path

        files = list(self.controller.log_files()) if self.controller is not None else []
        return files + [("this screen's log", str(screen_log_path()))]

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
        for note in self._notes:
            self.notify(note, timeout=10)

    def on_unmount(self) -> None:
        self._control.put(None)
        loop = asyncio.get_running_loop()
        for sig in self._signals_installed:
            loop.remove_signal_handler(sig)
            # Until the console has stopped or detached, a second SIGHUP (the terminal going
            # away) or SIGTERM must not kill the process halfway through.
            if sig != signal.SIGINT:
                signal.signal(sig, signal.SIG_IGN)
        self._signals_installed.clear()

    def help_sections(self) -> list:
        """The help screen's sections, with the user's keys. The key map reads every screen's
        bindings, so it sits above the screens: they ask the app for it."""
        from naist_dask_tui.keymap import help_sections

        return help_sections(self)

    def leave(self, outcome: str, return_code: int = 0) -> None:
        self.outcome = outcome
        self.exit(return_code, return_code=return_code)

    def on_leave_requested(self, message: LeaveRequested) -> None:
        self.leave(message.outcome)

    def exit_threadsafe(self, return_code: int = 0, reason: str | None = None) -> bool:
        """Ask the app to exit from a signal handler or another thread; False if not running."""
        loop = self._loop
        if loop is None or loop.is_closed() or not self.is_running:
            return False
        if reason:
            self.exit_reason = reason
        loop.call_soon_threadsafe(self.leave, self._unattended_outcome(), return_code)
        return True

    # ---- signals: an SSH drop (SIGHUP) or a kill (SIGTERM) ---------------------------------

    def _unattended_outcome(self) -> str:
        """What a signal means: a screen of a keeper's cluster detaches (the cluster is not
        this process's to end); a cluster living in this process stops with it."""
        if self.capabilities.detach:
            return "detach"
        return "stop" if self.capabilities.stop else "exit"

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
        self.leave(self._unattended_outcome(), 128 + sig)

    # ---- polling ----------------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="poll", exit_on_error=False, name="poll")
    def poll(self) -> None:
        try:
            snapshot = self.monitor.poll()
        except Exception as exc:  # monitors promise not to raise; a lost poll must not crash us
            snapshot = self._lost_snapshot(f"{type(exc).__name__}: {exc}")
        self.post_message(SnapshotFetched(snapshot))

    def _lost_snapshot(self, error: str) -> ConsoleSnapshot:
        prev = self.snapshot
        return ConsoleSnapshot(
            time=time.time(),
            backend=prev.backend if prev else (self.controller.backend if self.controller else "?"),
            scheduler_address=prev.scheduler_address if prev else "",
            connected=False,
            cluster=None,
            jobs=prev.jobs if prev else (),
            requested_jobs=prev.requested_jobs if prev else 0,
            dashboard_link=prev.dashboard_link if prev else None,
            local_directory=prev.local_directory if prev else None,
            error=error,
            name=prev.name if prev else None,
        )

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        worker = event.worker
        if worker.group == "poll":
            if event.state is WorkerState.RUNNING:
                self._poll_epoch += 1
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
        self._snapshot_epoch = self._poll_epoch
        self.apply_snapshot(message.snapshot)

    def apply_snapshot(self, snapshot: ConsoleSnapshot) -> None:
        """Show one snapshot (tests and the benchmark call this directly)."""
        if snapshot.fatal:  # the cluster could not start: the console says why, after the screen
            self.exit_reason = snapshot.error
            self.leave("failed", 1)
            return
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
        self.history.add(snapshot, snapshot.cluster.totals if snapshot.cluster is not None else None)
        for notice in snapshot.notices:
            # Monitors repeat the recent notices every poll: show each once.
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
            main.requested = self._requested
            main.snapshot = snapshot

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
        self._set_requested(None)
        self.notify(f"{message.action} failed: {message.text}", severity="error", timeout=8)
        self.poll_now()

    def _set_requested(self, jobs: int | None) -> None:
        self._requested = jobs
        try:
            self.main.requested = jobs
        except LookupError:
            pass

    # ---- intents ----------------------------------------------------------------------------

    def on_scale_requested(self, message: ScaleRequested) -> None:
        jobs = message.jobs
        self._set_requested(jobs)
        self._requested_epoch = 1 << 60  # until the call returns
        controller = self.controller

        def call() -> str:
            controller.scale(jobs)  # also turns adaptive scaling off
            return ""

        self._submit("scale", call)

    def on_adapt_requested(self, message: AdaptRequested) -> None:
        bounds = message.bounds
        controller = self.controller
        if bounds is None:
            self._submit("adaptive off", lambda: controller.stop_adapt() or "")
        else:
            lo, hi = bounds
            self._submit("adaptive", lambda: controller.adapt(lo, hi) or "")

    def on_retire_requested(self, message: RetireRequested) -> None:
        controller = self.controller
        target = message.target

        def call() -> str:
            controller.retire_job(target)
            return ""

        self._submit(f"retire {message.label}", call)

    def action_ctrl_c(self) -> None:
        """Ctrl+C cancels a running computation when the compute pane has focus, else asks
        how to quit; a second Ctrl+C at that question stops the cluster."""
        node = self.focused
        while node is not None:
            if type(node).__name__ == "ComputePane" and getattr(node, "running", False):
                node.action_cancel()  # type: ignore[attr-defined]
                return
            node = node.parent  # type: ignore[assignment]
        try:
            main = self.main
        except LookupError:
            self.leave("stop")
            return
        main.action_request_quit(force_on_repeat=True)

    # ---- command palette --------------------------------------------------------------------

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        # Textual's own "Quit" would exit without the console's question, and its "Keys" would
        # sit beside our help: one of each, ours.
        for command in super().get_system_commands(screen):
            if command.title.lower() not in ("quit", "keys"):
                yield command
        from naist_dask_tui.screens.main import MainScreen

        if isinstance(screen, MainScreen):
            yield from screen.palette_commands()


def make_app(settings: Any, controller: Any = None, monitor: Any = None, **options: Any) -> ConsoleApp:
    """The one factory for the CLI and the tests.

    ``controller`` speaks :class:`~naist_dask_tui.core.control.ClusterControl` (a keeper's
    cluster, or a started ``ClusterController``); ``monitor`` (anything with ``poll() ->
    ConsoleSnapshot``) defaults to ``controller.make_monitor()``. ``options``: ``user`` /
    ``login_host`` (for the ``ssh -L`` hint), ``poll`` (False: no poll loop, feed
    ``app.apply_snapshot``), ``handle_signals`` (True in the CLI), ``capabilities`` (what the
    screen offers; default: the controller's), ``notes`` (said once the screen is up).
    """
    return ConsoleApp(settings, controller, monitor, **options)
