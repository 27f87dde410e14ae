"""The main screen's scaling intents: + - s a, each checked against the cluster's limits.

A request above ``max_jobs`` is refused in one line; one that would leave jobs pending (more
than the queue runs at once) or delete every job (0) is asked about first; the rest goes to
the app as an intent message. The screen shows the job count asked for at once, before any
refresh reflects it.
"""

from __future__ import annotations

from naist_dask_tui.messages import AdaptRequested, ScaleRequested


class ScalingActions:
    """Mixed into the main screen, which provides ``snapshot``, ``requested``, ``notify``,
    ``post_message`` and ``app``."""

    @property
    def requested_jobs(self) -> int:
        if self.requested is not None:
            return self.requested
        return self.snapshot.requested_jobs if self.snapshot is not None else 0

    @property
    def adaptive(self) -> tuple[int, int] | None:
        return self.snapshot.adaptive if self.snapshot is not None else None

    def request_scale(self, jobs: int) -> None:
        current, adaptive = self.requested_jobs, self.adaptive
        note = " (adaptive scaling turned off)" if adaptive else ""
        self.notify(f"Scaling {current} → {jobs} job{'s' if jobs != 1 else ''}{note}", timeout=3)
        self.requested = jobs  # shown at once, before any refresh
        self.post_message(ScaleRequested(jobs))

    @property
    def limits(self):
        return self.snapshot.limits if self.snapshot is not None else None

    def _confirm_zero(self, jobs: int, stepwise: bool = False) -> None:
        """Refuse above max_jobs; ask before 0 and before jobs that would pend."""
        from naist_dask_tui.screens.confirm import ConfirmScreen
        from naist_dask_tui.screens.scale_dialog import scale_problem, scale_question

        problem = scale_problem(self.limits, jobs)
        if problem:
            self.notify(problem, severity="error", timeout=8)
            return
        question = scale_question(self.limits, self.requested_jobs, jobs, stepwise=stepwise)
        if not question:
            self.request_scale(jobs)
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.request_scale(jobs)
            else:
                self.notify("Nothing changed.", timeout=2)

        yes = "Scale to 0" if jobs == 0 else f"Scale to {jobs}"
        self.app.push_screen(ConfirmScreen(question, yes=yes), answered)

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

        self.app.push_screen(ScaleDialog(self.requested_jobs, self.limits), answered)

    def action_toggle_adaptive(self) -> None:
        from naist_dask_tui.screens.scale_dialog import AdaptDialog

        if self.adaptive:
            self.notify(f"Adaptive scaling off; keeping {self.requested_jobs} job(s).", timeout=3)
            self.post_message(AdaptRequested(None))
            return

        def answered(bounds: tuple[int, int] | None) -> None:
            if bounds is not None:
                self.notify(f"Adaptive scaling on: {bounds[0]}-{bounds[1]} jobs", timeout=3)
                self.post_message(AdaptRequested(bounds))

        current, limits = self.requested_jobs, self.limits
        hi = max(current, 4) if limits is None else min(max(current, 4), limits.max_jobs)
        self.app.push_screen(AdaptDialog(min(current, 1), hi, limits), answered)
