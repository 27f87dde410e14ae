"""A worker preload for local workers: everything the worker process writes goes to its own
log file, never to the console's terminal.

A local worker is a child process of the console: it inherits the terminal as stdout and
stderr, so a task's ``print``, a NumPy warning, a failed task's ``Key: ... State: executing``
dump or distributed's own log lines would be written straight over the screen. This module is
given to each local worker as a preload (``Nanny(preload=[...])``); its ``dask_setup`` runs in
the worker process and points file descriptors 1 and 2 at
``<log directory>/<prefix><worker name>.log``, so Python-level writes, logging and C-level
writes all land there. The console then follows that file with ``l``, as it follows an SGE
job's output file.

The directory and prefix come from the environment (``Nanny(env=...)``), so that the preload
needs no arguments.

Nothing here imports textual.
"""

from __future__ import annotations

import logging
import os
import sys

ENV_DIR = "NAIST_DASK_TUI_WORKER_LOG_DIR"
ENV_PREFIX = "NAIST_DASK_TUI_WORKER_LOG_PREFIX"
MODULE = __name__


def log_path(directory: str, prefix: str, worker_name: str) -> str:
    return os.path.join(directory, f"{prefix}{worker_name}.log")


def redirect_output(path: str) -> None:
    """Point this process's fds 1 and 2 (and so sys.stdout/stderr and logging) at ``path``."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)


def dask_setup(worker) -> None:
    directory = os.environ.get(ENV_DIR)
    if not directory:
        return
    redirect_output(log_path(directory, os.environ.get(ENV_PREFIX, ""), str(worker.name)))
    # the file is the worker's own log: INFO as in an SGE job's output file (the console
    # silenced the workers' logging to ERROR for the terminal's sake; there is none now)
    log = logging.getLogger("distributed")
    log.setLevel(logging.INFO)
    for handler in log.handlers:
        handler.setLevel(logging.INFO)
    if not log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s - %(name)s - %(levelname)s - %(message)s"))
        log.addHandler(handler)
    print(f"worker {worker.name} (pid {os.getpid()}): its output and log go to this file", flush=True)
