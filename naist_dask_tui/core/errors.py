"""Errors the user sees in words (kept import-light: the CLI imports this at start)."""

from __future__ import annotations


class ControllerError(RuntimeError):
    """Something the user asked for cannot be done; the message says why in plain words."""
