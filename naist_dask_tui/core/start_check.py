"""Before a cluster starts: what would flood the shared queue is refused, and what the user did
not ask for is shown and asked about (one self-contained call, :func:`confirm_start`).

Nothing here imports textual.
"""

from __future__ import annotations

import sys
from typing import Any

from naist_dask_tui.core.settings import Origin, Settings, SettingsError


class Declined(Exception):
    """The user answered no at the start's question: nothing was submitted."""


def _job_shape(settings: Settings) -> str:
    pes = settings.pe_directives()
    slots = f", {pes[0][1]} slots of PE {pes[0][0]}" if pes else ""
    queue = f" in queue {settings.queue}" if settings.queue else ""
    return f"{settings.cores} cores and {settings.memory} each{slots}{queue}"


def _answer(ask: Any, prompt: str) -> str:
    """The user's answer, lower case; end of input means no."""
    try:
        return ask(prompt).strip().lower()
    except EOFError:
        return "n"


def confirm_start(
    settings: Settings,
    *,
    interactive: bool,
    allow_pending: bool = False,
    ask: Any = input,
    err: Any = None,
) -> Settings:
    """Before the cluster starts (one self-contained call): what would flood the queue is
    refused, and what the user did not ask for is shown and asked about.

    * A request above ``max_jobs`` is refused (SettingsError naming max_jobs).
    * SGE, when the job count comes only from the built-in profile (no ``--jobs``, none in a
      config file or the environment): the jobs are shown and the user is asked; without a
      terminal to ask on, nothing is submitted and the error says how to ask for them.
      An explicit ``--jobs`` never asks.
    * SGE, more jobs than the queue runs at once: asked on a terminal; otherwise refused
      unless ``--allow-pending`` (a script states it once instead of hanging on a question).

    Returns the settings to start with (the job count the user typed, if any). Raises
    :class:`Declined` when the user says no.
    """
    err = err or sys.stderr
    backend = settings.resolved_backend()
    if backend != "sge":
        return settings  # local: max_jobs is checked by the controller (it sizes the cluster)
    from naist_dask_tui.core import limits, preflight

    preflight.require_ready(settings)  # a bad queue or interface is said before any question
    lim = limits.resolve(settings, "sge")
    if settings.adapt_bounds is not None:
        lim.check(settings.adapt_bounds[1], f"adaptive maximum, from {settings.origin_of('adapt_max')}")
        return settings
    lim.check(settings.jobs, f"from {settings.origin_of('jobs')}")

    def set_jobs(jobs: int) -> Settings:
        return settings.with_values(Origin("cli", "the answer at start"), jobs=jobs)

    if not settings.explicit("jobs") and settings.jobs > 0:
        what = (f"{settings.jobs} SGE jobs of {_job_shape(settings)} "
                f"({settings.origin_of('jobs')}; no --jobs given)")
        if not interactive:
            raise SettingsError(
                "jobs",
                f"not submitting {what} without asking; say how many: --jobs {settings.jobs} "
                "(or --jobs 0 to start with none and scale from the console), or jobs in the "
                "config file",
            )
        print(f"naist-dask-tui will submit {what}.", file=err)
        answer = _answer(ask, f"Submit them? [y = {settings.jobs} jobs, a number = that many, n = cancel] ")
        if answer.isdigit():
            settings = set_jobs(int(answer))
            lim.check(settings.jobs, "the answer at start")
        elif answer not in ("y", "yes"):
            raise Declined("nothing submitted; next time say how many with --jobs N")

    waiting = lim.pending(settings.jobs)
    if waiting and not allow_pending:
        sentence = lim.pend_sentence(settings.jobs)
        if not interactive:
            raise SettingsError(
                "jobs",
                f"{sentence}; nothing was submitted. Ask for {lim.runnable} or fewer, or pass "
                "--allow-pending to submit them anyway",
            )
        print(f"naist-dask-tui: {sentence}.", file=err)
        if _answer(ask, f"Submit all {settings.jobs} anyway? [y/N] ") not in ("y", "yes"):
            raise Declined(f"nothing submitted; ask for {lim.runnable} or fewer jobs, or pass --allow-pending")
    return settings
