"""Each backend in its own words: an SGE cluster has jobs in a queue, a local cluster has
worker processes on this machine, an attached scheduler has whatever was started elsewhere.

One place for the texts the screen shows that depend on the backend (``"sge"``, ``"local"``,
``"attach"``), so that a local cluster never speaks of SGE.
"""

from __future__ import annotations


def job_noun(backend: str | None) -> str:
    """What one unit of scaling is called: "SGE job", "local worker", "job"."""
    return {"sge": "SGE job", "local": "local worker"}.get(backend or "", "job")


def stop_deletes(backend: str | None, n: int) -> str:
    """What stopping the cluster deletes, in the backend's words."""
    s = "s" if n != 1 else ""
    if backend == "local":
        return f"{n} local worker{s} and the data they hold"
    return f"{n} SGE job{s}, their workers and the data they hold"


def jobs_panel_title(backend: str | None) -> str:
    return {"sge": "SGE jobs", "local": "Local workers", "attach": "Jobs (none: attached)"}.get(
        backend or "", "Jobs"
    )


def no_log_text(backend: str | None) -> str:
    """What ``l`` says when no output file is known for the selected job or worker."""
    if backend == "local":
        return "This worker has no log file yet (it may still be starting)."
    if backend == "attach":
        return ("The workers of a scheduler started elsewhere write their output where they "
                "were started; this console knows no file of theirs.")
    return "SGE has not reported an output file for this job yet (it may still be pending)."


# The command palette's texts per backend (the palette lives in app.py, which the lead owns;
# these are the words it should use): action -> (title, help).
PALETTE = {
    "sge": {
        "scale_up": ("Scale: one job more (+)", "Submit one more SGE job"),
        "scale_down": ("Scale: one job less (-)", "Retire one job's workers, then delete the job"),
        "job_log": ("Show the selected job's SGE output (l)", "Follow the worker log live"),
        "quit": ("Quit and delete all jobs (q)", "Close the cluster"),
    },
    "local": {
        "scale_up": ("Scale: one worker more (+)", "Start one more local worker process"),
        "scale_down": ("Scale: one worker less (-)", "Retire one local worker (its data moves)"),
        "job_log": ("Show the selected worker's log (l)", "Follow the worker's log file live"),
        "quit": ("Quit and stop the local workers (q)", "Close the cluster"),
    },
}


def palette_text(backend: str | None, action: str) -> tuple[str, str]:
    return PALETTE.get(backend or "", PALETTE["sge"]).get(action, PALETTE["sge"][action])
