"""The status bar: backend, scheduler, jobs, workers, memory, connection, dashboard."""

from __future__ import annotations

from textual.content import Content
from textual.markup import escape
from textual.widgets import Static

from naist_dask_tui.core.snapshot import ConsoleSnapshot
from naist_dask_tui.formatting import fmt_bytes, fmt_duration, ssh_tunnel_hint
from naist_dask_tui.history import ClusterTotals

NBSP = "\u00a0"


def _piece(markup: str) -> str:
    # Keep each piece on one line when the bar wraps at 80 columns.
    return markup.replace(" ", NBSP)


def status_markup(
    snapshot: ConsoleSnapshot | None,
    *,
    requested: int | None,
    user: str,
    login_host: str,
    retry_in: float | None = None,
    totals: ClusterTotals | None = None,
    width: int = 200,
    name: str | None = None,
) -> str:
    if snapshot is None:
        if name:
            return f"[b]{escape(name)}[/b]  connecting (a new cluster is starting: a few seconds)…"
        return "[b]starting[/b]  waiting for the first poll…"
    s = snapshot
    where = f"[b]{escape(s.backend.upper())}[/b] {escape(s.scheduler_address or '-')}"
    pieces = [f"[b]{escape(s.name)}[/b] {where}" if s.name else where]
    if s.connected:
        pieces.append("[$success]●[/] connected")
    else:
        pieces.append("[$error b]● LOST[/]")
    req = s.requested_jobs if requested is None else requested
    jobs = f"jobs {req} req · {s.jobs_running} run · {s.jobs_pending} pend"
    if s.jobs_no_worker:
        jobs += f" · [$error]{s.jobs_no_worker} no worker[/]"
    if s.adaptive:
        jobs += f" · adaptive {s.adaptive[0]}-{s.adaptive[1]}"
    pieces.append(jobs)
    if s.screens > 1:
        pieces.append(f"{s.screens} screens")
    if s.idle_since is not None and s.idle_timeout and s.cluster is not None:
        idle = max(0.0, s.time - s.idle_since)
        pieces.append(f"idle {fmt_duration(idle)}/{fmt_duration(s.idle_timeout)}")
    c = totals or (ClusterTotals.of(s.cluster) if s.cluster is not None else None)
    if c is not None:
        pieces.append(f"workers {c.n_workers} · threads {c.nthreads}")
        pieces.append(f"mem {fmt_bytes(c.memory)}/{fmt_bytes(c.memory_limit)}")
    lines = ["  ".join(_piece(p) for p in pieces)]
    if not s.connected:
        why = escape(s.error or "scheduler unreachable")
        retry = f"; retrying every {retry_in:g}s" if retry_in else "; retrying"
        lines.append(f"[$error]scheduler lost: {why}{retry}[/]")
    if s.dashboard_link:
        # The ssh command keeps plain spaces and a line of its own when narrow: it gets copied.
        hint = ssh_tunnel_hint(s.dashboard_link, user, login_host) or ""
        url = f"dashboard {s.dashboard_link}"
        tunnel = f"on your laptop: {hint}"
        sep = "  " if len(url) + len(tunnel) + 4 <= width else "\n"
        lines.append(
            f"dashboard [u]{escape(s.dashboard_link)}[/u]{sep}on your laptop: [b]{escape(hint)}[/b]"
        )
    return "\n".join(lines)


class StatusBar(Static):
    """Shows one ``ConsoleSnapshot`` (plus the job count just requested, before the poll sees it)."""

    def on_resize(self) -> None:
        if self.snapshot is not None:
            self.show(None, self.requested)

    def __init__(
        self, *, user: str = "user", login_host: str = "login", name: str | None = None, id: str | None = None
    ) -> None:
        super().__init__(status_markup(None, requested=None, user=user, login_host=login_host, name=name), id=id)
        self.name_ = name
        self.user = user
        self.login_host = login_host
        self.snapshot: ConsoleSnapshot | None = None
        self.requested: int | None = None
        self.retry_in: float | None = None
        self._markup = ""
        self.totals: ClusterTotals | None = None

    def show(
        self,
        snapshot: ConsoleSnapshot | None = None,
        requested: int | None = None,
        totals: ClusterTotals | None = None,
    ) -> None:
        if snapshot is not None:
            self.snapshot = snapshot
            self.totals = totals
        self.requested = requested
        markup = status_markup(
            self.snapshot,
            requested=requested,
            user=self.user,
            login_host=self.login_host,
            retry_in=self.retry_in,
            totals=self.totals,
            width=self.size.width or 200,
            name=self.name_,
        )
        if markup != self._markup:  # an unchanged bar costs nothing
            self._markup = markup
            self.set_class(self.snapshot is not None and not self.snapshot.connected, "-lost")
            self.update(Content.from_markup(markup))
