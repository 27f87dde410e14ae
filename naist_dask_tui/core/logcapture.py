"""Keep every log record off the terminal while the screen is up: into a file instead.

distributed, bokeh and tornado install their own stderr handlers (``propagate=False``) at
import; a "Connection lost" line from them would be painted over the screen and stay there
until a resize. :func:`log_to_file` replaces every handler that writes to a terminal stream
with one file handler (the screen's log, which ``L`` shows), on the root logger and on each
logger that does not propagate; warnings go there too. :func:`restore` puts things back once
the screen is gone, so that the lines printed after it (stopping, detached) reach the user.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from naist_dask_tui.core.paths import rotate_log

FORMAT = "%(asctime)s [%(process)d] %(name)s %(levelname)s: %(message)s"

_saved: list[tuple[logging.Logger, list[logging.Handler]]] = []
_file_handler: logging.FileHandler | None = None


def _terminal_handler(handler: logging.Handler) -> bool:
    if isinstance(handler, logging.FileHandler) or not isinstance(handler, logging.StreamHandler):
        return False
    stream = getattr(handler, "stream", None)
    return stream in (sys.stderr, sys.stdout, sys.__stderr__, sys.__stdout__) or (
        hasattr(stream, "isatty") and _isatty(stream)
    )


def _isatty(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (ValueError, OSError):
        return False


def screen_log_path() -> Path:
    from naist_dask_tui.core.paths import logs_dir

    return logs_dir() / "screen.log"


def log_to_file(path: Path | None = None) -> Path:
    """Route all logging (and warnings) to ``path``; returns it."""
    global _file_handler
    path = path or screen_log_path()
    rotate_log(path)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter(FORMAT))
    loggers = [logging.getLogger()] + [
        logging.getLogger(name) for name in list(logging.root.manager.loggerDict)
    ]
    for logger in loggers:
        old = [h for h in logger.handlers if _terminal_handler(h)]
        if old or (logger is logging.getLogger()) or (not logger.propagate and logger.handlers):
            _saved.append((logger, old))
            for h in old:
                logger.removeHandler(h)
            if logger is logging.getLogger() or not logger.propagate:
                logger.addHandler(handler)
    root = logging.getLogger()
    if root.level > logging.INFO or root.level == logging.NOTSET:
        root.setLevel(logging.INFO)
    logging.captureWarnings(True)
    _file_handler = handler
    return path


def restore() -> None:
    global _file_handler
    handler = _file_handler
    for logger, old in reversed(_saved):
        if handler is not None:
            logger.removeHandler(handler)
        for h in old:
            logger.addHandler(h)
    _saved.clear()
    logging.captureWarnings(False)
    if handler is not None:
        handler.close()
    _file_handler = None
