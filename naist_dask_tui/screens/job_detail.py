"""One job's detail (Enter on the Jobs panel): why it waits, fails or ended.

For a job in the queue: SGE's state and reason (``qstat -j``), the start-up diagnosis of a job
whose workers do not connect, its output's last lines. For a job that ended: the verdict, its
accounting (``qacct``: exit status, ``failed`` and its meaning, maxvmem, wallclock against
h_rt, the host) and its output's last lines as they were when it left. An error job (Eqw)
can be deleted (``x``) or, once its cause is fixed, tried again (``c``: ``qmod -cj``).
"""

from __future__ import annotations

import time
from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.markup import escape
from textual.widgets import Log, Static

from naist_dask_tui.core.snapshot import JobRow
from naist_dask_tui.screens.inquiry import InquiryScreen


def _clock(t: float | None) -> str:
    return time.strftime("%H:%M:%S", time.localtime(t)) if t else "-"


def _gb(n: float | None) -> str:
    from naist_dask_tui.core.postmortem import size

    return size(n) if n else "-"


def detail_lines(row: JobRow, d: dict[str, Any] | None) -> list[str]:
    """The summary above the output, as markup lines (``d``: the controller's detail)."""
    from naist_dask_tui.core.postmortem import hms

    lines = []
    if d is None:  # no controller behind the screen: what the row says
        return [f"[b]state[/b] {row.state.value}  {escape(row.reason)}"]
    pm = d.get("postmortem")
    where = f" on {d['host']}" if d.get("host") else ""
    state = "ended" if pm else (d.get("state") or row.state.value)
    lines.append(f"[b]state[/b] {escape(state)} {escape(d.get('raw_state') or '')}{escape(where)}   "
                 f"[b]submitted[/b] {_clock(d.get('submitted_at'))}  [b]started[/b] {_clock(d.get('started_at'))}"
                 + (f"  [b]left[/b] {_clock(d.get('left_at'))}" if d.get("left_at") else ""))
    if pm:
        lines.append(f"[b $accent]verdict:[/] {escape(pm['verdict'])}")
        acct = pm.get("accounting")
        if acct:
            failed = f"{acct['failed']} ({escape(acct.get('failed_text') or '')})" if acct.get("failed") else "0"
            wall = hms(acct["wallclock"]) if acct.get("wallclock") is not None else "-"
            h_rt = f" of h_rt {hms(acct['h_rt'])}" if acct.get("h_rt") else ""
            asked = f" of h_vmem {_gb(acct.get('h_vmem'))}" if acct.get("h_vmem") else ""
            lines.append(f"[b]qacct[/b] exit_status {acct.get('exit_status')}  failed {failed}  "
                         f"maxvmem {_gb(acct.get('maxvmem'))}{asked}  wallclock {wall}{h_rt}  "
                         f"host {escape(acct.get('hostname') or '-')}")
        elif pm.get("accounting_note"):
            lines.append(f"[b]qacct[/b] {escape(pm['accounting_note'])}")
    for label, key in (("SGE says", "sge_reason"), ("no worker", "lost"), ("start-up", "startup")):
        if d.get(key) and not pm:
            lines.append(f"[b]{label}:[/b] {escape(d[key])}")
    workers = d.get("workers") or []
    if not pm:
        lines.append(f"[b]workers[/b] {len(workers)}/{d.get('expected_workers', 1)}"
                     + ("  (retiring: its data is moving away)" if d.get("retiring") else ""))
    offers = (("x deletes it", d.get("can_delete")), ("c clears its error (qmod -cj)", d.get("can_clear")))
    actions = [k for k, ok in offers if ok]
    if actions and d.get("can_clear"):
        lines.append("[b]fix its cause, then[/b] " + ", ".join(actions))
    lines.append(f"[b]output[/b] {escape(d.get('log_path') or 'no output file known')}"
                 + ("  (as it was when the job left)" if pm else ""))
    return lines


class JobDetailScreen(InquiryScreen):
    BINDINGS = [
        Binding("escape,q", "close", "Close", tooltip="Close the job's detail", id="job.close"),
        Binding("x", "delete", "Delete this job", tooltip="Delete this job now (no data moved)", id="job.delete"),
        Binding("c", "clear_error", "Clear its error", tooltip="Clear an error job's state (qmod -cj) once fixed",
                id="job.clear_error"),
    ]
    INTERVAL = 3.0

    def __init__(self, controller: Any, job: JobRow, *, may_change: bool = True) -> None:
        super().__init__(controller)
        self.job = job
        self.may_change = may_change  # the screen may delete jobs (not when only watching)
        self._shown_log: tuple[str, ...] | None = None

    def title_text(self) -> str:
        if self.job.job_id and self.job.job_id != self.job.name:
            return f"SGE job {self.job.job_id} ({self.job.name})  (esc closes)"
        return f"{self.job.name}  (esc closes)"

    def compose_body(self) -> ComposeResult:
        yield Static("", id="job-summary")
        yield Log(id="job-output", max_lines=1000, auto_scroll=True)

    def available(self) -> bool:
        return hasattr(self.controller, "postmortem")

    def on_mount(self) -> None:
        self.query_one("#job-summary", Static).update("\n".join(detail_lines(self.job, None)))
        super().on_mount()

    def fetch(self) -> dict[str, Any]:
        return self.controller.postmortem(self.job.job_id or self.job.name)

    def show(self, data: dict[str, Any]) -> None:
        self.query_one("#job-summary", Static).update("\n".join(detail_lines(self.job, data)))
        pm = data.get("postmortem")
        lines = tuple((pm or {}).get("log_tail") or data.get("log_tail") or ())
        if lines != self._shown_log:
            self._shown_log = lines
            log = self.query_one("#job-output", Log)
            log.clear()
            log.write_lines(lines or ["(no output)"])
            self.call_after_refresh(log.scroll_end, animate=False)

    def _can(self, what: str) -> bool:
        return bool(self.may_change and self.fetched and self.fetched.get(what))

    def action_delete(self) -> None:
        if not self._can("can_delete"):
            d = self.fetched or {}
            if not self.may_change:
                why = "this screen only watches this cluster"
            elif d.get("postmortem") or d.get("deleted"):
                why = "the job has ended (or is being deleted) already"
            else:
                why = "its workers may hold data: r in the Jobs panel retires it, moving the data first"
            self.notify(f"Not deleted: {why}.", timeout=4)
            return
        from naist_dask_tui.screens.confirm import ConfirmScreen

        def answered(yes: bool | None) -> None:
            if yes:
                self._run(lambda: self.controller.delete_job(self.job.job_id or self.job.name),
                          f"job {self.job.job_id or self.job.name} is being deleted")

        self.app.push_screen(ConfirmScreen(
            f"Delete job {self.job.job_id or self.job.name} now? Its workers' data is not moved.",
            yes="Delete"), answered)

    def action_clear_error(self) -> None:
        if not self._can("can_clear"):
            self.notify("Only a job in SGE's error state (Eqw) has an error to clear.", timeout=3)
            return
        self._run(lambda: self.controller.clear_job_error(self.job.job_id or self.job.name),
                  f"job {self.job.job_id}: error cleared; SGE schedules it again")

    def _run(self, call, done: str) -> None:
        def work() -> None:
            try:
                call()
            except Exception as exc:
                self._post(self.notify, f"failed: {exc}", severity="error", timeout=8)
            else:
                self._post(self.notify, done, timeout=4)
                self._post(self.refresh_data)

        self.run_worker(work, thread=True, group="job-action", exit_on_error=False)
